package org.bnntf.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import org.junit.Test;

public class ModelMetadataTest {
  @Test
  public void readsTheFieldsTheAppNeeds() {
    ModelMetadata m = TestData.grey("dark", 28, 28);
    assertEquals("model.tflite", m.modelFile);
    assertEquals("bnn_small", m.modelName);
    assertEquals(28, m.height);
    assertEquals(28, m.width);
    assertEquals(1, m.channels);
    assertEquals(1 / 127.5f, m.scale, 0f);
    assertEquals(-1f, m.offset, 0f);
    assertEquals("dark", m.background);
    assertEquals(Arrays.asList("a", "b", "c"), m.labels);
    assertEquals(3, m.numClasses());
    assertTrue(m.requiresLce);
    assertEquals(Arrays.asList("LceBconv2d", "LceQuantize"), m.customOps);
    assertEquals(5, m.binaryConvs);
  }

  @Test
  public void rejectsLabelCountThatDiffersFromOutputs() {
    String json = TestData.metadata("dark", 28, 28, 1, "[\"a\", \"b\"]");
    ModelMetadata.MetadataException e =
        assertThrows(ModelMetadata.MetadataException.class, () -> ModelMetadata.parse(json));
    assertTrue(e.getMessage(), e.getMessage().contains("3 outputs but metadata lists 2 labels"));
  }

  @Test
  public void rejectsOtherFormatsAndVersions() {
    String json = TestData.metadata("dark", 28, 28, 1, "[\"a\", \"b\", \"c\"]");
    String[] rejected = {
      json.replace("bnn-tf-deploy", "something-else"),
      json.replace("\"format_version\": 1", "\"format_version\": 2"),
      json.replace("\"channels\": 1", "\"channels\": 2"),
      json.replace("\"requires_lce\": true", "\"requires_lce\": 1"),
      "[1, 2]",
      "{",
    };
    for (String doc : rejected) {
      assertThrows(doc, ModelMetadata.MetadataException.class, () -> ModelMetadata.parse(doc));
    }
  }
}
