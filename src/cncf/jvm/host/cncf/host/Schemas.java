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

    private Map<String, Object> describe(Class<?> t, Type g, ScalaSig.SType st, int depth) {
        if (t == null || depth > DEPTH) return schema();
        if (t == Object.class) {
            Class<?> box = st == null ? null : st.primitiveBox();
            return box == null ? schema() : describe(box, box, null, depth);
        }
        Class<?> b = Values.box(t);
        if (b == Boolean.class) return schema("type", "boolean");
        if (b == Integer.class) return integer(Integer.MIN_VALUE, Integer.MAX_VALUE);
        if (b == Long.class) return integer(Long.MIN_VALUE, Long.MAX_VALUE);
        if (b == Short.class) return integer(Short.MIN_VALUE, Short.MAX_VALUE);
        if (b == Byte.class) return integer(Byte.MIN_VALUE, Byte.MAX_VALUE);
        if (b == Character.class) return schema("type", "string", "minLength", 1, "maxLength", 1,
                "pattern", "^[\\u0000-\\uffff]$");
        if (b == Double.class) return schema("type", "number", "minimum", -EXACT_DOUBLE, "maximum", EXACT_DOUBLE);
        if (b == Float.class) return integer(-EXACT_FLOAT, EXACT_FLOAT); // a fraction must be exactly a float
        if (t == String.class || t == CharSequence.class) return schema("type", "string");
        if (t == BigInteger.class) return schema("type", "integer");
        if (t == BigDecimal.class || t == Number.class) return schema("type", "number");
        if (t.isEnum()) {
            List<Object> names = new ArrayList<Object>();
            for (Object c : t.getEnumConstants()) names.add(((Enum<?>) c).name());
            return schema("type", "string", "enum", names);
        }
        if (t == java.util.Date.class) return schema("type", "string", "format", "date-time");
        if (t == java.util.UUID.class) return schema("type", "string", "format", "uuid");
        if (t == java.net.URI.class) return schema("type", "string", "format", "uri-reference");
        if (values.optional(t)) {
            Type et = Values.typeArg(g, 0);
            return nullable(describe(raw(et), et, st == null ? null : st.arg(0), depth + 1));
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
            Type kt = Values.typeArg(g, 0);
            Class<?> kr = raw(kt);
            if (kr != null && kr != Object.class && kr != String.class) {
                return schema("type", "object", "maxProperties", 0); // keys of another type: not said here
            }
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
        if (t == java.io.Serializable.class) return schema();
        if (t == Comparable.class) return schema("type", list("string", "number", "boolean"));
        if (values.arguments.jacksonTree(t)) return schema(); // the component's own Jackson tree: any JSON
        if (t == java.nio.charset.Charset.class) {
            return schema("type", "string", "enum", new ArrayList<Object>(java.nio.charset.Charset.availableCharsets().keySet()));
        }
        if (t == java.time.LocalDate.class) return schema("type", "string", "format", "date");
        if (t == java.time.Instant.class || t == java.time.OffsetDateTime.class || t == java.time.ZonedDateTime.class) {
            return schema("type", "string", "format", "date-time");
        }
        if (values.arguments.fromString(t) != null) return schema("type", "string"); // Path, Locale, ...
        return schema("type", "null"); // nothing in JSON converts to it: only null (no instance)
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
