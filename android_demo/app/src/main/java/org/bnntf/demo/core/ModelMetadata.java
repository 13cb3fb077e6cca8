package org.bnntf.demo.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * The parts of a bnn-tf bundle's {@code metadata.json} that the app needs (written by {@code
 * bnn-tf deploy}, format "bnn-tf-deploy" version 1; fields documented in docs/deploy.md).
 */
public final class ModelMetadata {
  public static final String FORMAT = "bnn-tf-deploy";
  public static final int FORMAT_VERSION = 1;

  public final String modelFile;
  public final String modelName;
  public final int height;
  public final int width;
  public final int channels;
  /** The model input is {@code pixel * scale + offset}. */
  public final float scale;

  public final float offset;
  /** "dark" when the training images show light objects on black (Fashion-MNIST, MNIST). */
  public final String background;
  /**
   * How images of another size are resized: {@code "bilinear_half_pixel"} (like Python's
   * {@code tf.image.resize(method="bilinear", antialias=False)}; the default) or {@code "area"}.
   */
  public final String resizeMethod;

  public final List<String> labels;
  public final boolean requiresLce;
  public final List<String> customOps;
  public final int binaryConvs;

  private ModelMetadata(Map<String, Object> root) {
    String format = string(root, "format");
    if (!FORMAT.equals(format)) {
      throw new MetadataException(
          "not a bnn-tf bundle (format is " + format + "); write it with `bnn-tf deploy`");
    }
    int version = integer(root, "format_version");
    if (version != FORMAT_VERSION) {
      throw new MetadataException(
          "metadata format_version " + version + " is not supported (this app reads "
              + FORMAT_VERSION + "); update the app or re-run `bnn-tf deploy`");
    }
    Map<String, Object> model = object(root, "model");
    modelFile = string(model, "file");
    modelName = string(model, "name");
    Map<String, Object> input = object(root, "input");
    List<Object> shape = array(input, "shape");
    if (shape.size() != 4) {
      throw new MetadataException("input.shape must be [1, height, width, channels]");
    }
    height = integer(input, "height");
    width = integer(input, "width");
    channels = integer(input, "channels");
    if (height <= 0 || width <= 0 || (channels != 1 && channels != 3)) {
      throw new MetadataException("input: need height, width > 0 and 1 or 3 channels");
    }
    Map<String, Object> norm = object(input, "normalization");
    scale = (float) number(norm, "scale");
    offset = (float) number(norm, "offset");
    Object bg = input.get("background");
    background = bg instanceof String ? (String) bg : "unknown";
    Object rm = input.get("resize_method");
    resizeMethod = rm instanceof String ? (String) rm : "bilinear_half_pixel";
    if (!resizeMethod.equals("bilinear_half_pixel") && !resizeMethod.equals("area")) {
      throw new MetadataException(
          "input.resize_method " + resizeMethod + " is unknown (bilinear_half_pixel or area)");
    }
    List<String> names = new ArrayList<>();
    for (Object o : array(root, "labels")) {
      if (!(o instanceof String)) {
        throw new MetadataException("labels must be strings");
      }
      names.add((String) o);
    }
    labels = Collections.unmodifiableList(names);
    List<Object> outShape = array(object(root, "output"), "shape");
    int classes = (int) asNumber(outShape.get(outShape.size() - 1), "output.shape");
    if (classes != labels.size()) {
      throw new MetadataException(
          "the model has " + classes + " outputs but metadata lists " + labels.size() + " labels");
    }
    Map<String, Object> runtime = object(root, "runtime");
    Object lce = runtime.get("requires_lce");
    if (!(lce instanceof Boolean)) {
      throw new MetadataException("runtime.requires_lce must be true or false");
    }
    requiresLce = (Boolean) lce;
    List<String> ops = new ArrayList<>();
    for (Object o : array(runtime, "custom_ops")) {
      ops.add(String.valueOf(o));
    }
    customOps = Collections.unmodifiableList(ops);
    binaryConvs = integer(object(root, "conversion"), "binary_convs");
  }

  /** Parses and validates a metadata.json document. */
  public static ModelMetadata parse(String json) {
    Object root;
    try {
      root = Json.parse(json);
    } catch (Json.JsonException e) {
      throw new MetadataException("metadata.json is not valid JSON: " + e.getMessage());
    }
    if (!(root instanceof Map)) {
      throw new MetadataException("metadata.json must hold a JSON object");
    }
    @SuppressWarnings("unchecked")
    Map<String, Object> map = (Map<String, Object>) root;
    return new ModelMetadata(map);
  }

  /** Number of model outputs (= number of labels). */
  public int numClasses() {
    return labels.size();
  }

  /** Thrown when metadata.json is missing a field or is inconsistent. */
  public static final class MetadataException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public MetadataException(String message) {
      super(message);
    }
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> object(Map<String, Object> m, String key) {
    Object o = m.get(key);
    if (!(o instanceof Map)) {
      throw new MetadataException("metadata.json: '" + key + "' must be an object");
    }
    return (Map<String, Object>) o;
  }

  @SuppressWarnings("unchecked")
  private static List<Object> array(Map<String, Object> m, String key) {
    Object o = m.get(key);
    if (!(o instanceof List)) {
      throw new MetadataException("metadata.json: '" + key + "' must be an array");
    }
    return (List<Object>) o;
  }

  private static String string(Map<String, Object> m, String key) {
    Object o = m.get(key);
    if (!(o instanceof String)) {
      throw new MetadataException("metadata.json: '" + key + "' must be a string");
    }
    return (String) o;
  }

  private static double number(Map<String, Object> m, String key) {
    return asNumber(m.get(key), key);
  }

  private static double asNumber(Object o, String key) {
    if (!(o instanceof Double)) {
      throw new MetadataException("metadata.json: '" + key + "' must be a number");
    }
    return (Double) o;
  }

  private static int integer(Map<String, Object> m, String key) {
    double d = number(m, key);
    if (d != Math.rint(d)) {
      throw new MetadataException("metadata.json: '" + key + "' must be an integer");
    }
    return (int) d;
  }
}
