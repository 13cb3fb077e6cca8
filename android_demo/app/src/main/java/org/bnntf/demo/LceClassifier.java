package org.bnntf.demo;

import android.content.Context;
import android.content.res.AssetFileDescriptor;
import android.graphics.Bitmap;
import android.os.SystemClock;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.bnntf.demo.core.ModelMetadata;
import org.bnntf.demo.core.Postprocessor;
import org.bnntf.demo.core.Prediction;
import org.bnntf.demo.core.Preprocessor;
import org.tensorflow.lite.Interpreter;

/**
 * Runs the bundled model (assets/bnn/) with the TFLite Java API. With LCE's lce-lite AAR on the
 * classpath instead of the stock org.tensorflow:tensorflow-lite, the same {@link Interpreter}
 * class also knows LCE's custom ops (LceBconv2d, LceQuantize, ...).
 */
final class LceClassifier implements Closeable {
  static final String ASSET_DIR = "bnn";

  /** One classification: top-k, the median latency of the timed runs, and the input used. */
  static final class Result {
    final List<Prediction> top;
    final double latencyMs;
    final int runs;
    final boolean inverted;

    Result(List<Prediction> top, double latencyMs, int runs, boolean inverted) {
      this.top = top;
      this.latencyMs = latencyMs;
      this.runs = runs;
      this.inverted = inverted;
    }
  }

  final ModelMetadata metadata;
  private final Interpreter interpreter;

  LceClassifier(Context context, int numThreads) throws IOException {
    metadata = ModelMetadata.parse(readAsset(context, ASSET_DIR + "/metadata.json"));
    Interpreter.Options options = new Interpreter.Options().setNumThreads(numThreads);
    // LCE's ops run on the CPU kernels of the AAR; XNNPACK does not handle them (LCE's
    // Android guide turns it off as well).
    options.setUseXNNPACK(false);
    interpreter = new Interpreter(mapAsset(context, ASSET_DIR + "/" + metadata.modelFile), options);
  }

  /** Classifies a bitmap; runs the model {@code runs} times and reports the median latency. */
  Result classify(Bitmap bitmap, Preprocessor.InvertMode invert, int runs) {
    int w = bitmap.getWidth();
    int h = bitmap.getHeight();
    int[] argb = new int[w * h];
    bitmap.getPixels(argb, 0, w, 0, 0, w, h);
    Preprocessor.Prepared prepared = Preprocessor.prepare(argb, w, h, metadata, invert);
    ByteBuffer input = Preprocessor.toByteBuffer(prepared.values);
    float[][] output = new float[1][metadata.numClasses()];
    interpreter.run(input, output); // warm-up: first run allocates and packs weights
    long[] nanos = new long[runs];
    for (int i = 0; i < runs; i++) {
      input.rewind();
      long start = SystemClock.elapsedRealtimeNanos();
      interpreter.run(input, output);
      nanos[i] = SystemClock.elapsedRealtimeNanos() - start;
    }
    List<Prediction> top = Postprocessor.topK(output[0], metadata.labels, 3);
    return new Result(top, Postprocessor.medianMillis(nanos), runs, prepared.inverted);
  }

  @Override
  public void close() {
    interpreter.close();
  }

  private static String readAsset(Context context, String path) throws IOException {
    try (InputStream in = context.getAssets().open(path)) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] buf = new byte[8192];
      int n;
      while ((n = in.read(buf)) > 0) {
        out.write(buf, 0, n);
      }
      return new String(out.toByteArray(), StandardCharsets.UTF_8);
    }
  }

  // Memory-maps the model; needs the asset stored uncompressed (noCompress "tflite" in Gradle).
  private static MappedByteBuffer mapAsset(Context context, String path) throws IOException {
    try (AssetFileDescriptor fd = context.getAssets().openFd(path);
        FileInputStream in = new FileInputStream(fd.getFileDescriptor());
        FileChannel channel = in.getChannel()) {
      return channel.map(FileChannel.MapMode.READ_ONLY, fd.getStartOffset(), fd.getDeclaredLength());
    }
  }
}
