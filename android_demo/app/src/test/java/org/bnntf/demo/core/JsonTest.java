package org.bnntf.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {
  @Test
  @SuppressWarnings("unchecked")
  public void parsesNestedValues() {
    Object v = Json.parse(" {\"a\": [1, -2.5e2, true, false, null], \"b\": {\"c\": \"x\\\"y\\u00e9\\n\"}} ");
    Map<String, Object> m = (Map<String, Object>) v;
    List<Object> a = (List<Object>) m.get("a");
    assertEquals(Arrays.asList(1.0, -250.0, true, false, null), a);
    Map<String, Object> b = (Map<String, Object>) m.get("b");
    assertEquals("x\"y\u00e9\n", b.get("c"));
  }

  @Test
  public void keepsKeyOrderAndEmptyContainers() {
    @SuppressWarnings("unchecked")
    Map<String, Object> m = (Map<String, Object>) Json.parse("{\"z\": {}, \"a\": []}");
    assertEquals(Arrays.asList("z", "a"), Arrays.asList(m.keySet().toArray()));
    assertTrue(((Map<?, ?>) m.get("z")).isEmpty());
    assertTrue(((List<?>) m.get("a")).isEmpty());
    assertNull(Json.parse("null"));
  }

  @Test
  public void pythonFloatReprRoundTrips() {
    // json.dumps(1 / 127.5) in Python.
    assertEquals(1 / 127.5, (Double) Json.parse("0.00784313725490196"), 0.0);
  }

  @Test
  public void rejectsMalformedJson() {
    for (String bad :
        new String[] {"", "{", "[1,]", "{\"a\" 1}", "01", "1.", "tru", "\"abc", "[1] 2", "{a: 1}", "\"\\x\""}) {
      assertThrows(bad, Json.JsonException.class, () -> Json.parse(bad));
    }
  }
}
