package cncf.host;

import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Type;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * A parameter's type as the JSON Schema of the values the host converts to it
 * (docs/http.md, OpenAPI): the hub publishes it and checks a call's arguments
 * against it before the call runs or is queued. Every schema here admits only
 * values {@link Arguments} converts (a subset where the exact set cannot be
 * said: a float takes the integers it holds exactly, a {@code Class} any
 * string is not promised), so a call the document admits is never refused by
 * the host for its types; an empty schema ({}) is "any value".
 */
final class Schemas {
    private static final int DEPTH = 6;
    private static final long EXACT_DOUBLE = 1L << 53, EXACT_FLOAT = 1L << 24;

    private final Values values;

    Schemas(Values values) {
        this.values = values;
    }

    private static Map<String, Object> schema(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<String, Object>();
        for (int i = 0; i + 1 < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    private static Map<String, Object> integer(long min, long max) {
        return schema("type", "integer", "minimum", min, "maximum", max);
    }

    private static Map<String, Object> nullable(Map<String, Object> s) {
        if (s.isEmpty()) return s;
        List<Object> any = new ArrayList<Object>();
        any.add(s);
        any.add(schema("type", "null"));
        return schema("anyOf", any);
    }

    /** The schema of parameter type {@code t} (generic {@code g}, Scala type {@code st}). */
    Map<String, Object> of(Class<?> t, Type g, ScalaSig.SType st) {
        try {
            return describe(t, g, st, 0);
        } catch (RuntimeException | LinkageError e) {
            return schema(); // unknown: any value
        }
    }

    /** A reference type also takes null (the host passes it on). */
    private Map<String, Object> describe(Class<?> t, Type g, ScalaSig.SType st, int depth) {
        Map<String, Object> s = value(t, g, st, depth);
        if (t == null || t.isPrimitive() || s.isEmpty() || "null".equals(s.get("type"))) return s;
        return nullable(s);
    }

    private static final String DECIMAL = "^\\s*[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?\\s*$";

    private Map<String, Object> value(Class<?> t, Type g, ScalaSig.SType st, int depth) {
        if (t == null || depth > DEPTH) return schema();
        if (t == Object.class) {
            Class<?> box = st == null ? null : st.primitiveBox();
            return box == null ? schema() : value(box, box, null, depth);
        }
        Class<?> b = Values.box(t);
        if (b == Boolean.class) return schema("type", "boolean");
        if (b == Integer.class) return integer(Integer.MIN_VALUE, Integer.MAX_VALUE);
        if (b == Long.class) return integer(Long.MIN_VALUE, Long.MAX_VALUE);
        if (b == Short.class) return integer(Short.MIN_VALUE, Short.MAX_VALUE);
        if (b == Byte.class) return integer(Byte.MIN_VALUE, Byte.MAX_VALUE);
        if (b == Character.class) {
            return schema("anyOf", list(schema("type", "string", "minLength", 1, "maxLength", 1,
                    "pattern", "^[\\u0000-\\uffff]$"), integer(Character.MIN_VALUE, Character.MAX_VALUE)));
        }
        if (b == Double.class || b == Float.class) return schema("type", "number");
        if (t == String.class || t == CharSequence.class) return schema("type", "string");
        boolean sBig = values.scala && values.sBigInt != null && t == values.sBigInt;
        boolean sDec = values.scala && values.sBigDecimal != null && t == values.sBigDecimal;
        if (t == BigInteger.class || sBig) {
            return schema("anyOf", list(schema("type", "integer"), schema("type", "string", "pattern", DECIMAL)));
        }
        if (t == BigDecimal.class || sDec) {
            return schema("anyOf", list(schema("type", "number"), schema("type", "string", "pattern", DECIMAL)));
        }
        if (t == Number.class) return schema("type", "number");
        if (t == java.io.Serializable.class) return schema();
        if (t == Comparable.class) return schema("type", list("string", "number", "boolean"));
        if (t.isEnum()) {
            List<Object> names = new ArrayList<Object>();
            StringBuilder any = new StringBuilder("(?i)^(");
            for (Object c : t.getEnumConstants()) {
                String n = ((Enum<?>) c).name();
                any.append(names.isEmpty() ? "" : "|").append(n.replace("$", "\\$"));
                names.add(n);
            }
            // the constant's name, in any case (as the host finds it)
            return schema("anyOf", list(schema("type", "string", "enum", names),
                    schema("type", "string", "pattern", any.append(")$").toString())));
        }
        if (t == Class.class) return schema("type", "string", "description", "a class name the component can see");
        if (t == java.util.Date.class) return schema("type", "string", "format", "date-time");
        if (t == byte[].class) {
            return schema("anyOf", list(
                    schema("type", "array", "items", integer(Byte.MIN_VALUE, Byte.MAX_VALUE)),
                    schema("type", "string", "contentEncoding", "base64", "pattern", "^[A-Za-z0-9+/]*={0,2}$")));
        }
        if (values.arguments.jacksonTree(t)) return schema(); // the component's own Jackson tree: any JSON
        if (values.optional(t)) {
            Type et = Values.typeArg(g, 0);
            return nullable(value(raw(et), et, st == null ? null : st.arg(0), depth + 1));
        }
        if (t.isArray()) {
            Class<?> ct = t.getComponentType();
            Type cg = g instanceof GenericArrayType ? ((GenericArrayType) g).getGenericComponentType() : ct;
            return schema("type", "array", "items", describe(ct, cg, st == null ? null : st.arg(0), depth + 1));
        }
        boolean jlist = t.isAssignableFrom(ArrayList.class), jset = !jlist && t.isAssignableFrom(LinkedHashSet.class);
        if (jlist || jset || (values.scala && values.scalaSeqLike(t))) {
            Type et = Values.typeArg(g, 0);
            return schema("type", "array", "items", element(et, st == null ? null : st.arg(0), depth));
        }
        if (t.isAssignableFrom(LinkedHashMap.class) || (values.scala && values.scalaMap(t))) {
            // (keys of another type than String are converted by the host from their text)
            return schema("type", "object", "additionalProperties",
                    element(Values.typeArg(g, 1), st == null ? null : st.arg(1), depth));
        }
        Shapes.Shape sh = values.shapes.of(t);
        if (sh != null) {
            Map<String, Object> props = new LinkedHashMap<String, Object>();
            List<Object> required = new ArrayList<Object>();
            for (int i = 0; i < sh.names.length; i++) {
                props.put(sh.names[i], describe(sh.types[i], sh.generics[i], null, depth + 1));
                if (sh.record() && sh.types[i].isPrimitive() && sh.defaults[i] == Shapes.NO_DEFAULT) {
                    required.add(sh.names[i]);
                }
            }
            Map<String, Object> s = schema("type", "object", "properties", props, "additionalProperties", false);
            if (!required.isEmpty()) s.put("required", required);
            return s;
        }
        if (t == java.nio.charset.Charset.class) {
            return schema("type", "string", "enum",
                    new ArrayList<Object>(java.nio.charset.Charset.availableCharsets().keySet()));
        }
        if (t == java.time.LocalDate.class) return schema("type", "string", "format", "date");
        if (t == java.time.Instant.class || t == java.time.OffsetDateTime.class || t == java.time.ZonedDateTime.class) {
            return schema("type", "string", "format", "date-time");
        }
        if (values.arguments.fromString(t) != null) return schema("type", "string"); // Path, Locale, URI, ...
        return schema("type", "null"); // nothing in JSON converts to it: only null (no instance)
    }

    /** A varargs parameter's value: one element, or (as the host takes it) the whole array. */
    Map<String, Object> varargs(Class<?> array) {
        Map<String, Object> item = of(array.getComponentType(), array.getComponentType(), null);
        if (item.isEmpty()) return item;
        return schema("anyOf", list(item, schema("type", "array", "items", item)));
    }

    private Map<String, Object> element(Type et, ScalaSig.SType est, int depth) {
        Class<?> raw = raw(et);
        Class<?> box = est == null ? null : est.primitiveBox();
        if ((raw == null || raw == Object.class) && box == null) return schema();
        if (raw == null || raw == Object.class) return describe(box, box, null, depth + 1);
        return describe(raw, et, est, depth + 1);
    }

    private static Class<?> raw(Type t) {
        return t == null ? null : Values.raw(t);
    }

    static List<Object> list(Object... items) {
        return new ArrayList<Object>(Arrays.asList(items));
    }
}
