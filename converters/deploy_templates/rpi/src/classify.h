// Pre- and post-processing of the bnn-tf runner, free of TFLite so that it
// compiles and is unit-tested on any machine (selftest.cc). The Android demo
// implements the same steps in plain Java (android_demo/.../core).
#ifndef BNN_RUNNER_CLASSIFY_H_
#define BNN_RUNNER_CLASSIFY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "image_io.h"

namespace bnn_runner {

// The model input is `pixel * scale + offset` (bnn-tf: scale 1/127.5,
// offset -1, i.e. [0, 255] -> [-1, 1]); the values come from metadata.json.
struct Normalization {
  float scale = 1.0f / 127.5f;
  float offset = -1.0f;
};

struct Prediction {
  int index = 0;
  float score = 0.0f;        // the model's raw output (a logit for bnn-tf models)
  float probability = 0.0f;  // softmax over all outputs
};

// The image as float32 (no rounding anywhere after this): the models were fed
// tf.image.resize's float output, so the runner keeps fractions too.
struct FloatImage {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<float> values;  // HWC

  float at(int y, int x, int c) const {
    return values[(static_cast<size_t>(y) * width + x) * channels + c];
  }
};
FloatImage ToFloat(const Image& image);

// Grey -> RGB by repetition (tf.image.grayscale_to_rgb); RGB -> grey with integer
// BT.601 on the 8-bit values, (299 R + 587 G + 114 B + 500) / 1000, exactly as
// bnn_tf.data and the Android core do (metadata.json: input.channel_conversion).
// Same channel count: a copy. Only 1 and 3 channels.
FloatImage ToChannels(const FloatImage& image, int channels);

// Bilinear resize with half-pixel centres, no antialiasing: the same arithmetic
// (float32) as tf.image.resize(x, (height, width), method="bilinear",
// antialias=False), which is what bnn-tf trains and evaluates with. Same size:
// a copy (half-pixel centres map every pixel onto itself).
FloatImage Resize(const FloatImage& image, int width, int height);

// Fashion-MNIST/MNIST show light objects on a dark background. A photo of an
// object on a light background must be inverted: this decides that from the
// mean of the border pixels (> 127.5 means a light background).
bool HasLightBackground(const FloatImage& image);
void Invert(FloatImage* image);  // v -> 255 - v

// pixel * scale + offset, in HWC order, as float32.
std::vector<float> Normalize(const FloatImage& image, const Normalization& norm);

// For int8-input models: q = clamp(round(x / scale) + zero_point, -128, 127).
std::vector<int8_t> QuantizeInt8(const std::vector<float>& values, float scale, int zero_point);

// Numerically stable softmax (subtracts the maximum first).
std::vector<float> Softmax(const std::vector<float>& logits);

// The k best outputs, best first; ties go to the lower index.
std::vector<Prediction> TopK(const std::vector<float>& scores, int k);

// One label per line (trailing '\r' stripped, so Windows files work too).
std::vector<std::string> ReadLabels(const std::string& path);

struct LatencyStats {
  double median_ms = 0.0;
  double mean_ms = 0.0;
  double min_ms = 0.0;
  double max_ms = 0.0;
};
LatencyStats Summarize(std::vector<double> samples_ms);

enum class InvertMode { kAuto, kYes, kNo };

// The whole pre-processing of one image (any size, grey or RGB), in the order
// bnn-tf's Python side uses: channels -> resize -> (maybe) invert -> normalise. `inverted` (optional)
// reports whether the image was inverted.
std::vector<float> PrepareInput(const Image& image, int height, int width, int channels,
                                const Normalization& norm, InvertMode invert,
                                bool* inverted = nullptr);

}  // namespace bnn_runner

#endif  // BNN_RUNNER_CLASSIFY_H_
