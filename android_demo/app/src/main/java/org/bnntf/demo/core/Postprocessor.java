package org.bnntf.demo.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Logits → probabilities → top-k, and latency statistics. */
public final class Postprocessor {
  private Postprocessor() {}

  /** Numerically stable softmax (subtracts the maximum first). */
  public static float[] softmax(float[] logits) {
    float[] out = new float[logits.length];
    if (logits.length == 0) {
      return out;
    }
    float max = logits[0];
    for (float v : logits) {
      max = Math.max(max, v);
    }
    double total = 0;
    for (int i = 0; i < logits.length; i++) {
      out[i] = (float) Math.exp((double) logits[i] - max);
      total += out[i];
    }
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) (out[i] / total);
    }
    return out;
  }

  /** The k best classes, best first; ties go to the lower index. */
  public static List<Prediction> topK(float[] logits, List<String> labels, int k) {
    if (labels.size() != logits.length) {
      throw new IllegalArgumentException(
          logits.length + " outputs but " + labels.size() + " labels");
    }
    float[] probs = softmax(logits);
    Integer[] order = new Integer[logits.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    // Arrays.sort on objects is stable, so equal logits keep index order.
    Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
    List<Prediction> out = new ArrayList<>();
    for (int i = 0; i < Math.min(k, order.length); i++) {
      int idx = order[i];
      out.add(new Prediction(idx, labels.get(idx), logits[idx], probs[idx]));
    }
    return out;
  }

  /** Median of durations in nanoseconds, in milliseconds. */
  public static double medianMillis(long[] nanos) {
    if (nanos.length == 0) {
      throw new IllegalArgumentException("no timings");
    }
    long[] sorted = nanos.clone();
    Arrays.sort(sorted);
    int n = sorted.length;
    double median = n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    return median / 1e6;
  }
}
