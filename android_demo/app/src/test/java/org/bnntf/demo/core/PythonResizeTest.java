package org.bnntf.demo.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;

import org.junit.Test;

/**
 * RGB and grey pre-processing with a resize against values Python produced with bnn-tf's one
 * pre-processing function ({@code bnn_tf.data.preprocess_images}): a random 5×3 (W×H) RGB image
 * (numpy seed 15) resized to 3×4, once as an RGB and once as a grey model input. Regenerate with
 * the snippet in docs/data.md ("Android check values"). RealBundleTest covers a real bundle.
 */
public class PythonResizeTest {
  // ARGB pixels of the 5×3 image, row by row.
  static final int[] IMAGE = {0xff01af64, 0xffee1da1, 0xff57b179, 0xff749fb4, 0xffe463d9, 0xffd0b1e1, 0xffe03d91, 0xff0a2b58, 0xffecf1e0, 0xff33c283, 0xff7a0b14, 0xff4e7471, 0xffa53254, 0xff92fa93, 0xffa8f71c};

  // bnn_tf.data.preprocess_images(image, Preprocessing(4, 3, 3)): HWC, x / 127.5 - 1.
  static final float[] PYTHON_RGB = {-0.372549057f, -0.00915026665f, -0.056209147f, -0.31764704f, 0.388235331f, -0.0509803295f, 0.495424867f, -0.0666665435f, 0.605228782f, 0.281045914f, 0.0496733189f, 0.32614398f, -0.695098042f, -0.268627405f, -0.21274507f, 0.113072157f, 0.377777934f, 0.396078467f, 0.361437917f, -0.186601162f, 0.122222424f, -0.465686262f, -0.642156839f, -0.321568608f, 0.0248367786f, 0.757189631f, -0.00686258078f, -0.158169866f, -0.639215708f, -0.599999964f, 0.294117689f, -0.607843101f, -0.34117645f, 0.260130763f, 0.945098162f, -0.469280839f};

  // The same for a grey model: integer BT.601 grey first, then the resize.
  static final float[] PYTHON_GREY = {-0.124182999f, 0.129411817f, 0.179085016f, 0.150326848f, -0.390196025f, 0.301634192f, 0.0120916367f, -0.554901958f, 0.450653791f, -0.492810428f, -0.309803903f, 0.576470733f};

  private static ModelMetadata meta(int channels) {
    return ModelMetadata.parse(TestData.metadata("unknown", 4, 3, channels, "[\"a\", \"b\", \"c\"]"));
  }

  @Test
  public void rgbResizeAndNormalisationMatchPython() {
    Preprocessor.Prepared p = Preprocessor.prepare(IMAGE, 5, 3, meta(3), Preprocessor.InvertMode.AUTO);
    assertFalse(p.inverted);
    assertEquals(4 * 3 * 3, p.values.length);
    assertArrayEquals(PYTHON_RGB, p.values, 1e-6f);
  }

  @Test
  public void greyResizeAndNormalisationMatchPython() {
    Preprocessor.Prepared p = Preprocessor.prepare(IMAGE, 5, 3, meta(1), Preprocessor.InvertMode.NO);
    assertArrayEquals(PYTHON_GREY, p.values, 1e-6f);
  }

  @Test
  public void sameSizeIsACopyAndHalfPixelCentresAverageNeighbours() {
    int[] px = {0, 100, 200, 50};
    assertArrayEquals(new float[] {0, 100, 200, 50}, Preprocessor.resizeBilinear(px, 2, 2, 1, 2, 2), 0f);
    // 2 → 1: the one output pixel sits between the two inputs.
    assertArrayEquals(new float[] {50f}, Preprocessor.resizeBilinear(new int[] {0, 100}, 2, 1, 1, 1, 1), 0f);
    // 1 → 2: both outputs clamp to the single input.
    assertArrayEquals(new float[] {7f, 7f}, Preprocessor.resizeBilinear(new int[] {7}, 1, 1, 1, 2, 1), 0f);
  }
}
