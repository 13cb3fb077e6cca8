// Reading images without any image library: binary PGM (P5, grey) and PPM
// (P6, RGB), plus raw tensors. Kept free of TFLite so it compiles and is
// unit-tested anywhere (see selftest.cc).
#ifndef BNN_RUNNER_IMAGE_IO_H_
#define BNN_RUNNER_IMAGE_IO_H_

#include <cstdint>
#include <string>
#include <vector>

namespace bnn_runner {

// An 8-bit image, rows top to bottom, channels interleaved (HWC).
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;

  uint8_t at(int y, int x, int c) const {
    return pixels[(static_cast<size_t>(y) * width + x) * channels + c];
  }
};

// The whole file as bytes; throws std::runtime_error naming the path.
std::vector<uint8_t> ReadFileBytes(const std::string& path);

// Parses a binary PGM (P5) or PPM (P6) with maxval <= 255, comments allowed
// in the header. Throws std::runtime_error on anything else.
Image ParsePnm(const std::vector<uint8_t>& bytes);

// ReadFileBytes + ParsePnm, with the path in the error message.
Image ReadPnm(const std::string& path);

}  // namespace bnn_runner

#endif  // BNN_RUNNER_IMAGE_IO_H_
