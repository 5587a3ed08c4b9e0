package cncf.host;

import java.lang.reflect.Array;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Member;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * JSON-shaped values from the wire become arguments of Java and Scala parameter
 * types. {@link #tier} says how a value converts, in the terms javac's overload
 * phases use (JLS 15.12.2): {@link #STRICT} needs no boxing (a JSON integer is an
 * {@code int} literal, or {@code long} when it does not fit; a fraction a
 * {@code double}; a string a {@code String}), {@link #BOXING} needs boxing, and
 * {@link #LOOSE} is a conversion only the host makes (a string parsed to an enum,
 * a {@code LocalDate} or a {@code Class}, an integer narrowed into a {@code byte}
 * when it fits, base64 text to {@code byte[]}). A value that does not fit says why
 * (out of range, a misspelt enum constant) through {@link Why}.
 */
final class Arguments {
    static final int STRICT = 0, BOXING = 1, LOOSE = 2, NO = -1;
    // A JSON list arrives as an ArrayList and an object as a LinkedHashMap: List, Collection,
    // Iterable, Map take them by subtyping (STRICT); arrays, sets, records, beans are LOOSE.

    /** Why values did not fit: the reasons a refusal will list. */
    static final class Why {
        final List<String> reasons = new ArrayList<String>();

        void add(String r) {
            if (!reasons.contains(r) && reasons.size() < 8) reasons.add(r);
        }
    }

    static final class Mismatch extends Exception {
        Mismatch() { super(null, null, false, false); }
    }

    static final Mismatch MISMATCH = new Mismatch();

    private final Values values;

    Arguments(Values values) {
        this.values = values;
    }

    // ------------------------------------------------------------------ tiers

    /** How {@code v} converts to {@code t} (generic {@code g}, Scala type {@code st}): a tier, or NO. */
    int tier(Object v, Class<?> t, Type g, ScalaSig.SType st, Why why) {
        if (t == Object.class) {
            if (st != null && v != null) {
                Class<?> box = st.primitiveBox();
                if (box != null) return tier(v, box, box, null, why);
            }
            return v instanceof Boolean || v instanceof Number ? BOXING : STRICT;
        }
        if (v == null) {
            if (t.isPrimitive()) {
                why.add("null cannot be a " + t.getName());
                return NO;
            }
            return STRICT;
        }
        if (jacksonTree(t) && (v instanceof Map || v instanceof List || (t != String.class && treeTakes(t, v)))) {
            return LOOSE; // a JSON value becomes the component's own Jackson tree
        }
        Class<?> b = Values.box(t);
        if (v instanceof Boolean) {
            if (t == boolean.class) return STRICT;
            if (t == Boolean.class || t == java.io.Serializable.class || t == Comparable.class) return BOXING;
            return wrapped(v, t, g, st, why);
        }
        if (v instanceof Long || v instanceof BigInteger) return integer(v, t, g, st, why);
        if (v instanceof Double || v instanceof BigDecimal) return fraction((Number) v, t, g, st, why);
        if (v instanceof String) return string((String) v, t, g, st, why);
        if (v instanceof List) return list((List<?>) v, t, g, st, why);
        if (v instanceof Map) return object((Map<?, ?>) v, t, g, st, why);
        return t.isInstance(v) ? STRICT : NO;
    }

    private int wrapped(Object v, Class<?> t, Type g, ScalaSig.SType st, Why why) {
        if (!values.optional(t)) return NO;
        Type et = Values.typeArg(g, 0);
        Class<?> raw = Values.raw(et);
        int r = raw == null ? STRICT : tier(v, raw, et, st == null ? null : st.arg(0), why);
        return r < 0 ? NO : LOOSE;
    }

    private static final BigInteger LONG_MIN = BigInteger.valueOf(Long.MIN_VALUE);
    private static final BigInteger LONG_MAX = BigInteger.valueOf(Long.MAX_VALUE);

    private int integer(Object v, Class<?> t, Type g, ScalaSig.SType st, Why why) {
        boolean big = v instanceof BigInteger
                && (((BigInteger) v).compareTo(LONG_MIN) < 0 || ((BigInteger) v).compareTo(LONG_MAX) > 0);
        long l = big ? 0 : ((Number) v).longValue();
        boolean isInt = !big && l >= Integer.MIN_VALUE && l <= Integer.MAX_VALUE;
        Class<?> b = Values.box(t);
        if (t == BigInteger.class) return big ? STRICT : LOOSE;
        if (t == BigDecimal.class) return LOOSE;
        if (t == Number.class || t == java.io.Serializable.class || t == Comparable.class) return big ? STRICT : BOXING;
        if (values.scala && ((values.sBigInt != null && t == values.sBigInt)
                || (values.sBigDecimal != null && t == values.sBigDecimal))) return LOOSE;
        if (b == Long.class || b == Integer.class || b == Short.class || b == Byte.class || b == Character.class) {
            long min, max;
            if (b == Long.class) { min = Long.MIN_VALUE; max = Long.MAX_VALUE; }
            else if (b == Integer.class) { min = Integer.MIN_VALUE; max = Integer.MAX_VALUE; }
            else if (b == Short.class) { min = Short.MIN_VALUE; max = Short.MAX_VALUE; }
            else if (b == Byte.class) { min = Byte.MIN_VALUE; max = Byte.MAX_VALUE; }
            else { min = Character.MIN_VALUE; max = Character.MAX_VALUE; }
            if (big || l < min || l > max) {
                why.add(v + " is out of range for " + t.getName() + " (" + min + ".." + max + ")");
                return NO;
            }
            if (t.isPrimitive()) {
                // int and long take an int literal by widening; byte, short, char only by narrowing.
                if (t == long.class || (t == int.class && isInt)) return STRICT;
                return LOOSE;
            }
            if ((b == Integer.class && isInt) || (b == Long.class && !isInt)) return BOXING;
            return LOOSE;
        }
        if (b == Double.class || b == Float.class) {
            long limit = b == Double.class ? (1L << 53) : (1L << 24);
            if (big || l > limit || l < -limit) {
                why.add(v + " cannot be a " + t.getName() + " without losing digits");
                return NO;
            }
            return t.isPrimitive() ? STRICT : LOOSE;
        }
        return wrapped(v, t, g, st, why);
    }

    private int fraction(Number v, Class<?> t, Type g, ScalaSig.SType st, Why why) {
        if (t == double.class) return v instanceof Double ? STRICT : LOOSE;
        if (t == Double.class || t == Number.class || t == java.io.Serializable.class || t == Comparable.class) {
            return v instanceof Double ? BOXING : STRICT;
        }
        if (t == BigDecimal.class) return v instanceof BigDecimal ? STRICT : LOOSE;
        if (Values.box(t) == Float.class) {
            double d = v.doubleValue();
            if (Double.parseDouble(Float.toString((float) d)) == d) return LOOSE;
            why.add(v + " is not exactly a float");
            return NO;
        }
        if (values.scala && values.sBigDecimal != null && t == values.sBigDecimal) return LOOSE;
        if (Values.box(t) == Long.class || Values.box(t) == Integer.class || Values.box(t) == Short.class
                || Values.box(t) == Byte.class || Values.box(t) == Character.class) {
            double d = v.doubleValue();
            if (d == Math.rint(d) && Math.abs(d) < 9.0e18) {
                // JSON has one number type: 2.0 is the integer 2 (as JSON Schema says, and the OpenAPI document)
                int r = integer(Long.valueOf((long) d), t, g, st, why);
                return r < 0 ? NO : LOOSE;
            }
            why.add(v + " has a fraction; " + t.getName() + " takes integers");
            return NO;
        }
        return wrapped(v, t, g, st, why);
    }

    private int string(String s, Class<?> t, Type g, ScalaSig.SType st, Why why) {
        if (t == String.class || t == CharSequence.class || t == java.io.Serializable.class || t == Comparable.class) {
            return STRICT;
        }
        if (Values.box(t) == Character.class) {
            if (s.length() == 1) return LOOSE;
            why.add("\"" + abbreviate(s) + "\" is not one character");
            return NO;
        }
        if (t.isEnum()) {
            if (enumConstant(t, s) != null) return LOOSE;
            why.add("\"" + abbreviate(s) + "\" is not a constant of " + t.getName() + "; valid: " + enumNames(t));
            return NO;
        }
        if (t == Class.class) {
            if (classNamed(s) != null) return LOOSE;
            why.add("no class " + s + " is visible to the component");
            return NO;
        }
        if (t == java.util.Date.class) {
            if (date(s) != null) return LOOSE;
            why.add("\"" + abbreviate(s) + "\" is not an ISO-8601 instant (2024-01-31T12:00:00Z)");
            return NO;
        }
        if (t == byte[].class) {
            if (base64(s) != null) return LOOSE;
            why.add("a string for byte[] must be base64");
            return NO;
        }
        if (fromString(t) != null) return LOOSE;
        return wrapped(s, t, g, st, why);
    }

    private int list(List<?> list, Class<?> t, Type g, ScalaSig.SType st, Why why) {
        int worst = STRICT;
        if (t.isArray()) {
            Class<?> ct = t.getComponentType();
            Type cg = g instanceof GenericArrayType ? ((GenericArrayType) g).getGenericComponentType() : ct;
            for (Object o : list) {
                int r = tier(o, ct, cg, st == null ? null : st.arg(0), why);
                if (r < 0) return NO;
            }
            // A JSON list is a java.util.List in the host: an array is a conversion of it.
            return LOOSE;
        }
        boolean jlist = t.isAssignableFrom(ArrayList.class), jset = !jlist && t.isAssignableFrom(LinkedHashSet.class);
        boolean sseq = !jlist && !jset && values.scala && values.scalaSeqLike(t);
        if (jlist || jset || sseq) {
            Type et = Values.typeArg(g, 0);
            if (elements(list, et, st == null ? null : st.arg(0), why) < 0) return NO;
            return jset ? LOOSE : STRICT;
        }
        return wrapped(list, t, g, st, why);
    }

    private int elements(Collection<?> items, Type et, ScalaSig.SType est, Why why) {
        Class<?> raw = Values.raw(et);
        Class<?> box = est == null ? null : est.primitiveBox();
        if ((raw == null || raw == Object.class) && box == null) return STRICT;
        Class<?> want = raw == null || raw == Object.class ? box : raw;
        for (Object o : items) if (tier(o, want, raw == null || raw == Object.class ? box : et, est, why) < 0) return NO;
        return STRICT;
    }

    private int object(Map<?, ?> map, Class<?> t, Type g, ScalaSig.SType st, Why why) {
        if (t.isAssignableFrom(LinkedHashMap.class) || (values.scala && values.scalaMap(t))) {
            Type kt = Values.typeArg(g, 0);
            for (Object k : map.keySet()) {
                if (mapKeyOk(String.valueOf(k), kt) == null) {
                    why.add("key \"" + abbreviate(String.valueOf(k)) + "\" is not a " + Values.shortName(kt));
                    return NO;
                }
            }
            return elements(map.values(), Values.typeArg(g, 1), st == null ? null : st.arg(1), why) < 0 ? NO : STRICT;
        }
        Shapes.Shape sh = values.shapes.of(t);
        // A JSON object is a java.util.Map in the host: building a record or bean converts it.
        if (sh != null) return sh.tier(map, why) < 0 ? NO : LOOSE;
        return wrapped(map, t, g, st, why);
    }

    // ------------------------------------------------------------------ conversion

    /**
     * Convert a JSON value to parameter type {@code t} (generic type {@code g}); {@code st}
     * is the Scala type when the pickled signature is known, which tells what erased
     * type arguments really are ({@code Seq[Int]} is {@code Seq<Object>} to the JVM).
     */
    Object convert(Object v, Class<?> t, Type g, ScalaSig.SType st) throws Exception {
        if (t == Object.class) {
            Class<?> box = st == null || v == null ? null : st.primitiveBox();
            return box == null ? v : convert(v, box, box, null);
        }
        if (v != null && jacksonTree(t)) {
            Object tree = readTree(v);
            if (t.isInstance(tree)) return tree;
            throw MISMATCH;
        }
        if (v == null) {
            if (t.isPrimitive()) throw MISMATCH;
            if (t == Optional.class) return Optional.empty();
            if (values.scala && t == values.sOption) return values.module("scala.None$");
            return null;
        }
        Class<?> b = Values.box(t);
        if (v instanceof Boolean) {
            if (b == Boolean.class || t.isInstance(v)) return v;
        } else if (v instanceof Number) {
            Number num = (Number) v;
            if (b == Long.class) return num.longValue();
            if (b == Integer.class) return num.intValue();
            if (b == Short.class) return num.shortValue();
            if (b == Byte.class) return num.byteValue();
            if (b == Character.class) return (char) num.intValue(); // (a Double here is integral: the tier said so)
            if (b == Double.class) return num.doubleValue();
            if (b == Float.class) return num.floatValue();
            if (t == BigInteger.class) return v instanceof BigInteger ? v : BigInteger.valueOf(num.longValue());
            if (t == BigDecimal.class) return v instanceof BigDecimal ? v : new BigDecimal(num.toString());
            if (t.isInstance(v)) return v;
            if (values.scala && values.sBigInt != null && t == values.sBigInt) {
                BigInteger bi = v instanceof BigInteger ? (BigInteger) v : BigInteger.valueOf(num.longValue());
                Object m = values.module("scala.math.BigInt$");
                return m.getClass().getMethod("apply", BigInteger.class).invoke(m, bi);
            }
            if (values.scala && values.sBigDecimal != null && t == values.sBigDecimal) {
                Object m = values.module("scala.math.BigDecimal$");
                return m.getClass().getMethod("apply", BigDecimal.class).invoke(m, new BigDecimal(v.toString()));
            }
        } else if (v instanceof String) {
            String s = (String) v;
            if (t.isInstance(s)) return s;
            if (b == Character.class && s.length() == 1) return s.charAt(0);
            if (t.isEnum()) {
                Object e = enumConstant(t, s);
                if (e != null) return e;
            }
            if (t == Class.class) {
                Class<?> c = classNamed(s);
                if (c != null) return c;
            }
            if (t == java.util.Date.class) {
                java.util.Date d = date(s);
                if (d != null) return d;
            }
            if (t == byte[].class) {
                byte[] bytes = base64(s);
                if (bytes != null) return bytes;
            }
            Member f = fromString(t);
            if (f != null) return make(f, t, s);
        } else if (v instanceof List) {
            List<?> list = (List<?>) v;
            if (t.isArray()) {
                Class<?> ct = t.getComponentType();
                Type cg = g instanceof GenericArrayType ? ((GenericArrayType) g).getGenericComponentType() : ct;
                Object arr = Array.newInstance(ct, list.size());
                for (int i = 0; i < list.size(); i++) {
                    Array.set(arr, i, convert(list.get(i), ct, cg, st == null ? null : st.arg(0)));
                }
                return arr;
            }
            if (t.isAssignableFrom(ArrayList.class) || t.isAssignableFrom(LinkedHashSet.class)) {
                Collection<Object> out = t.isAssignableFrom(ArrayList.class)
                        ? new ArrayList<Object>(list.size()) : new LinkedHashSet<Object>();
                Type et = Values.typeArg(g, 0);
                for (Object o : list) out.add(element(o, et, st == null ? null : st.arg(0)));
                return out;
            }
            if (values.scala && values.scalaSeqLike(t)) {
                List<Object> conv = new ArrayList<Object>(list.size());
                for (Object o : list) conv.add(element(o, Values.typeArg(g, 0), st == null ? null : st.arg(0)));
                Object buffer = asScala("asScalaBufferConverter", List.class, conv);
                if (values.sMutableBuffer != null && t.isAssignableFrom(values.sMutableBuffer)) return buffer;
                if (values.sImmList != null && t.isAssignableFrom(values.sImmList)) {
                    return buffer.getClass().getMethod("toList").invoke(buffer);
                }
                if (values.sVector != null && t.isAssignableFrom(values.sVector)) {
                    return buffer.getClass().getMethod("toVector").invoke(buffer);
                }
                return buffer.getClass().getMethod("toSet").invoke(buffer);
            }
        } else if (v instanceof Map) {
            Map<?, ?> map = (Map<?, ?>) v;
            if (t.isAssignableFrom(LinkedHashMap.class)) {
                Map<Object, Object> out = new LinkedHashMap<Object, Object>();
                Type kt = Values.typeArg(g, 0), vt = Values.typeArg(g, 1);
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    Object k = mapKeyOk(String.valueOf(e.getKey()), kt);
                    if (k == null) throw MISMATCH;
                    out.put(k, element(e.getValue(), vt, st == null ? null : st.arg(1)));
                }
                return out;
            }
            Shapes.Shape sh = values.shapes.of(t);
            if (sh != null) return sh.build(map);
            if (values.scala && values.scalaMap(t)) {
                Map<Object, Object> conv = new LinkedHashMap<Object, Object>();
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    conv.put(e.getKey(), element(e.getValue(), Values.typeArg(g, 1), st == null ? null : st.arg(1)));
                }
                Object mm = asScala("mapAsScalaMapConverter", Map.class, conv);
                if (values.sMutableMap != null && t.isAssignableFrom(values.sMutableMap)) return mm;
                Object predef = values.module("scala.Predef$");
                Object ev = predef.getClass().getMethod("$conforms").invoke(predef);
                for (Method m : mm.getClass().getMethods()) {
                    if (m.getName().equals("toMap") && m.getParameterTypes().length == 1) return m.invoke(mm, ev);
                }
            }
        }
        if (t == Optional.class) return Optional.ofNullable(element(v, Values.typeArg(g, 0), null));
        if (values.scala && t == values.sOption) {
            Object opt = values.module("scala.Option$");
            return opt.getClass().getMethod("apply", Object.class)
                    .invoke(opt, element(v, Values.typeArg(g, 0), st == null ? null : st.arg(0)));
        }
        if (t.isInstance(v)) return v;
        throw MISMATCH;
    }

    private Object make(Member f, Class<?> t, String s) throws Exception {
        try {
            if (f instanceof Method) {
                Method m = (Method) f;
                Object self = Modifier.isStatic(m.getModifiers()) ? null
                        : Component.module(values.loader.probe(t.getName() + "$"));
                return m.invoke(self, s);
            }
            return ((java.lang.reflect.Constructor<?>) f).newInstance(s);
        } catch (java.lang.reflect.InvocationTargetException e) {
            Throwable c = e.getCause();
            throw new IllegalArgumentException("cannot make a " + t.getSimpleName() + " of \"" + abbreviate(s)
                    + "\": " + c, c);
        }
    }

    /** A collection element, converted when its generic type is known. */
    private Object element(Object v, Type et, ScalaSig.SType est) throws Exception {
        Class<?> raw = Values.raw(et);
        if (raw == null || raw == Object.class) {
            // Erased to Object: a Scala primitive type argument arrives as its box (Int -> Integer).
            Class<?> box = est == null || v == null ? null : est.primitiveBox();
            if (box == null) return v;
            if (tier(v, box, box, null, new Why()) < 0) throw MISMATCH;
            return convert(v, box, box, null);
        }
        if (tier(v, raw, et, est, new Why()) < 0) throw MISMATCH;
        return convert(v, raw, et, est);
    }

    /** A JSON key as a map key of type {@code kt}, or null when it is not one. */
    private Object mapKeyOk(String k, Type kt) {
        Class<?> raw = Values.raw(kt);
        if (raw == null || raw == Object.class || raw == String.class || raw == CharSequence.class) return k;
        try {
            if (Values.box(raw) == Integer.class) return Integer.valueOf(k);
            if (Values.box(raw) == Long.class) return Long.valueOf(k);
        } catch (NumberFormatException e) {
            return null;
        }
        if (raw.isEnum()) return enumConstant(raw, k);
        return null;
    }

    private Object asScala(String converter, Class<?> arg, Object value) throws Exception {
        Object jc = values.module("scala.collection.JavaConverters$");
        Object decorated = jc.getClass().getMethod(converter, arg).invoke(jc, value);
        return decorated.getClass().getMethod("asScala").invoke(decorated);
    }

    // ------------------------------------------------------------------ Jackson trees

    private static final String JSON_NODE = "com.fasterxml.jackson.databind.JsonNode";
    private static final String TREE_NODE = "com.fasterxml.jackson.core.TreeNode";

    /**
     * Whether {@code t} is a Jackson tree type of the component's own jackson-databind
     * ({@code JsonNode}, {@code TreeNode}, {@code ObjectNode}, {@code ArrayNode}, ...):
     * a JSON value is then parsed by that library into its tree, found by name
     * through the component's loader (the host never links Jackson).
     */
    boolean jacksonTree(Class<?> t) {
        if (t.isPrimitive() || t.isArray() || Values.jdk(t)) return false;
        Class<?> node = jsonNode();
        if (node == null) return false;
        return node.isAssignableFrom(t) || (t.isInterface() && t.isAssignableFrom(node)
                && t.getName().equals(TREE_NODE));
    }

    /** Whether a scalar JSON value parses into a tree node of type {@code t} (TextNode, IntNode, ...). */
    private boolean treeTakes(Class<?> t, Object v) {
        if (v instanceof String || v instanceof Number || v instanceof Boolean || v == null) {
            Class<?> node = jsonNode();
            return node != null && (t == node || t.isAssignableFrom(node));
        }
        return false;
    }

    private volatile Object jsonNodeClass; // Class, or NO_CLASS when the component has no Jackson
    private static final Object NO_CLASS = new Object();

    private Class<?> jsonNode() {
        Object c = jsonNodeClass;
        if (c == null) {
            Class<?> found = values.c(JSON_NODE);
            jsonNodeClass = c = found == null ? NO_CLASS : found;
        }
        return c == NO_CLASS ? null : (Class<?>) c;
    }

    private Object readTree(Object v) throws Exception {
        Class<?> mapperClass = values.c("com.fasterxml.jackson.databind.ObjectMapper");
        if (mapperClass == null) throw MISMATCH;
        Object mapper;
        synchronized (this) {
            if (jacksonMapper == null) jacksonMapper = mapperClass.getConstructor().newInstance();
            mapper = jacksonMapper;
        }
        return mapperClass.getMethod("readTree", String.class).invoke(mapper, Json.write(v));
    }

    private Object jacksonMapper;

    // ------------------------------------------------------------------ strings to values

    @SuppressWarnings({"unchecked", "rawtypes"})
    static Object enumConstant(Class<?> t, String s) {
        for (Object e : t.getEnumConstants()) if (((Enum) e).name().equals(s)) return e;
        for (Object e : t.getEnumConstants()) if (((Enum) e).name().equalsIgnoreCase(s)) return e;
        return null;
    }

    @SuppressWarnings("rawtypes")
    static String enumNames(Class<?> t) {
        StringBuilder sb = new StringBuilder();
        Object[] all = t.getEnumConstants();
        for (int i = 0; i < all.length && i < 40; i++) sb.append(i > 0 ? ", " : "").append(((Enum) all[i]).name());
        if (all.length > 40) sb.append(", ... (").append(all.length).append(" in all)");
        return sb.toString();
    }

    /** A class by name (or a primitive's name) as the component's loader sees it. */
    Class<?> classNamed(String s) {
        String n = s.trim();
        Class<?>[] prims = {int.class, long.class, boolean.class, double.class, float.class, short.class, byte.class,
            char.class, void.class};
        for (Class<?> p : prims) if (p.getName().equals(n)) return p;
        Class<?> c = values.loader.probe(n);
        if (c == null && n.indexOf('.') < 0) c = values.loader.probe("java.lang." + n);
        return c;
    }

    /** ISO-8601 text as a Date: an instant, an offset date-time, or a date (midnight UTC). */
    static java.util.Date date(String s) {
        try {
            return java.util.Date.from(java.time.Instant.parse(s));
        } catch (RuntimeException e) {
            // try an offset
        }
        try {
            return java.util.Date.from(java.time.OffsetDateTime.parse(s).toInstant());
        } catch (RuntimeException e) {
            // try a date
        }
        try {
            return java.util.Date.from(java.time.LocalDate.parse(s).atStartOfDay(java.time.ZoneOffset.UTC).toInstant());
        } catch (RuntimeException e) {
            return null;
        }
    }

    static byte[] base64(String s) {
        try {
            return java.util.Base64.getDecoder().decode(s);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    static String abbreviate(String s) {
        return s.length() <= 60 ? s : s.substring(0, 57) + "...";
    }

    private static final String[] FACTORIES = {"valueOf", "parse", "of", "fromString", "forName", "apply"};
    private final Map<Class<?>, Object> makers = new java.util.HashMap<Class<?>, Object>();

    /**
     * How to make a {@code t} from a string, for types such as File, Path, URI, UUID,
     * Charset, BigDecimal or java.time values: a public static factory taking one
     * String or CharSequence ({@code valueOf}, {@code parse}, {@code of},
     * {@code fromString}, {@code forName}, a Scala companion's {@code apply};
     * {@code Paths.get} for Path) returning {@code t}, else a public constructor
     * taking one String. Null when there is none.
     */
    Member fromString(Class<?> t) {
        synchronized (makers) {
            if (makers.containsKey(t)) return (Member) makers.get(t);
            Member m = findFromString(t);
            makers.put(t, m);
            return m;
        }
    }

    private Member findFromString(Class<?> t) {
        if (t == java.nio.file.Path.class) return PATHS_GET;
        // Not java.lang: no silent Boolean.valueOf("yes") == false, no Class.forName in the host.
        if (t.isPrimitive() || t.isArray() || t.isInterface() || t.getName().startsWith("java.lang.")) return null;
        for (String name : FACTORIES) {
            for (Class<?> arg : new Class<?>[] {String.class, CharSequence.class}) {
                try {
                    Method m = t.getMethod(name, arg);
                    if (Modifier.isStatic(m.getModifiers()) && t.isAssignableFrom(m.getReturnType())) return m;
                } catch (NoSuchMethodException ignored) {
                    // try the next shape
                }
            }
        }
        try {
            java.lang.reflect.Constructor<?> c = t.getConstructor(String.class);
            if (!Modifier.isAbstract(t.getModifiers())) return c;
        } catch (NoSuchMethodException ignored) {
            // no constructor from a string
        }
        // A Scala companion object's apply(String), e.g. scala.math.BigDecimal("2.50").
        Class<?> companion = t.getClassLoader() == values.loader ? values.loader.probe(t.getName() + "$") : null;
        if (companion != null && Component.module(companion) != null) {
            try {
                Method m = companion.getMethod("apply", String.class);
                if (t.isAssignableFrom(m.getReturnType())) return m;
            } catch (NoSuchMethodException ignored) {
                // no way from a string
            }
        }
        return null;
    }

    /** A value made back from its string by the factory its class offers (for the round-trip check). */
    Object remake(Class<?> t, String s) throws Exception {
        Member f = fromString(t);
        // Static parsers only: a constructor or a forName/apply may do more than parse.
        if (!(f instanceof Method) || !Modifier.isStatic(f.getModifiers())) return null;
        String n = f.getName();
        if (!n.equals("parse") && !n.equals("valueOf") && !n.equals("fromString")) return null;
        return make(f, t, s);
    }

    private static final Method PATHS_GET = pathOf();

    private static Method pathOf() {
        try {
            return Arguments.class.getDeclaredMethod("path", String.class);
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(e);
        }
    }

    static java.nio.file.Path path(String s) {
        return java.nio.file.Paths.get(s);
    }
}
