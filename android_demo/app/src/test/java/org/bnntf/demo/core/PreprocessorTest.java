package org.bnntf.demo.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.Test;

public class PreprocessorTest {
  private static int argb(int r, int g, int b) {
    return 0xff000000 | (r << 16) | (g << 8) | b;
  }

  private static int[] greyArgb(int... values) {
    int[] out = new int[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = argb(values[i], values[i], values[i]);
    }
    return out;
  }

  @Test
  public void lumaUsesIntegerBt601Weights() {
    assertArrayEquals(new int[] {76}, Preprocessor.toChannels(new int[] {argb(255, 0, 0)}, 1));
    int expected = (299 * 10 + 587 * 200 + 114 * 30 + 500) / 1000;
    assertArrayEquals(new int[] {expected}, Preprocessor.toChannels(new int[] {argb(10, 200, 30)}, 1));
    assertArrayEquals(new int[] {10, 200, 30}, Preprocessor.toChannels(new int[] {argb(10, 200, 30)}, 3));
  }

  @Test
  public void shrinkingAveragesCellsAndEnlargingIsNearest() {
    int[] big = {0, 2, 10, 10, 4, 6, 10, 11, 100, 100, 0, 0, 100, 101, 0, 255};
    assertArrayEquals(new int[] {3, 10, 100, 64}, Preprocessor.resize(big, 4, 4, 1, 2, 2));
    assertArrayEquals(
        new int[] {1, 1, 9, 9, 1, 1, 9, 9}, Preprocessor.resize(new int[] {1, 9}, 2, 1, 1, 4, 2));
    assertArrayEquals(big, Preprocessor.resize(big, 4, 4, 1, 4, 4));
    // Non-integer ratio: cells [0, 2) and [1, 3) share the middle pixel.
    assertArrayEquals(new int[] {50, 150}, Preprocessor.resize(new int[] {0, 100, 200}, 3, 1, 1, 2, 1));
  }

  @Test
  public void normalisesToMinusOneToOne() {
    ModelMetadata meta = TestData.grey("dark", 1, 3);
    Preprocessor.Prepared p =
        Preprocessor.prepare(greyArgb(0, 255, 51), 3, 1, meta, Preprocessor.InvertMode.NO);
    assertFalse(p.inverted);
    assertArrayEquals(new float[] {-1f, 1f, 51 * (1 / 127.5f) - 1f}, p.values, 0f);
  }

  @Test
  public void autoInvertsLightBackgroundsOnlyForDarkBackgroundModels() {
    int[] photo = greyArgb(250, 250, 250, 250, 0, 250, 250, 250, 250); // dark object on white
    Preprocessor.Prepared p =
        Preprocessor.prepare(photo, 3, 3, TestData.grey("dark", 3, 3), Preprocessor.InvertMode.AUTO);
    assertTrue(p.inverted);
    assertEquals(1f, p.values[4], 0f); // the object became white
    assertEquals(5 * (1 / 127.5f) - 1f, p.values[0], 1e-7f);

    p = Preprocessor.prepare(photo, 3, 3, TestData.grey("unknown", 3, 3), Preprocessor.InvertMode.AUTO);
    assertFalse(p.inverted);
    int[] fmnistLike = greyArgb(0, 0, 0, 0, 255, 0, 0, 0, 0);
    p = Preprocessor.prepare(fmnistLike, 3, 3, TestData.grey("dark", 3, 3), Preprocessor.InvertMode.AUTO);
    assertFalse(p.inverted);
    p = Preprocessor.prepare(fmnistLike, 3, 3, TestData.grey("dark", 3, 3), Preprocessor.InvertMode.YES);
    assertTrue(p.inverted);
  }

  @Test
  public void resizesAPhotoToTheModelInput() {
    int[] photo = new int[56 * 56];
    for (int i = 0; i < photo.length; i++) {
      photo[i] = argb(0, 0, 0);
    }
    photo[0] = argb(255, 255, 255); // one white pixel in the top-left 2×2 cell
    Preprocessor.Prepared p =
        Preprocessor.prepare(photo, 56, 56, TestData.grey("dark", 28, 28), Preprocessor.InvertMode.AUTO);
    assertEquals(28 * 28, p.values.length);
    // Bilinear, half-pixel centres: output (0, 0) samples (0.5, 0.5), a quarter of the white pixel.
    assertEquals(63.75f * (1 / 127.5f) - 1f, p.values[0], 1e-6f);
    assertEquals(-1f, p.values[1], 0f);
  }

  @Test
  public void byteBufferIsNativeOrderFloat32() {
    ByteBuffer b = Preprocessor.toByteBuffer(new float[] {1.5f, -2f});
    assertTrue(b.isDirect());
    assertEquals(ByteOrder.nativeOrder(), b.order());
    assertEquals(8, b.remaining());
    assertEquals(1.5f, b.getFloat(0), 0f);
    assertEquals(-2f, b.getFloat(4), 0f);
  }
}
