// Unit tests of the runner's TFLite-free parts (image reading, pre- and
// post-processing). Runs anywhere: `ctest` after a -DBNN_SELFTEST_ONLY=ON
// build, or on the Pi after the full build.
//
// `bnn_runner_selftest --dump-input IMAGE H W C SCALE OFFSET auto|yes|no`
// prints the pre-processed input (one float per line) so bnn-tf's tests can
// compare it with the Python pre-processing.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "classify.h"
#include "image_io.h"

using namespace bnn_runner;

namespace {

int failures = 0;
int checks = 0;

#define EXPECT(cond)                                                        \
  do {                                                                      \
    ++checks;                                                               \
    if (!(cond)) {                                                          \
      ++failures;                                                           \
      std::fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                       \
  } while (0)

#define EXPECT_THROWS(expr)            \
  do {                                 \
    bool threw = false;                \
    try {                              \
      (void)(expr);                    \
    } catch (const std::runtime_error&) { \
      threw = true;                    \
    }                                  \
    EXPECT(threw);                     \
  } while (0)

std::vector<uint8_t> Bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

bool Near(double a, double b, double tol = 1e-6) { return std::fabs(a - b) <= tol; }

Image Grey(int w, int h, std::vector<uint8_t> px) {
  Image im;
  im.width = w;
  im.height = h;
  im.channels = 1;
  im.pixels = std::move(px);
  return im;
}

void TestPnm() {
  Image pgm = ParsePnm(Bytes(std::string("P5\n# a comment\n2 1\n255\n") + '\x00' + '\xff'));
  EXPECT(pgm.width == 2 && pgm.height == 1 && pgm.channels == 1);
  EXPECT(pgm.pixels[0] == 0 && pgm.pixels[1] == 255);

  Image ppm = ParsePnm(Bytes(std::string("P6 1 1 255 ") + '\x0a' + '\x14' + '\x1e'));
  EXPECT(ppm.channels == 3 && ppm.pixels[0] == 10 && ppm.pixels[1] == 20 && ppm.pixels[2] == 30);

  // maxval 15: 15 -> 255, 5 -> 85.
  Image low = ParsePnm(Bytes(std::string("P5 2 1 15\n") + '\x0f' + '\x05'));
  EXPECT(low.pixels[0] == 255 && low.pixels[1] == 85);

  EXPECT_THROWS(ParsePnm(Bytes("P2 1 1 255\n0")));                 // ASCII PGM
  EXPECT_THROWS(ParsePnm(Bytes("P5 2 2 255\nabc")));               // truncated
  EXPECT_THROWS(ParsePnm(Bytes("P5 1 1 65535\nab")));              // 16-bit
  EXPECT_THROWS(ParsePnm(Bytes("")));
  EXPECT_THROWS(ReadPnm("/nonexistent/bnn_runner.pgm"));
}

FloatImage FGrey(int w, int h, std::vector<float> v) {
  FloatImage im;
  im.width = w;
  im.height = h;
  im.channels = 1;
  im.values = std::move(v);
  return im;
}

void TestChannelsAndResize() {
  Image rgb;
  rgb.width = 1;
  rgb.height = 1;
  rgb.channels = 3;
  rgb.pixels = {255, 0, 0};
  EXPECT(ToChannels(ToFloat(rgb), 1).values[0] == (299 * 255 + 500) / 1000);  // 76
  rgb.pixels = {10, 200, 30};
  EXPECT(ToChannels(ToFloat(rgb), 1).values[0] == (299 * 10 + 587 * 200 + 114 * 30 + 500) / 1000);
  FloatImage g3 = ToChannels(ToFloat(Grey(1, 1, {7})), 3);
  EXPECT(g3.channels == 3 && g3.values[0] == 7 && g3.values[1] == 7 && g3.values[2] == 7);
  EXPECT_THROWS(ToChannels(g3, 2));

  // 4 -> 2 (factor 2): half-pixel centres fall between source pixels 2i and 2i+1,
  // so each output is the mean of a 2x2 block (tf.image.resize, bilinear).
  FloatImage big = ToFloat(Grey(4, 4, {0, 2, 10, 10, 4, 6, 10, 11, 100, 100, 0, 0, 100, 101, 0, 255}));
  FloatImage small = Resize(big, 2, 2);
  EXPECT(small.width == 2 && small.height == 2);
  EXPECT(Near(small.values[0], 3.0));     // (0+2+4+6)/4
  EXPECT(Near(small.values[1], 10.25));   // (10+10+10+11)/4
  EXPECT(Near(small.values[2], 100.25));  // 401/4
  EXPECT(Near(small.values[3], 63.75));   // 255/4
  // 2 -> 4 (enlarging): source coordinates -0.25, 0.25, 0.75, 1.25, clamped at the edges.
  FloatImage up = Resize(FGrey(2, 1, {0, 100}), 4, 1);
  EXPECT(Near(up.values[0], 0.0) && Near(up.values[1], 25.0) && Near(up.values[2], 75.0) &&
         Near(up.values[3], 100.0));
  // Same size is the identity.
  EXPECT(Resize(big, 4, 4).values == big.values);
  // 3 -> 2: coordinates 0.25 and 1.75 -> 25 and 175 (no area averaging: like TF, it aliases).
  FloatImage odd = Resize(FGrey(3, 1, {0, 100, 200}), 2, 1);
  EXPECT(Near(odd.values[0], 25.0) && Near(odd.values[1], 175.0));
  // Rows and columns interpolate independently; channels stay apart.
  FloatImage rgb2;
  rgb2.width = 2;
  rgb2.height = 2;
  rgb2.channels = 3;
  rgb2.values = {0, 10, 20, 40, 50, 60, 80, 90, 100, 120, 130, 140};
  FloatImage one = Resize(rgb2, 1, 1);  // centre of the 2x2: the mean of the four
  EXPECT(one.channels == 3 && Near(one.values[0], 60.0) && Near(one.values[1], 70.0) &&
         Near(one.values[2], 80.0));
}

void TestInvertAndNormalize() {
  FloatImage dark = FGrey(3, 3, {0, 0, 0, 0, 255, 0, 0, 0, 0});
  EXPECT(!HasLightBackground(dark));
  FloatImage light = FGrey(3, 3, {250, 250, 250, 250, 0, 250, 250, 250, 250});
  EXPECT(HasLightBackground(light));
  Invert(&light);
  EXPECT(light.values[0] == 5 && light.values[4] == 255);

  Normalization norm;  // bnn-tf's default: x / 127.5 - 1
  std::vector<float> v = Normalize(FGrey(3, 1, {0, 255, 51}), norm);
  EXPECT(Near(v[0], -1.0) && Near(v[1], 1.0) && Near(v[2], 51 / 127.5 - 1.0));

  bool inverted = false;
  std::vector<float> in =
      PrepareInput(Grey(3, 3, {255, 255, 255, 255, 0, 255, 255, 255, 255}), 3, 3, 1, norm,
                   InvertMode::kAuto, &inverted);
  EXPECT(inverted && Near(in[0], -1.0) && Near(in[4], 1.0));
  in = PrepareInput(Grey(3, 3, {255, 255, 255, 255, 0, 255, 255, 255, 255}), 3, 3, 1, norm,
                    InvertMode::kNo, &inverted);
  EXPECT(!inverted && Near(in[0], 1.0));

  std::vector<int8_t> q = QuantizeInt8({-1.0f, 0.0f, 1.0f, 100.0f}, 1.0f / 127.0f, 0);
  EXPECT(q[0] == -127 && q[1] == 0 && q[2] == 127 && q[3] == 127);
  q = QuantizeInt8({0.0f}, 0.5f, -128);
  EXPECT(q[0] == -128);
  EXPECT_THROWS(QuantizeInt8({0.0f}, 0.0f, 0));
}

void TestPostprocessing() {
  std::vector<float> p = Softmax({1.0f, 2.0f, 3.0f});
  const double e1 = std::exp(1.0), e2 = std::exp(2.0), e3 = std::exp(3.0);
  EXPECT(Near(p[0], e1 / (e1 + e2 + e3)) && Near(p[2], e3 / (e1 + e2 + e3)));
  p = Softmax({1000.0f, 1000.0f});  // no overflow
  EXPECT(Near(p[0], 0.5) && Near(p[1], 0.5));

  std::vector<Prediction> top = TopK({0.5f, 3.0f, -1.0f, 3.0f, 2.0f}, 3);
  EXPECT(top.size() == 3);
  EXPECT(top[0].index == 1 && top[1].index == 3 && top[2].index == 4);  // tie -> lower index
  EXPECT(Near(top[0].score, 3.0));
  EXPECT(TopK({1.0f, 2.0f}, 5).size() == 2);

  LatencyStats s = Summarize({4.0, 1.0, 3.0, 2.0});
  EXPECT(Near(s.median_ms, 2.5) && Near(s.mean_ms, 2.5) && Near(s.min_ms, 1.0) &&
         Near(s.max_ms, 4.0));
  EXPECT(Near(Summarize({5.0, 1.0, 3.0}).median_ms, 3.0));

  const std::string path = "bnn_runner_selftest_labels.txt";
  {
    std::ofstream f(path, std::ios::binary);
    f << "T-shirt/top\r\nAnkle boot\n\n";
  }
  std::vector<std::string> labels = ReadLabels(path);
  std::remove(path.c_str());
  EXPECT(labels.size() == 2 && labels[0] == "T-shirt/top" && labels[1] == "Ankle boot");
}

int DumpInput(int argc, char** argv) {
  if (argc != 9) {
    std::fprintf(stderr, "usage: --dump-input IMAGE H W C SCALE OFFSET auto|yes|no\n");
    return 2;
  }
  Normalization norm;
  norm.scale = std::stof(argv[6]);
  norm.offset = std::stof(argv[7]);
  const std::string mode = argv[8];
  const InvertMode invert =
      mode == "yes" ? InvertMode::kYes : mode == "no" ? InvertMode::kNo : InvertMode::kAuto;
  bool inverted = false;
  const std::vector<float> values = PrepareInput(ReadPnm(argv[2]), std::atoi(argv[3]),
                                                 std::atoi(argv[4]), std::atoi(argv[5]), norm,
                                                 invert, &inverted);
  std::printf("inverted %d\n", inverted ? 1 : 0);
  for (float v : values) std::printf("%.9g\n", v);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--dump-input") {
    try {
      return DumpInput(argc, argv);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 2;
    }
  }
  TestPnm();
  TestChannelsAndResize();
  TestInvertAndNormalize();
  TestPostprocessing();
  std::printf("%d checks, %d failures\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
