package org.bnntf.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import java.util.Arrays;
import java.util.List;
import org.junit.Test;

public class PostprocessorTest {
  @Test
  public void softmaxMatchesTheFormula() {
    float[] p = Postprocessor.softmax(new float[] {1f, 2f, 3f});
    double z = Math.exp(1) + Math.exp(2) + Math.exp(3);
    assertEquals(Math.exp(1) / z, p[0], 1e-6);
    assertEquals(Math.exp(3) / z, p[2], 1e-6);
    p = Postprocessor.softmax(new float[] {1000f, 1000f}); // no overflow
    assertEquals(0.5f, p[0], 1e-6f);
    assertEquals(0.5f, p[1], 1e-6f);
  }

  @Test
  public void topKIsSortedWithTiesToTheLowerIndex() {
    List<String> labels = Arrays.asList("a", "b", "c", "d", "e");
    List<Prediction> top = Postprocessor.topK(new float[] {0.5f, 3f, -1f, 3f, 2f}, labels, 3);
    assertEquals(3, top.size());
    assertEquals(1, top.get(0).index);
    assertEquals("b", top.get(0).label);
    assertEquals(3, top.get(1).index);
    assertEquals(4, top.get(2).index);
    assertEquals(3f, top.get(0).score, 0f);
    assertEquals(2, Postprocessor.topK(new float[] {1f, 2f}, Arrays.asList("x", "y"), 5).size());
    assertEquals("y  73.1 %", Postprocessor.topK(new float[] {1f, 2f}, Arrays.asList("x", "y"), 1).get(0).format());
    assertThrows(
        IllegalArgumentException.class,
        () -> Postprocessor.topK(new float[] {1f}, Arrays.asList("x", "y"), 1));
  }

  @Test
  public void medianOfTimings() {
    assertEquals(2.5, Postprocessor.medianMillis(new long[] {4_000_000, 1_000_000, 3_000_000, 2_000_000}), 1e-12);
    assertEquals(3.0, Postprocessor.medianMillis(new long[] {5_000_000, 1_000_000, 3_000_000}), 1e-12);
  }
}
