// bnn_runner: classify images (or a raw tensor) with a bnn-tf .tflite and
// print the top-k classes, the logits and the latency.
//
// Build: see README.md (CMake, linking TensorFlow Lite and, for models with
// LceBconv2d, LCE's custom ops). This is the only file that needs TFLite;
// everything it calls from image_io/classify is unit-tested by selftest.cc.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "classify.h"
#include "image_io.h"
#include "tensorflow/lite/interpreter.h"
#include "tensorflow/lite/kernels/register.h"
#include "tensorflow/lite/model.h"
#ifdef BNN_WITH_LCE
#include "larq_compute_engine/tflite/kernels/lce_ops_register.h"

namespace compute_engine {
namespace tflite {
// Defined in LCE's bconv2d.cc but not declared in lce_ops_register.h; needed to
// tell which kernel Register_BCONV_2D() chose (it is this one only with ruy).
TfLiteRegistration* Register_BCONV_2D_OPT_BGEMM();
}  // namespace tflite
}  // namespace compute_engine
#endif

namespace {

using bnn_runner::InvertMode;

struct Options {
  std::string model;
  std::string labels;
  std::vector<std::string> images;
  std::string raw;
  bnn_runner::Normalization norm;
  InvertMode invert = InvertMode::kAuto;
  int top_k = 3;
  int runs = 20;
  int warmup = 3;
  int threads = 1;
  bool indirect_bgemm = false;
  bool reference_bconv = false;
  bool print_kernel = false;
  bool require_optimized = false;
  bool json = false;
};

void Usage() {
  std::fprintf(stderr,
               "usage: bnn_runner --model model.tflite (--image img.pgm|img.ppm ... | --raw x.bin)\n"
               "                  [--labels labels.txt] [--scale S] [--offset O]\n"
               "                  [--invert auto|yes|no] [--top-k K] [--runs N] [--warmup N]\n"
               "                  [--threads T] [--indirect-bgemm | --reference-bconv]\n"
               "                  [--json] [--print-kernel] [--require-optimized]\n"
               "       bnn_runner --print-kernel [--require-optimized] [--indirect-bgemm]\n"
               "  --image: binary PGM (grey) or PPM (RGB) of any size, converted to the model's\n"
               "           channels, resized (bilinear, as tf.image.resize), pixels * scale + offset;\n"
               "           may be repeated: each image is classified in turn\n"
               "  --raw:   the input tensor itself (float32, or int8 for int8 models), no\n"
               "           pre-processing; its size must match the model input exactly\n"
               "  scale/offset default to bnn-tf's 1/127.5 and -1 (see metadata.json)\n"
               "  --indirect-bgemm: LCE's indirect BGEMM bconv kernel (needed for grouped convs)\n"
               "  --reference-bconv: LCE's slow reference bconv kernel (for comparisons only)\n"
               "  --json: one JSON object per image, logits as float32-exact decimals (%%.9g)\n"
               "  --print-kernel: which LceBconv2d kernel is registered, and the build flags\n"
               "  --require-optimized: exit 3 if that kernel is LCE's reference kernel\n");
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--model") o.model = value();
    else if (arg == "--labels") o.labels = value();
    else if (arg == "--image") o.images.push_back(value());
    else if (arg == "--raw") o.raw = value();
    else if (arg == "--scale") o.norm.scale = std::stof(value());
    else if (arg == "--offset") o.norm.offset = std::stof(value());
    else if (arg == "--top-k") o.top_k = std::stoi(value());
    else if (arg == "--runs") o.runs = std::stoi(value());
    else if (arg == "--warmup") o.warmup = std::stoi(value());
    else if (arg == "--threads") o.threads = std::stoi(value());
    else if (arg == "--indirect-bgemm") o.indirect_bgemm = true;
    else if (arg == "--reference-bconv") o.reference_bconv = true;
    else if (arg == "--print-kernel") o.print_kernel = true;
    else if (arg == "--require-optimized") o.require_optimized = true;
    else if (arg == "--json") o.json = true;
    else if (arg == "--invert") {
      const std::string v = value();
      if (v == "auto") o.invert = InvertMode::kAuto;
      else if (v == "yes") o.invert = InvertMode::kYes;
      else if (v == "no") o.invert = InvertMode::kNo;
      else throw std::runtime_error("--invert must be auto, yes or no");
    } else if (arg == "-h" || arg == "--help") {
      Usage();
      std::exit(0);
    } else {
      throw std::runtime_error("unknown argument " + arg);
    }
  }
  if (o.indirect_bgemm && o.reference_bconv) {
    throw std::runtime_error("--indirect-bgemm and --reference-bconv exclude each other");
  }
  if (o.model.empty() && o.print_kernel) return o;  // only the kernel report
  if (o.model.empty()) throw std::runtime_error("--model is required");
  if (o.images.empty() == o.raw.empty()) throw std::runtime_error("give --image(s) or --raw");
  if (o.runs < 1 || o.threads < 1 || o.top_k < 1 || o.warmup < 0) {
    throw std::runtime_error("--runs, --threads and --top-k must be >= 1, --warmup >= 0");
  }
  return o;
}

void Check(TfLiteStatus status, const char* what) {
  if (status != kTfLiteOk) throw std::runtime_error(std::string(what) + " failed");
}

// Copies `raw` (the tensor's bytes) or the pre-processed `image` into the
// model's input tensor (float32 or int8). Returns whether the image was inverted.
bool FillInput(tflite::Interpreter* interpreter, const Options& o, const std::string& image) {
  TfLiteTensor* input = interpreter->input_tensor(0);
  if (input->dims->size != 4) throw std::runtime_error("expected a 4-D NHWC model input");
  const int height = input->dims->data[1], width = input->dims->data[2],
            channels = input->dims->data[3];
  if (image.empty()) {
    const std::vector<uint8_t> bytes = bnn_runner::ReadFileBytes(o.raw);
    if (bytes.size() != input->bytes) {
      throw std::runtime_error(o.raw + ": " + std::to_string(bytes.size()) +
                               " bytes, but the model input has " +
                               std::to_string(input->bytes));
    }
    std::memcpy(input->data.raw, bytes.data(), bytes.size());
    return false;
  }
  bool inverted = false;
  const std::vector<float> values = bnn_runner::PrepareInput(
      bnn_runner::ReadPnm(image), height, width, channels, o.norm, o.invert, &inverted);
  if (input->type == kTfLiteFloat32) {
    std::memcpy(interpreter->typed_input_tensor<float>(0), values.data(),
                values.size() * sizeof(float));
  } else if (input->type == kTfLiteInt8) {
    const std::vector<int8_t> q =
        bnn_runner::QuantizeInt8(values, input->params.scale, input->params.zero_point);
    std::memcpy(interpreter->typed_input_tensor<int8_t>(0), q.data(), q.size());
  } else {
    throw std::runtime_error("unsupported input type (float32 and int8 are supported)");
  }
  return inverted;
}

std::vector<float> ReadOutput(tflite::Interpreter* interpreter) {
  const TfLiteTensor* output = interpreter->output_tensor(0);
  const int n = output->dims->data[output->dims->size - 1];
  std::vector<float> scores(n);
  if (output->type == kTfLiteFloat32) {
    std::memcpy(scores.data(), interpreter->typed_output_tensor<float>(0), n * sizeof(float));
  } else if (output->type == kTfLiteInt8) {
    const int8_t* q = interpreter->typed_output_tensor<int8_t>(0);
    for (int i = 0; i < n; ++i) {
      scores[i] = output->params.scale * (q[i] - output->params.zero_point);
    }
  } else {
    throw std::runtime_error("unsupported output type (float32 and int8 are supported)");
  }
  return scores;
}

// The LceBconv2d registration in `resolver`, named by comparing its prepare
// function with LCE's three registrations ("" without LCE or without the op).
std::string BconvKernel(const tflite::MutableOpResolver& resolver) {
#ifdef BNN_WITH_LCE
  namespace lce = compute_engine::tflite;
  const TfLiteRegistration* r = resolver.FindOp("LceBconv2d", 1);
  if (r == nullptr) return "";
  if (r->prepare == lce::Register_BCONV_2D_REF()->prepare) return "reference";
  if (r->prepare == lce::Register_BCONV_2D_OPT_BGEMM()->prepare) return "optimized_bgemm";
  if (r->prepare == lce::Register_BCONV_2D_OPT_INDIRECT_BGEMM()->prepare) {
    return "optimized_indirect_bgemm";
  }
  return "unknown";
#else
  (void)resolver;
  return "";
#endif
}

void RegisterOps(tflite::MutableOpResolver* resolver, const Options& o) {
#ifdef BNN_WITH_LCE
  compute_engine::tflite::RegisterLCECustomOps(resolver, o.reference_bconv, o.indirect_bgemm);
#else
  (void)resolver;
  if (o.indirect_bgemm || o.reference_bconv) {
    throw std::runtime_error("built without LCE (BNN_WITH_LCE=OFF): no bconv kernel to choose");
  }
#endif
}

// What this binary was built with: the facts that decide the bconv speed.
void PrintKernel(const std::string& kernel) {
#if defined(__aarch64__)
  const char* arch = "aarch64";
#elif defined(__x86_64__)
  const char* arch = "x86_64";
#elif defined(__arm__)
  const char* arch = "arm";
#else
  const char* arch = "other";
#endif
#ifdef TFLITE_WITH_RUY
  const bool ruy = true;
#else
  const bool ruy = false;
#endif
#if defined(__POPCNT__) || defined(__aarch64__) || defined(__ARM_NEON)
  const bool popcount = true;  // x86 POPCNT, or NEON's CNT on ARM
#else
  const bool popcount = false;
#endif
#ifdef BNN_WITH_XNNPACK
  const bool xnnpack = true;
#else
  const bool xnnpack = false;
#endif
  std::printf("bconv2d kernel: %s\n", kernel.empty() ? "none (built without LCE)" : kernel.c_str());
  std::printf("build: arch %s, TFLITE_WITH_RUY %s, hardware popcount %s, XNNPACK %s\n", arch,
              ruy ? "yes" : "no", popcount ? "yes" : "no", xnnpack ? "yes" : "no");
}

void PrintJsonString(const std::string& s) {
  std::putchar('"');
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') std::printf("\\%c", ch);
    else if (static_cast<unsigned char>(ch) < 0x20) std::printf("\\u%04x", ch);
    else std::putchar(ch);
  }
  std::putchar('"');
}

int Run(const Options& o) {
  tflite::ops::builtin::BuiltinOpResolver resolver;
  RegisterOps(&resolver, o);
  const std::string kernel = BconvKernel(resolver);
  if (o.print_kernel) PrintKernel(kernel);
  if (o.require_optimized && (kernel.empty() || kernel == "reference")) {
    std::fprintf(stderr,
                 "error: LceBconv2d runs LCE's reference kernel%s. Build with "
                 "TFLITE_ENABLE_RUY=ON (the default of this CMake project).\n",
                 kernel.empty() ? " (or none: built without LCE)" : "");
    return 3;
  }
  if (o.model.empty()) return 0;

  std::unique_ptr<tflite::FlatBufferModel> model =
      tflite::FlatBufferModel::BuildFromFile(o.model.c_str());
  if (!model) throw std::runtime_error("cannot load " + o.model);
  std::unique_ptr<tflite::Interpreter> interpreter;
  tflite::InterpreterBuilder(*model, resolver)(&interpreter);
  if (!interpreter) {
    throw std::runtime_error(
        "cannot build the interpreter. If the model has LCE ops (LceBconv2d, LceQuantize), "
        "build with -DBNN_WITH_LCE=ON (metadata.json: runtime.requires_lce)");
  }
  Check(interpreter->SetNumThreads(o.threads), "SetNumThreads");
  Check(interpreter->AllocateTensors(), "AllocateTensors");
  const std::vector<std::string> labels =
      o.labels.empty() ? std::vector<std::string>() : bnn_runner::ReadLabels(o.labels);

  // --raw is one "image" with an empty name.
  const std::vector<std::string> inputs = o.raw.empty() ? o.images : std::vector<std::string>{""};
  for (const std::string& image : inputs) {
    const bool inverted = FillInput(interpreter.get(), o, image);
    for (int i = 0; i < o.warmup; ++i) Check(interpreter->Invoke(), "Invoke");
    std::vector<double> samples;
    for (int i = 0; i < o.runs; ++i) {
      const auto start = std::chrono::steady_clock::now();
      Check(interpreter->Invoke(), "Invoke");
      const auto stop = std::chrono::steady_clock::now();
      samples.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
    }
    const std::vector<float> scores = ReadOutput(interpreter.get());
    const std::vector<bnn_runner::Prediction> top = bnn_runner::TopK(scores, o.top_k);
    const bnn_runner::LatencyStats s = bnn_runner::Summarize(samples);
    const std::string name = image.empty() ? o.raw : image;
    if (o.json) {
      // %.9g prints every float32 exactly enough to read back the same value.
      std::printf("{\"image\": ");
      PrintJsonString(name);
      std::printf(", \"inverted\": %s, \"top1\": %d, \"logits\": [", inverted ? "true" : "false",
                  top.empty() ? -1 : top[0].index);
      for (size_t i = 0; i < scores.size(); ++i) {
        std::printf("%s%.9g", i ? ", " : "", static_cast<double>(scores[i]));
      }
      std::printf("], \"latency_ms\": {\"median\": %.6f, \"mean\": %.6f, \"min\": %.6f, "
                  "\"max\": %.6f, \"runs\": %d}, \"threads\": %d, \"bconv_kernel\": ",
                  s.median_ms, s.mean_ms, s.min_ms, s.max_ms, o.runs, o.threads);
      PrintJsonString(kernel);
      std::printf("}\n");
      continue;
    }
    const TfLiteTensor* input = interpreter->input_tensor(0);
    std::printf("input: %s -> %dx%dx%d%s\n", name.c_str(), input->dims->data[1],
                input->dims->data[2], input->dims->data[3],
                inverted ? " (inverted: light background)" : "");
    for (const auto& p : top) {
      const std::string label = p.index < static_cast<int>(labels.size()) ? labels[p.index] : "";
      std::printf("%d\t%s\t%.4f\t(logit %.9g)\n", p.index, label.c_str(), p.probability,
                  static_cast<double>(p.score));
    }
    std::printf("latency: median %.3f ms, mean %.3f, min %.3f, max %.3f over %d runs, %d "
                "thread(s), bconv2d kernel %s\n",
                s.median_ms, s.mean_ms, s.min_ms, s.max_ms, o.runs, o.threads,
                kernel.empty() ? "none" : kernel.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(Parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    Usage();
    return 2;
  }
}
