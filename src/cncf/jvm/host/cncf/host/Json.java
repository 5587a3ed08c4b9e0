package cncf.host;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small strict JSON reader and writer (RFC 8259), no dependencies.
 *
 * <p>Reading gives: {@code null}, {@link Boolean}, {@link Long} (integers that fit),
 * {@link BigInteger} (larger integers), {@link Double} (anything with a fraction or
 * exponent), {@link String}, {@link ArrayList}, {@link LinkedHashMap}. Writing accepts
 * exactly those shapes plus other {@link Number}s, {@link Character}, {@link List}
 * and {@link Map}; anything else, and NaN or infinities, is refused with
 * {@link NotJson} so that a frame is never sent half-written.
 */
final class Json {
    private Json() {}

    /** A value that cannot be written as JSON (or text that is not JSON). */
    static class NotJson extends Exception {
        NotJson(String message) { super(message); }
    }

    // ------------------------------------------------------------------ reading

    /** Containers nested deeper than this are skipped, and the frame refused as {@link TooDeep}. */
    static final int MAX_DEPTH = 512;

    /**
     * Well-formed JSON nested deeper than {@link #MAX_DEPTH}: the value read so far
     * (the deep parts as null), so that the host can refuse that one request by its
     * id instead of treating the frame as a broken channel.
     */
    static final class TooDeep extends NotJson {
        final Object partial;

        TooDeep(Object partial) {
            super("JSON nested deeper than " + MAX_DEPTH + " levels");
            this.partial = partial;
        }
    }

    static Object parse(String text) throws NotJson {
        Reader r = new Reader(text);
        r.ws();
        Object v = r.value(0);
        r.ws();
        if (r.pos != text.length()) throw r.error("trailing characters");
        if (r.tooDeep) throw new TooDeep(v);
        return v;
    }

    private static final class Reader {
        final String s;
        int pos;
        boolean tooDeep;

        Reader(String s) { this.s = s; }

        NotJson error(String what) {
            return new NotJson("invalid JSON at offset " + pos + ": " + what);
        }

        void ws() {
            while (pos < s.length()) {
                char c = s.charAt(pos);
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') pos++;
                else break;
            }
        }

        Object value(int depth) throws NotJson {
            if (pos >= s.length()) throw error("unexpected end");
            char c = s.charAt(pos);
            if (depth >= MAX_DEPTH && (c == '{' || c == '[')) {
                skipContainer();
                tooDeep = true;
                return null;
            }
            switch (c) {
                case '{': return object(depth);
                case '[': return array(depth);
                case '"': return string();
                case 't': literal("true"); return Boolean.TRUE;
                case 'f': literal("false"); return Boolean.FALSE;
                case 'n': literal("null"); return null;
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) return number();
                    throw error("unexpected character '" + c + "'");
            }
        }

        /** Skip one container without recursion (strings and escapes respected). */
        void skipContainer() throws NotJson {
            int level = 0;
            while (pos < s.length()) {
                char c = s.charAt(pos++);
                if (c == '"') {
                    while (true) {
                        if (pos >= s.length()) throw error("unexpected end in string");
                        char d = s.charAt(pos++);
                        if (d == '\\') pos++;
                        else if (d == '"') break;
                    }
                } else if (c == '{' || c == '[') {
                    level++;
                } else if (c == '}' || c == ']') {
                    if (--level == 0) return;
                }
            }
            throw error("unexpected end in a nested value");
        }

        void literal(String word) throws NotJson {
            if (!s.startsWith(word, pos)) throw error("expected " + word);
            pos += word.length();
        }

        Map<String, Object> object(int depth) throws NotJson {
            pos++;
            LinkedHashMap<String, Object> m = new LinkedHashMap<String, Object>();
            ws();
            if (pos < s.length() && s.charAt(pos) == '}') { pos++; return m; }
            while (true) {
                ws();
                if (pos >= s.length() || s.charAt(pos) != '"') throw error("expected a string key");
                String k = string();
                ws();
                if (pos >= s.length() || s.charAt(pos) != ':') throw error("expected ':'");
                pos++;
                ws();
                m.put(k, value(depth + 1));
                ws();
                if (pos >= s.length()) throw error("unexpected end in object");
                char c = s.charAt(pos++);
                if (c == '}') return m;
                if (c != ',') throw error("expected ',' or '}'");
            }
        }

        List<Object> array(int depth) throws NotJson {
            pos++;
            ArrayList<Object> a = new ArrayList<Object>();
            ws();
            if (pos < s.length() && s.charAt(pos) == ']') { pos++; return a; }
            while (true) {
                ws();
                a.add(value(depth + 1));
                ws();
                if (pos >= s.length()) throw error("unexpected end in array");
                char c = s.charAt(pos++);
                if (c == ']') return a;
                if (c != ',') throw error("expected ',' or ']'");
            }
        }

        String string() throws NotJson {
            pos++;
            int start = pos;
            // fast path: no escapes
            while (pos < s.length()) {
                char c = s.charAt(pos);
                if (c == '"') { String out = s.substring(start, pos); pos++; return out; }
                if (c == '\\') break;
                if (c < 0x20) throw error("control character in string");
                pos++;
            }
            StringBuilder sb = new StringBuilder(s.substring(start, pos));
            while (pos < s.length()) {
                char c = s.charAt(pos++);
                if (c == '"') return sb.toString();
                if (c < 0x20) throw error("control character in string");
                if (c != '\\') { sb.append(c); continue; }
                if (pos >= s.length()) break;
                char e = s.charAt(pos++);
                switch (e) {
                    case '"': sb.append('"'); break;
                    case '\\': sb.append('\\'); break;
                    case '/': sb.append('/'); break;
                    case 'b': sb.append('\b'); break;
                    case 'f': sb.append('\f'); break;
                    case 'n': sb.append('\n'); break;
                    case 'r': sb.append('\r'); break;
                    case 't': sb.append('\t'); break;
                    case 'u':
                        if (pos + 4 > s.length()) throw error("truncated \\u escape");
                        try {
                            sb.append((char) Integer.parseInt(s.substring(pos, pos + 4), 16));
                        } catch (NumberFormatException ex) {
                            throw error("bad \\u escape");
                        }
                        pos += 4;
                        break;
                    default: throw error("bad escape \\" + e);
                }
            }
            throw error("unterminated string");
        }

        Object number() throws NotJson {
            int start = pos;
            boolean fraction = false;
            if (s.charAt(pos) == '-') pos++;
            if (pos >= s.length()) throw error("bad number");
            if (s.charAt(pos) == '0') pos++;
            else if (s.charAt(pos) >= '1' && s.charAt(pos) <= '9') digits();
            else throw error("bad number");
            if (pos < s.length() && s.charAt(pos) == '.') {
                fraction = true;
                pos++;
                if (digits() == 0) throw error("bad fraction");
            }
            if (pos < s.length() && (s.charAt(pos) == 'e' || s.charAt(pos) == 'E')) {
                fraction = true;
                pos++;
                if (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) pos++;
                if (digits() == 0) throw error("bad exponent");
            }
            String t = s.substring(start, pos);
            if (fraction) return Double.valueOf(t);
            if (t.length() < 18) return Long.valueOf(t);
            BigInteger b = new BigInteger(t);
            return b.bitLength() < 64 ? (Object) Long.valueOf(b.longValue()) : b;
        }

        int digits() {
            int n = 0;
            while (pos < s.length() && s.charAt(pos) >= '0' && s.charAt(pos) <= '9') { pos++; n++; }
            return n;
        }
    }

    // ------------------------------------------------------------------ writing

    static String write(Object v) throws NotJson {
        StringBuilder sb = new StringBuilder(64);
        write(sb, v, 0);
        return sb.toString();
    }

    static void write(StringBuilder sb, Object v, int depth) throws NotJson {
        if (depth > 512) throw new NotJson("value nested deeper than 512 levels (a cycle?)");
        if (v == null) {
            sb.append("null");
        } else if (v instanceof String) {
            string(sb, (String) v);
        } else if (v instanceof Boolean) {
            sb.append(((Boolean) v).booleanValue() ? "true" : "false");
        } else if (v instanceof Long || v instanceof Integer || v instanceof Short
                || v instanceof Byte || v instanceof BigInteger) {
            sb.append(v.toString());
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                throw new NotJson("the number " + d + " is not representable in JSON");
            }
            if (d == Math.rint(d) && Math.abs(d) < 1e15) {
                sb.append(Long.toString((long) d)).append(".0");
            } else {
                sb.append(Double.toString(d));
            }
        } else if (v instanceof BigDecimal) {
            sb.append(((BigDecimal) v).toString());
        } else if (v instanceof Character) {
            string(sb, v.toString());
        } else if (v instanceof Map) {
            sb.append('{');
            boolean first = true;
            for (Object o : ((Map<?, ?>) v).entrySet()) {
                Map.Entry<?, ?> e = (Map.Entry<?, ?>) o;
                if (!(e.getKey() instanceof String)) {
                    throw new NotJson("a JSON object key must be a string, got "
                            + (e.getKey() == null ? "null" : e.getKey().getClass().getName()));
                }
                if (!first) sb.append(',');
                first = false;
                string(sb, (String) e.getKey());
                sb.append(':');
                write(sb, e.getValue(), depth + 1);
            }
            sb.append('}');
        } else if (v instanceof List) {
            sb.append('[');
            Iterator<?> it = ((List<?>) v).iterator();
            boolean first = true;
            while (it.hasNext()) {
                if (!first) sb.append(',');
                first = false;
                write(sb, it.next(), depth + 1);
            }
            sb.append(']');
        } else {
            throw new NotJson("a " + v.getClass().getName() + " is not a JSON value");
        }
    }

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    static void string(StringBuilder sb, String s) {
        sb.append('"');
        int n = s.length();
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                default:
                    if (c < 0x20 || (c >= 0xD800 && c <= 0xDFFF && !validSurrogate(s, i))) {
                        sb.append("\\u").append(HEX[(c >> 12) & 15]).append(HEX[(c >> 8) & 15])
                          .append(HEX[(c >> 4) & 15]).append(HEX[c & 15]);
                    } else {
                        sb.append(c);
                    }
            }
        }
        sb.append('"');
    }

    /** A lone surrogate cannot be encoded as UTF-8; write it escaped instead. */
    private static boolean validSurrogate(String s, int i) {
        char c = s.charAt(i);
        if (Character.isHighSurrogate(c)) {
            return i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1));
        }
        return i > 0 && Character.isHighSurrogate(s.charAt(i - 1));
    }
}
