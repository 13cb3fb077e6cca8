package org.bnntf.demo.core;

/** A metadata.json as `bnn-tf deploy` writes it (abridged to the fields the app reads). */
final class TestData {
  private TestData() {}

  static String metadata(String background, int height, int width, int channels, String labels) {
    return "{\"format\": \"bnn-tf-deploy\", \"format_version\": 1,"
        + " \"model\": {\"file\": \"model.tflite\", \"name\": \"bnn_small\"},"
        + " \"input\": {\"shape\": [1, " + height + ", " + width + ", " + channels + "],"
        + "   \"height\": " + height + ", \"width\": " + width + ", \"channels\": " + channels + ","
        + "   \"normalization\": {\"scale\": 0.00784313725490196, \"offset\": -1.0},"
        + "   \"background\": \"" + background + "\"},"
        + " \"output\": {\"shape\": [1, 3], \"kind\": \"logits\"},"
        + " \"labels\": " + labels + ","
        + " \"runtime\": {\"requires_lce\": true, \"custom_ops\": [\"LceBconv2d\", \"LceQuantize\"]},"
        + " \"conversion\": {\"binary_convs\": 5}}";
  }

  static ModelMetadata grey(String background, int height, int width) {
    return ModelMetadata.parse(metadata(background, height, width, 1, "[\"a\", \"b\", \"c\"]"));
  }
}
