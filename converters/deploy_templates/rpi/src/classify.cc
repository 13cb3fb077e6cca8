#include "classify.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <stdexcept>

namespace bnn_runner {

Image ToChannels(const Image& image, int channels) {
  if (channels != 1 && channels != 3) throw std::runtime_error("only 1 or 3 channels");
  if (image.channels == channels) return image;
  Image out;
  out.width = image.width;
  out.height = image.height;
  out.channels = channels;
  const size_t n = static_cast<size_t>(image.width) * image.height;
  out.pixels.resize(n * channels);
  for (size_t i = 0; i < n; ++i) {
    if (channels == 1) {
      const int r = image.pixels[i * 3], g = image.pixels[i * 3 + 1], b = image.pixels[i * 3 + 2];
      out.pixels[i] = static_cast<uint8_t>((299 * r + 587 * g + 114 * b + 500) / 1000);
    } else {
      for (int c = 0; c < 3; ++c) out.pixels[i * 3 + c] = image.pixels[i];
    }
  }
  return out;
}

Image Resize(const Image& image, int width, int height) {
  if (width <= 0 || height <= 0) throw std::runtime_error("resize to an empty image");
  if (image.width == width && image.height == height) return image;
  Image out;
  out.width = width;
  out.height = height;
  out.channels = image.channels;
  out.pixels.resize(static_cast<size_t>(width) * height * image.channels);
  for (int oy = 0; oy < height; ++oy) {
    const int y0 = static_cast<int>(static_cast<long>(oy) * image.height / height);
    const int y1 = std::max(
        y0 + 1, static_cast<int>((static_cast<long>(oy + 1) * image.height + height - 1) / height));
    for (int ox = 0; ox < width; ++ox) {
      const int x0 = static_cast<int>(static_cast<long>(ox) * image.width / width);
      const int x1 = std::max(
          x0 + 1, static_cast<int>((static_cast<long>(ox + 1) * image.width + width - 1) / width));
      for (int c = 0; c < image.channels; ++c) {
        long sum = 0;
        for (int y = y0; y < y1; ++y) {
          for (int x = x0; x < x1; ++x) sum += image.at(y, x, c);
        }
        const long count = static_cast<long>(y1 - y0) * (x1 - x0);
        out.pixels[(static_cast<size_t>(oy) * width + ox) * image.channels + c] =
            static_cast<uint8_t>((sum + count / 2) / count);
      }
    }
  }
  return out;
}

bool HasLightBackground(const Image& image) {
  long sum = 0, count = 0;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      if (y != 0 && y != image.height - 1 && x != 0 && x != image.width - 1) continue;
      for (int c = 0; c < image.channels; ++c) sum += image.at(y, x, c);
      count += image.channels;
    }
  }
  // sum / count > 127.5, in integers.
  return count > 0 && 2 * sum > 255 * count;
}

void Invert(Image* image) {
  for (auto& p : image->pixels) p = static_cast<uint8_t>(255 - p);
}

std::vector<float> Normalize(const Image& image, const Normalization& norm) {
  std::vector<float> out(image.pixels.size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<float>(image.pixels[i]) * norm.scale + norm.offset;
  }
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
  Image prepared = Resize(ToChannels(image, channels), width, height);
  const bool flip =
      invert == InvertMode::kYes || (invert == InvertMode::kAuto && HasLightBackground(prepared));
  if (flip) Invert(&prepared);
  if (inverted != nullptr) *inverted = flip;
  return Normalize(prepared, norm);
}

}  // namespace bnn_runner
