// bnn_runner: classify one image (or raw tensor) with a bnn-tf .tflite and
// print the top-k classes and the latency.
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
#endif

namespace {

using bnn_runner::InvertMode;

struct Options {
  std::string model;
  std::string labels;
  std::string image;
  std::string raw;
  bnn_runner::Normalization norm;
  InvertMode invert = InvertMode::kAuto;
  int top_k = 3;
  int runs = 20;
  int warmup = 3;
  int threads = 1;
  bool indirect_bgemm = false;
};

void Usage() {
  std::fprintf(stderr,
               "usage: bnn_runner --model model.tflite (--image img.pgm|img.ppm | --raw x.bin)\n"
               "                  [--labels labels.txt] [--scale S] [--offset O]\n"
               "                  [--invert auto|yes|no] [--top-k K] [--runs N] [--warmup N]\n"
               "                  [--threads T] [--indirect-bgemm]\n"
               "  --image: binary PGM/PPM, resized to the model input; pixels * scale + offset\n"
               "  --raw:   the input tensor itself (float32, or int8 for int8 models), no\n"
               "           pre-processing; its size must match the model input exactly\n"
               "  scale/offset default to bnn-tf's 1/127.5 and -1 (see metadata.json)\n");
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
    else if (arg == "--image") o.image = value();
    else if (arg == "--raw") o.raw = value();
    else if (arg == "--scale") o.norm.scale = std::stof(value());
    else if (arg == "--offset") o.norm.offset = std::stof(value());
    else if (arg == "--top-k") o.top_k = std::stoi(value());
    else if (arg == "--runs") o.runs = std::stoi(value());
    else if (arg == "--warmup") o.warmup = std::stoi(value());
    else if (arg == "--threads") o.threads = std::stoi(value());
    else if (arg == "--indirect-bgemm") o.indirect_bgemm = true;
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
  if (o.model.empty()) throw std::runtime_error("--model is required");
  if (o.image.empty() == o.raw.empty()) throw std::runtime_error("give exactly one of --image, --raw");
  if (o.runs < 1 || o.threads < 1 || o.top_k < 1 || o.warmup < 0) {
    throw std::runtime_error("--runs, --threads and --top-k must be >= 1, --warmup >= 0");
  }
  return o;
}

void Check(TfLiteStatus status, const char* what) {
  if (status != kTfLiteOk) throw std::runtime_error(std::string(what) + " failed");
}

// Copies the input into the model's input tensor (float32 or int8).
void FillInput(tflite::Interpreter* interpreter, const Options& o) {
  TfLiteTensor* input = interpreter->input_tensor(0);
  if (input->dims->size != 4) throw std::runtime_error("expected a 4-D NHWC model input");
  const int height = input->dims->data[1], width = input->dims->data[2],
            channels = input->dims->data[3];
  if (!o.raw.empty()) {
    const std::vector<uint8_t> bytes = bnn_runner::ReadFileBytes(o.raw);
    if (bytes.size() != input->bytes) {
      throw std::runtime_error(o.raw + ": " + std::to_string(bytes.size()) +
                               " bytes, but the model input has " +
                               std::to_string(input->bytes));
    }
    std::memcpy(input->data.raw, bytes.data(), bytes.size());
    return;
  }
  bool inverted = false;
  const std::vector<float> values = bnn_runner::PrepareInput(
      bnn_runner::ReadPnm(o.image), height, width, channels, o.norm, o.invert, &inverted);
  std::printf("input: %s -> %dx%dx%d%s\n", o.image.c_str(), height, width, channels,
              inverted ? " (inverted: light background)" : "");
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

int Run(const Options& o) {
  std::unique_ptr<tflite::FlatBufferModel> model =
      tflite::FlatBufferModel::BuildFromFile(o.model.c_str());
  if (!model) throw std::runtime_error("cannot load " + o.model);
  tflite::ops::builtin::BuiltinOpResolver resolver;
#ifdef BNN_WITH_LCE
  compute_engine::tflite::RegisterLCECustomOps(&resolver, /*use_reference_bconv=*/false,
                                               o.indirect_bgemm);
#endif
  std::unique_ptr<tflite::Interpreter> interpreter;
  tflite::InterpreterBuilder(*model, resolver)(&interpreter);
  if (!interpreter) {
    throw std::runtime_error(
        "cannot build the interpreter. If the model has LCE ops (LceBconv2d, LceQuantize), "
        "build with -DBNN_WITH_LCE=ON (metadata.json: runtime.requires_lce)");
  }
  Check(interpreter->SetNumThreads(o.threads), "SetNumThreads");
  Check(interpreter->AllocateTensors(), "AllocateTensors");
  FillInput(interpreter.get(), o);

  for (int i = 0; i < o.warmup; ++i) Check(interpreter->Invoke(), "Invoke");
  std::vector<double> samples;
  for (int i = 0; i < o.runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    Check(interpreter->Invoke(), "Invoke");
    const auto stop = std::chrono::steady_clock::now();
    samples.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  const std::vector<float> scores = ReadOutput(interpreter.get());
  const std::vector<std::string> labels =
      o.labels.empty() ? std::vector<std::string>() : bnn_runner::ReadLabels(o.labels);
  for (const auto& p : bnn_runner::TopK(scores, o.top_k)) {
    const std::string name = p.index < static_cast<int>(labels.size()) ? labels[p.index] : "";
    std::printf("%d\t%s\t%.4f\t(score %.4f)\n", p.index, name.c_str(), p.probability, p.score);
  }
  const bnn_runner::LatencyStats s = bnn_runner::Summarize(samples);
  std::printf("latency: median %.3f ms, mean %.3f, min %.3f, max %.3f over %d runs, %d thread(s)\n",
              s.median_ms, s.mean_ms, s.min_ms, s.max_ms, o.runs, o.threads);
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
