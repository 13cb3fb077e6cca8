package org.bnntf.demo.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.function.IntToDoubleFunction;

/**
 * Turns an image (ARGB pixels, as {@code Bitmap.getPixels} returns them) into the model input,
 * exactly like bnn-tf's Python pre-processing ({@code bnn_tf.data.preprocess_tensor}) and the
 * Raspberry Pi runner: channels → resize (bilinear, half-pixel centres, in float, skipped at the
 * input size) → (maybe) invert → {@code pixel * scale + offset}. Grey or RGB, HWC.
 */
public final class Preprocessor {
  /** When to invert the image (white ↔ black). */
  public enum InvertMode {
    /** Invert when the model was trained on a dark background and the image border is light. */
    AUTO,
    YES,
    NO
  }

  /** The prepared input and whether it was inverted. */
  public static final class Prepared {
    public final float[] values;
    public final boolean inverted;

    Prepared(float[] values, boolean inverted) {
      this.values = values;
      this.inverted = inverted;
    }
  }

  private Preprocessor() {}

  /**
   * Grey from RGB with integer BT.601 weights: {@code (299 R + 587 G + 114 B + 500) / 1000}.
   * Returns one byte value (0..255) per pixel, or three per pixel when {@code channels == 3}.
   */
  public static int[] toChannels(int[] argb, int channels) {
    if (channels != 1 && channels != 3) {
      throw new IllegalArgumentException("only 1 or 3 channels");
    }
    int[] out = new int[argb.length * channels];
    for (int i = 0; i < argb.length; i++) {
      int r = (argb[i] >> 16) & 0xff;
      int g = (argb[i] >> 8) & 0xff;
      int b = argb[i] & 0xff;
      if (channels == 1) {
        out[i] = (299 * r + 587 * g + 114 * b + 500) / 1000;
      } else {
        out[3 * i] = r;
        out[3 * i + 1] = g;
        out[3 * i + 2] = b;
      }
    }
    return out;
  }

  /**
   * Shrinking: each output pixel is the rounded mean of the source pixels in its cell (integer
   * cell bounds); enlarging: nearest neighbour; same size: a copy. HWC layout.
   */
  public static int[] resize(int[] pixels, int width, int height, int channels, int outW, int outH) {
    if (outW <= 0 || outH <= 0) {
      throw new IllegalArgumentException("resize to an empty image");
    }
    if (pixels.length != width * height * channels) {
      throw new IllegalArgumentException("pixel count does not match width × height × channels");
    }
    if (width == outW && height == outH) {
      return pixels.clone();
    }
    int[] out = new int[outW * outH * channels];
    for (int oy = 0; oy < outH; oy++) {
      int y0 = (int) ((long) oy * height / outH);
      int y1 = Math.max(y0 + 1, (int) (((long) (oy + 1) * height + outH - 1) / outH));
      for (int ox = 0; ox < outW; ox++) {
        int x0 = (int) ((long) ox * width / outW);
        int x1 = Math.max(x0 + 1, (int) (((long) (ox + 1) * width + outW - 1) / outW));
        for (int c = 0; c < channels; c++) {
          long sum = 0;
          for (int y = y0; y < y1; y++) {
            for (int x = x0; x < x1; x++) {
              sum += pixels[(y * width + x) * channels + c];
            }
          }
          long count = (long) (y1 - y0) * (x1 - x0);
          out[(oy * outW + ox) * channels + c] = (int) ((sum + count / 2) / count);
        }
      }
    }
    return out;
  }

  /**
   * Bilinear resize with half-pixel centres and no antialiasing, in float32, as TensorFlow's
   * {@code tf.image.resize(method="bilinear", antialias=False)} (ResizeBilinear, {@code
   * half_pixel_centers=true}): source coordinate {@code (o + 0.5) * in / out - 0.5}, rows and
   * columns clamped to the image, top and bottom rows interpolated along x, then along y.
   */
  public static float[] resizeBilinear(
      int[] pixels, int width, int height, int channels, int outW, int outH) {
    if (outW <= 0 || outH <= 0) {
      throw new IllegalArgumentException("resize to an empty image");
    }
    if (pixels.length != width * height * channels) {
      throw new IllegalArgumentException("pixel count does not match width × height × channels");
    }
    float[] out = new float[outW * outH * channels];
    if (width == outW && height == outH) {
      for (int i = 0; i < pixels.length; i++) {
        out[i] = pixels[i];
      }
      return out;
    }
    float yScale = (float) height / outH;
    float xScale = (float) width / outW;
    int[] x0 = new int[outW];
    int[] x1 = new int[outW];
    float[] xLerp = new float[outW];
    for (int ox = 0; ox < outW; ox++) {
      float in = ((float) ox + 0.5f) * xScale - 0.5f;
      float f = (float) Math.floor(in);
      x0[ox] = Math.max((int) f, 0);
      x1[ox] = Math.min((int) Math.ceil(in), width - 1);
      xLerp[ox] = in - f;
    }
    for (int oy = 0; oy < outH; oy++) {
      float in = ((float) oy + 0.5f) * yScale - 0.5f;
      float f = (float) Math.floor(in);
      int y0 = Math.max((int) f, 0);
      int y1 = Math.min((int) Math.ceil(in), height - 1);
      float yLerp = in - f;
      for (int ox = 0; ox < outW; ox++) {
        for (int c = 0; c < channels; c++) {
          float tl = pixels[(y0 * width + x0[ox]) * channels + c];
          float tr = pixels[(y0 * width + x1[ox]) * channels + c];
          float bl = pixels[(y1 * width + x0[ox]) * channels + c];
          float br = pixels[(y1 * width + x1[ox]) * channels + c];
          float top = tl + (tr - tl) * xLerp[ox];
          float bottom = bl + (br - bl) * xLerp[ox];
          out[(oy * outW + ox) * channels + c] = top + (bottom - top) * yLerp;
        }
      }
    }
    return out;
  }

  /** True when the mean of the border pixels is above 127.5 (a light background). */
  public static boolean hasLightBackground(float[] pixels, int width, int height, int channels) {
    return hasLightBorder(i -> pixels[i], width, height, channels);
  }

  /** True when the mean of the border pixels is above 127.5 (a light background). */
  public static boolean hasLightBackground(int[] pixels, int width, int height, int channels) {
    // A double holds sums of 8-bit values exactly, so this is the integer comparison.
    return hasLightBorder(i -> pixels[i], width, height, channels);
  }

  private static boolean hasLightBorder(
      IntToDoubleFunction pixel, int width, int height, int channels) {
    double sum = 0;
    long count = 0;
    for (int y = 0; y < height; y++) {
      for (int x = 0; x < width; x++) {
        if (y != 0 && y != height - 1 && x != 0 && x != width - 1) {
          continue;
        }
        for (int c = 0; c < channels; c++) {
          sum += pixel.applyAsDouble((y * width + x) * channels + c);
        }
        count += channels;
      }
    }
    return count > 0 && 2 * sum > 255.0 * count;
  }

  /** The full pre-processing for a model described by {@code meta}; grey or RGB models. */
  public static Prepared prepare(
      int[] argb, int width, int height, ModelMetadata meta, InvertMode mode) {
    if (argb.length != width * height) {
      throw new IllegalArgumentException("pixel count does not match width × height");
    }
    int[] channels = toChannels(argb, meta.channels);
    float[] px;
    if ("area".equals(meta.resizeMethod)) {
      int[] small = resize(channels, width, height, meta.channels, meta.width, meta.height);
      px = new float[small.length];
      for (int i = 0; i < small.length; i++) {
        px[i] = small[i];
      }
    } else {
      px = resizeBilinear(channels, width, height, meta.channels, meta.width, meta.height);
    }
    boolean invert =
        mode == InvertMode.YES
            || (mode == InvertMode.AUTO
                && "dark".equals(meta.background)
                && hasLightBackground(px, meta.width, meta.height, meta.channels));
    float[] values = new float[px.length];
    for (int i = 0; i < px.length; i++) {
      float p = invert ? 255f - px[i] : px[i];
      values[i] = p * meta.scale + meta.offset;
    }
    return new Prepared(values, invert);
  }

  /** The values as a direct, native-order float32 buffer, as TFLite's Interpreter.run wants. */
  public static ByteBuffer toByteBuffer(float[] values) {
    ByteBuffer buffer = ByteBuffer.allocateDirect(4 * values.length).order(ByteOrder.nativeOrder());
    for (float v : values) {
      buffer.putFloat(v);
    }
    buffer.rewind();
    return buffer;
  }
}
