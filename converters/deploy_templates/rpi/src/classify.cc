#include "classify.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <stdexcept>

namespace bnn_runner {

FloatImage ToFloat(const Image& image) {
  FloatImage out;
  out.width = image.width;
  out.height = image.height;
  out.channels = image.channels;
  out.values.assign(image.pixels.begin(), image.pixels.end());
  return out;
}

FloatImage ToChannels(const FloatImage& image, int channels) {
  if (channels != 1 && channels != 3) throw std::runtime_error("only 1 or 3 channels");
  if (image.channels != 1 && image.channels != 3) {
    throw std::runtime_error("only grey or RGB images");
  }
  if (image.channels == channels) return image;
  FloatImage out;
  out.width = image.width;
  out.height = image.height;
  out.channels = channels;
  const size_t n = static_cast<size_t>(image.width) * image.height;
  out.values.resize(n * channels);
  for (size_t i = 0; i < n; ++i) {
    if (channels == 1) {
      // Integer BT.601 on the 8-bit values, as bnn_tf.data and the Android core do
      // (metadata.json: input.channel_conversion), so grey -> RGB -> grey is exact.
      const float* p = &image.values[i * 3];
      const long v = 299L * std::lround(p[0]) + 587L * std::lround(p[1]) + 114L * std::lround(p[2]);
      out.values[i] = static_cast<float>((v + 500) / 1000);
    } else {
      for (int c = 0; c < 3; ++c) out.values[i * 3 + c] = image.values[i];
    }
  }
  return out;
}

namespace {

// One axis of TensorFlow's bilinear resize (resize_bilinear_op.cc,
// compute_interpolation_weights with HalfPixelScaler), float32 throughout.
struct Tap {
  int lower = 0;
  int upper = 0;
  float lerp = 0.0f;
};

std::vector<Tap> BilinearTaps(int in_size, int out_size) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  std::vector<Tap> taps(out_size);
  for (int i = 0; i < out_size; ++i) {
    const float in = (static_cast<float>(i) + 0.5f) * scale - 0.5f;
    const float in_f = std::floor(in);
    taps[i].lower = std::max(static_cast<int>(in_f), 0);
    taps[i].upper = std::min(static_cast<int>(std::ceil(in)), in_size - 1);
    taps[i].lerp = in - in_f;
  }
  return taps;
}

}  // namespace

FloatImage Resize(const FloatImage& image, int width, int height) {
  if (width <= 0 || height <= 0) throw std::runtime_error("resize to an empty image");
  if (image.width == width && image.height == height) return image;
  const std::vector<Tap> xs = BilinearTaps(image.width, width);
  const std::vector<Tap> ys = BilinearTaps(image.height, height);
  FloatImage out;
  out.width = width;
  out.height = height;
  out.channels = image.channels;
  out.values.resize(static_cast<size_t>(width) * height * image.channels);
  for (int oy = 0; oy < height; ++oy) {
    const Tap& y = ys[oy];
    for (int ox = 0; ox < width; ++ox) {
      const Tap& x = xs[ox];
      for (int c = 0; c < image.channels; ++c) {
        // The same expression order as TensorFlow's compute_lerp.
        const float top_left = image.at(y.lower, x.lower, c);
        const float top_right = image.at(y.lower, x.upper, c);
        const float bottom_left = image.at(y.upper, x.lower, c);
        const float bottom_right = image.at(y.upper, x.upper, c);
        const float top = top_left + (top_right - top_left) * x.lerp;
        const float bottom = bottom_left + (bottom_right - bottom_left) * x.lerp;
        out.values[(static_cast<size_t>(oy) * width + ox) * image.channels + c] =
            top + (bottom - top) * y.lerp;
      }
    }
  }
  return out;
}

bool HasLightBackground(const FloatImage& image) {
  double sum = 0.0;
  long count = 0;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      if (y != 0 && y != image.height - 1 && x != 0 && x != image.width - 1) continue;
      for (int c = 0; c < image.channels; ++c) sum += image.at(y, x, c);
      count += image.channels;
    }
  }
  return count > 0 && sum > 127.5 * static_cast<double>(count);
}

void Invert(FloatImage* image) {
  for (auto& v : image->values) v = 255.0f - v;
}

std::vector<float> Normalize(const FloatImage& image, const Normalization& norm) {
  std::vector<float> out(image.values.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = image.values[i] * norm.scale + norm.offset;
  return out;
}

std::vector<int8_t> QuantizeInt8(const std::vector<float>& values, float scale, int zero_point) {
  if (!(scale > 0.0f)) throw std::runtime_error("int8 input with a non-positive scale");
  std::vector<int8_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const long q = std::lround(values[i] / scale) + zero_point;
    out[i] = static_cast<int8_t>(std::min(127L, std::max(-128L, q)));
  }
  return out;
}

std::vector<float> Softmax(const std::vector<float>& logits) {
  if (logits.empty()) return {};
  const float max = *std::max_element(logits.begin(), logits.end());
  std::vector<float> out(logits.size());
  double total = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    out[i] = static_cast<float>(std::exp(static_cast<double>(logits[i]) - max));
    total += out[i];
  }
  for (auto& p : out) p = static_cast<float>(p / total);
  return out;
}

std::vector<Prediction> TopK(const std::vector<float>& scores, int k) {
  const std::vector<float> probs = Softmax(scores);
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return scores[a] > scores[b]; });
  const int n = std::max(0, std::min<int>(k, static_cast<int>(order.size())));
  std::vector<Prediction> out;
  for (int i = 0; i < n; ++i) out.push_back({order[i], scores[order[i]], probs[order[i]]});
  return out;
}

std::vector<std::string> ReadLabels(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error("cannot open labels file " + path);
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(file, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  // A trailing empty line is the file's final newline, not a label.
  while (!labels.empty() && labels.back().empty()) labels.pop_back();
  return labels;
}

LatencyStats Summarize(std::vector<double> samples_ms) {
  LatencyStats s;
  if (samples_ms.empty()) return s;
  std::sort(samples_ms.begin(), samples_ms.end());
  const size_t n = samples_ms.size();
  s.median_ms = n % 2 ? samples_ms[n / 2] : 0.5 * (samples_ms[n / 2 - 1] + samples_ms[n / 2]);
  s.mean_ms = std::accumulate(samples_ms.begin(), samples_ms.end(), 0.0) / n;
  s.min_ms = samples_ms.front();
  s.max_ms = samples_ms.back();
  return s;
}

std::vector<float> PrepareInput(const Image& image, int height, int width, int channels,
                                const Normalization& norm, InvertMode invert, bool* inverted) {
  FloatImage prepared = Resize(ToChannels(ToFloat(image), channels), width, height);
  const bool flip =
      invert == InvertMode::kYes || (invert == InvertMode::kAuto && HasLightBackground(prepared));
  if (flip) Invert(&prepared);
  if (inverted != nullptr) *inverted = flip;
  return Normalize(prepared, norm);
}

}  // namespace bnn_runner
