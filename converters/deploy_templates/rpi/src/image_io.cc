#include "image_io.h"

#include <cctype>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace bnn_runner {

std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(file),
                              std::istreambuf_iterator<char>());
}

namespace {

// Skips whitespace and '#' comments, then reads one unsigned decimal number.
int ReadHeaderNumber(const std::vector<uint8_t>& b, size_t* pos) {
  while (*pos < b.size()) {
    if (b[*pos] == '#') {
      while (*pos < b.size() && b[*pos] != '\n') ++*pos;
    } else if (std::isspace(b[*pos])) {
      ++*pos;
    } else {
      break;
    }
  }
  if (*pos >= b.size() || !std::isdigit(b[*pos])) {
    throw std::runtime_error("PNM header: expected a number");
  }
  long value = 0;
  while (*pos < b.size() && std::isdigit(b[*pos])) {
    value = value * 10 + (b[*pos] - '0');
    if (value > 1000000) throw std::runtime_error("PNM header: number too large");
    ++*pos;
  }
  return static_cast<int>(value);
}

}  // namespace

Image ParsePnm(const std::vector<uint8_t>& bytes) {
  if (bytes.size() < 2 || bytes[0] != 'P' || (bytes[1] != '5' && bytes[1] != '6')) {
    throw std::runtime_error(
        "not a binary PGM/PPM (P5/P6) image; convert it first, e.g. "
        "`convert photo.jpg -colorspace Gray image.pgm`");
  }
  Image image;
  image.channels = bytes[1] == '5' ? 1 : 3;
  size_t pos = 2;
  image.width = ReadHeaderNumber(bytes, &pos);
  image.height = ReadHeaderNumber(bytes, &pos);
  const int maxval = ReadHeaderNumber(bytes, &pos);
  if (image.width <= 0 || image.height <= 0) throw std::runtime_error("PNM: empty image");
  if (maxval <= 0 || maxval > 255) {
    throw std::runtime_error("PNM: only 8-bit images (maxval <= 255) are supported");
  }
  // Exactly one whitespace byte separates the header from the pixels.
  if (pos >= bytes.size() || !std::isspace(bytes[pos])) {
    throw std::runtime_error("PNM header: missing whitespace before the pixel data");
  }
  ++pos;
  const size_t count = static_cast<size_t>(image.width) * image.height * image.channels;
  if (bytes.size() - pos < count) throw std::runtime_error("PNM: truncated pixel data");
  image.pixels.assign(bytes.begin() + pos, bytes.begin() + pos + count);
  if (maxval != 255) {
    // Rescale so that maxval maps to 255, as every 8-bit viewer does.
    for (auto& p : image.pixels) p = static_cast<uint8_t>((p * 255 + maxval / 2) / maxval);
  }
  return image;
}

Image ReadPnm(const std::string& path) {
  try {
    return ParsePnm(ReadFileBytes(path));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

}  // namespace bnn_runner
