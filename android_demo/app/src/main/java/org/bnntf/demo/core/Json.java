package org.bnntf.demo.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small strict JSON parser (RFC 8259), so that metadata parsing runs and is tested on a plain
 * JVM (Android's org.json is not available there).
 *
 * <p>Objects become {@code Map<String, Object>} (insertion order kept), arrays {@code
 * List<Object>}, numbers {@code Double}, plus {@code String}, {@code Boolean} and {@code null}.
 */
public final class Json {
  // The one-letter escapes after a backslash, and the characters they stand for.
  private static final String ESCAPES = "\"\\/bfnrt";
  private static final String ESCAPED = "\"\\/\b\f\n\r\t";

  private final String text;
  private int pos;

  private Json(String text) {
    this.text = text;
  }

  /** Parses one JSON document; throws {@link JsonException} with the offset on bad input. */
  public static Object parse(String text) {
    Json parser = new Json(text);
    parser.skipWhitespace();
    Object value = parser.readValue();
    parser.skipWhitespace();
    if (parser.pos != text.length()) {
      throw parser.error("unexpected text after the JSON value");
    }
    return value;
  }

  /** Thrown for malformed JSON. */
  public static final class JsonException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    JsonException(String message) {
      super(message);
    }
  }

  private JsonException error(String message) {
    return new JsonException("JSON: " + message + " at offset " + pos);
  }

  private void skipWhitespace() {
    while (pos < text.length()) {
      char c = text.charAt(pos);
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        pos++;
      } else {
        break;
      }
    }
  }

  private Object readValue() {
    if (pos >= text.length()) {
      throw error("unexpected end of input");
    }
    char c = text.charAt(pos);
    switch (c) {
      case '{':
        return readObject();
      case '[':
        return readArray();
      case '"':
        return readString();
      case 't':
        expectWord("true");
        return Boolean.TRUE;
      case 'f':
        expectWord("false");
        return Boolean.FALSE;
      case 'n':
        expectWord("null");
        return null;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          return readNumber();
        }
        throw error("unexpected character '" + c + "'");
    }
  }

  private void expectWord(String word) {
    if (!text.startsWith(word, pos)) {
      throw error("expected " + word);
    }
    pos += word.length();
  }

  private Map<String, Object> readObject() {
    Map<String, Object> map = new LinkedHashMap<>();
    if (opensEmpty('}')) {
      return map;
    }
    do {
      skipWhitespace();
      if (pos >= text.length() || text.charAt(pos) != '"') {
        throw error("expected a string key");
      }
      String key = readString();
      skipWhitespace();
      if (pos >= text.length() || text.charAt(pos) != ':') {
        throw error("expected ':'");
      }
      pos++;
      skipWhitespace();
      map.put(key, readValue());
    } while (!closes('}', "object"));
    return map;
  }

  private List<Object> readArray() {
    List<Object> list = new ArrayList<>();
    if (opensEmpty(']')) {
      return list;
    }
    do {
      skipWhitespace();
      list.add(readValue());
    } while (!closes(']', "array"));
    return list;
  }

  /** Steps over the opening bracket; true (and over {@code close} too) if nothing is inside. */
  private boolean opensEmpty(char close) {
    pos++;
    skipWhitespace();
    if (pos < text.length() && text.charAt(pos) == close) {
      pos++;
      return true;
    }
    return false;
  }

  /** After an element: true at {@code close} (the end), false at ',' (another element). */
  private boolean closes(char close, String container) {
    skipWhitespace();
    if (pos >= text.length()) {
      throw error("unterminated " + container);
    }
    char c = text.charAt(pos++);
    if (c == close) {
      return true;
    }
    if (c != ',') {
      pos--;
      throw error("expected ',' or '" + close + "'");
    }
    return false;
  }

  private String readString() {
    StringBuilder sb = new StringBuilder();
    pos++; // opening quote
    while (true) {
      if (pos >= text.length()) {
        throw error("unterminated string");
      }
      char c = text.charAt(pos++);
      if (c == '"') {
        return sb.toString();
      }
      if (c < 0x20) {
        pos--;
        throw error("control character in string");
      }
      if (c != '\\') {
        sb.append(c);
        continue;
      }
      if (pos >= text.length()) {
        throw error("unterminated escape");
      }
      char e = text.charAt(pos++);
      int simple = ESCAPES.indexOf(e);
      if (simple >= 0) {
        sb.append(ESCAPED.charAt(simple));
        continue;
      }
      if (e != 'u') {
        throw error("bad escape \\" + e);
      }
      if (pos + 4 > text.length()) {
        throw error("short \\u escape");
      }
      try {
        sb.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16));
      } catch (NumberFormatException ex) {
        throw error("bad \\u escape");
      }
      pos += 4;
    }
  }

  private Double readNumber() {
    int start = pos;
    if (text.charAt(pos) == '-') {
      pos++;
    }
    if (pos >= text.length() || !Character.isDigit(text.charAt(pos))) {
      throw error("bad number");
    }
    if (text.charAt(pos) == '0') {
      pos++;
    } else {
      skipDigits();
    }
    if (pos < text.length() && text.charAt(pos) == '.') {
      pos++;
      if (skipDigits() == 0) {
        throw error("bad fraction");
      }
    }
    if (pos < text.length() && (text.charAt(pos) == 'e' || text.charAt(pos) == 'E')) {
      pos++;
      if (pos < text.length() && (text.charAt(pos) == '+' || text.charAt(pos) == '-')) {
        pos++;
      }
      if (skipDigits() == 0) {
        throw error("bad exponent");
      }
    }
    return Double.valueOf(text.substring(start, pos));
  }

  /** Steps over a run of decimal digits; returns how many there were. */
  private int skipDigits() {
    int start = pos;
    while (pos < text.length() && Character.isDigit(text.charAt(pos))) {
      pos++;
    }
    return pos - start;
  }
}
