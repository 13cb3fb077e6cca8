package org.bnntf.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.awt.image.BufferedImage;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.Test;

/**
 * Checks against a real bundle written by `bnn-tf deploy` (tests/test_android_jvm.py passes
 * -Dbnn.bundle=DIR and -Dbnn.expected=DIR with Python's pre-processed inputs). Skipped when the
 * properties are not set, e.g. in Android Studio.
 */
public class RealBundleTest {
  private static File dir(String property) {
    String path = System.getProperty(property);
    boolean given = path != null && !path.isEmpty();
    // -Dbnn.require=1 (set by the pytest) turns "skipped" into a failure.
    if (System.getProperty("bnn.require") != null) {
      assertTrue(property + " not set but bnn.require is", given);
    }
    assumeTrue(property + " not set", given);
    return new File(path);
  }

  private static String read(File f) throws IOException {
    return new String(Files.readAllBytes(f.toPath()), StandardCharsets.UTF_8);
  }

  // ImageIO's getRGB() gamma-converts 8-bit grey PNGs (linear grey colour space); Android's
  // BitmapFactory does not. Read grey samples directly so the test sees what a phone sees.
  private static int[] toArgb(BufferedImage image) {
    int w = image.getWidth();
    int h = image.getHeight();
    if (image.getRaster().getNumBands() != 1) {
      return image.getRGB(0, 0, w, h, null, 0, w);
    }
    int[] argb = new int[w * h];
    for (int y = 0; y < h; y++) {
      for (int x = 0; x < w; x++) {
        int g = image.getRaster().getSample(x, y, 0);
        argb[y * w + x] = 0xff000000 | (g << 16) | (g << 8) | g;
      }
    }
    return argb;
  }

  @Test
  public void parsesTheRealMetadata() throws IOException {
    ModelMetadata meta = ModelMetadata.parse(read(new File(dir("bnn.bundle"), "metadata.json")));
    assertEquals("model.tflite", meta.modelFile);
    assertEquals(10, meta.numClasses());
    assertEquals("Ankle boot", meta.labels.get(9));
    assertEquals(255 * meta.scale + meta.offset, 1f, 1e-6f);
    assertTrue(meta.requiresLce);
    assertTrue(meta.customOps.contains("LceBconv2d"));
    assertTrue(meta.binaryConvs > 0);
  }

  @Test
  @SuppressWarnings("unchecked")
  public void preprocessingAndTopKMatchPython() throws IOException {
    File bundle = dir("bnn.bundle");
    File expectedDir = dir("bnn.expected");
    ModelMetadata meta = ModelMetadata.parse(read(new File(bundle, "metadata.json")));
    Map<String, Object> expected =
        (Map<String, Object>) Json.parse(read(new File(bundle, "samples/expected.json")));
    List<Object> samples = (List<Object>) expected.get("samples");
    assertFalse(samples.isEmpty());
    for (Object o : samples) {
      Map<String, Object> s = (Map<String, Object>) o;
      String png = (String) s.get("png");
      BufferedImage image = ImageIO.read(new File(bundle, png));
      int w = image.getWidth();
      int h = image.getHeight();
      int[] argb = toArgb(image);
      Preprocessor.Prepared p =
          Preprocessor.prepare(argb, w, h, meta, Preprocessor.InvertMode.AUTO);
      assertFalse(png + ": a Fashion-MNIST image must not be inverted", p.inverted);
      String stem = new File(png).getName().replace(".png", "");
      String[] lines = read(new File(expectedDir, stem + ".txt")).trim().split("\n");
      assertEquals(png, lines.length, p.values.length);
      for (int i = 0; i < lines.length; i++) {
        assertEquals(png + " value " + i, Float.parseFloat(lines[i]), p.values[i], 0f);
      }
      List<Object> logits = (List<Object>) s.get("logits");
      float[] l = new float[logits.size()];
      for (int i = 0; i < l.length; i++) {
        l[i] = ((Double) logits.get(i)).floatValue();
      }
      List<Prediction> top = Postprocessor.topK(l, meta.labels, 3);
      List<Object> want = (List<Object>) s.get("expected_top3");
      for (int i = 0; i < 3; i++) {
        assertEquals(png + " top-" + (i + 1), ((Double) want.get(i)).intValue(), top.get(i).index);
      }
    }
  }
}
