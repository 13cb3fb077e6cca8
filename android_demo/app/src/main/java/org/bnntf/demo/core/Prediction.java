package org.bnntf.demo.core;

import java.util.Locale;

/** One class of a top-k result. */
public final class Prediction {
  public final int index;
  public final String label;
  /** The model's raw output (a logit for bnn-tf models). */
  public final float score;
  /** Softmax over all outputs. */
  public final float probability;

  public Prediction(int index, String label, float score, float probability) {
    this.index = index;
    this.label = label;
    this.score = score;
    this.probability = probability;
  }

  /** e.g. "Ankle boot  87.3 %". */
  public String format() {
    return String.format(Locale.ROOT, "%s  %.1f %%", label, 100f * probability);
  }

  @Override
  public String toString() {
    return format();
  }
}
