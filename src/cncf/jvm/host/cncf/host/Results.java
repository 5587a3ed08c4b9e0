package cncf.host;

import java.lang.reflect.Array;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Results become JSON only in a form that keeps the value (docs/forms/jar.md,
 * "Result → JSON"): JSON's own types and their JDK counterparts, collections,
 * maps, arrays, Optional, the JDK's value types as their ISO/standard text, Scala
 * values, records, case classes, plain data beans, types with a JSON form of
 * their own (a Jackson {@code JsonNode}, a Gson {@code JsonElement}, org.json, a
 * {@code toJson()} the component declares), and values that round-trip through
 * their {@code toString()} and their own parser (Joda's {@code LocalDate}).
 * Anything else is {@link Unfaithful}: it names the type and what would have
 * crossed, never a lossy guess (an {@code Iterable} that is not a collection is
 * not a list of its children; getters over hidden state are not the value).
 */
final class Results {
    /** A result without a faithful JSON form; the attributes say what it was. */
    static final class Unfaithful extends Json.NotJson {
        final Map<String, Object> attributes;

        Unfaithful(String message, Map<String, Object> attributes) {
            super(message);
            this.attributes = attributes;
        }
    }

    /** Classes whose {@code toString()} is their JSON text, by library. */
    private static final String[] JSON_TYPES = {
        "com.fasterxml.jackson.databind.JsonNode", "com.google.gson.JsonElement", "org.json.JSONObject",
        "org.json.JSONArray", "javax.json.JsonValue", "jakarta.json.JsonValue", "org.codehaus.jackson.JsonNode",
    };

    private final Values values;
    /** Beans being converted on the current path: a reference back to one is a cycle. */
    private final ThreadLocal<java.util.IdentityHashMap<Object, Boolean>> path =
            new ThreadLocal<java.util.IdentityHashMap<Object, Boolean>>();

    Results(Values values) {
        this.values = values;
    }

    Object toJson(Object v) throws Json.NotJson {
        try {
            return toJson(v, 0);
        } catch (Json.NotJson e) {
            throw e;
        } catch (Exception e) {
            throw new Json.NotJson("converting a " + v.getClass().getName() + " failed: " + e);
        }
    }

    private Object toJson(Object v, int depth) throws Exception {
        if (depth > 64) throw new Json.NotJson("the result is nested deeper than 64 levels (a cycle?)");
        if (v == null || v instanceof String || v instanceof Boolean || v instanceof Long
                || v instanceof BigInteger || v instanceof BigDecimal) return v;
        if (v instanceof Integer || v instanceof Short || v instanceof Byte) return ((Number) v).longValue();
        if (v instanceof Double || v instanceof Float) {
            // A float's shortest decimal form (0.1f -> 0.1, not 0.10000000149011612).
            double d = v instanceof Float ? Double.parseDouble(v.toString()) : (Double) v;
            if (Double.isNaN(d) || Double.isInfinite(d)) throw new Json.NotJson(d + " is not representable in JSON");
            return d;
        }
        Class<?> k = v.getClass();
        if (v instanceof Number && Values.jdk(k)) {
            if (v instanceof java.util.concurrent.atomic.DoubleAdder
                    || v instanceof java.util.concurrent.atomic.DoubleAccumulator) return toJson(((Number) v).doubleValue(), depth);
            return new BigDecimal(v.toString());
        }
        if (v instanceof Character || v instanceof CharSequence) return v.toString();
        if (v instanceof Enum) return ((Enum<?>) v).name();
        if (k.isArray()) {
            int n = Array.getLength(v);
            List<Object> out = new ArrayList<Object>(n);
            for (int i = 0; i < n; i++) out.add(toJson(Array.get(v, i), depth + 1));
            return out;
        }
        if (v instanceof Map) {
            Map<String, Object> out = new LinkedHashMap<String, Object>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                String key = key(e.getKey());
                if (out.containsKey(key)) throw new Json.NotJson("two keys of the map are both \"" + key + "\" as text");
                out.put(key, toJson(e.getValue(), depth + 1));
            }
            return out;
        }
        if (v instanceof Collection) {
            List<Object> out = new ArrayList<Object>();
            for (Object o : (Collection<?>) v) out.add(toJson(o, depth + 1));
            return out;
        }
        if (v instanceof Optional) {
            Optional<?> o = (Optional<?>) v;
            return o.isPresent() ? toJson(o.get(), depth + 1) : null;
        }
        if (v instanceof java.util.OptionalInt) {
            java.util.OptionalInt o = (java.util.OptionalInt) v;
            return o.isPresent() ? (Object) (long) o.getAsInt() : null;
        }
        if (v instanceof java.util.OptionalLong) {
            java.util.OptionalLong o = (java.util.OptionalLong) v;
            return o.isPresent() ? (Object) o.getAsLong() : null;
        }
        if (v instanceof java.util.OptionalDouble) {
            java.util.OptionalDouble o = (java.util.OptionalDouble) v;
            return o.isPresent() ? toJson(o.getAsDouble(), depth) : null;
        }
        if (v instanceof java.util.UUID || v instanceof java.io.File || v instanceof java.net.URI
                || v instanceof java.net.URL || v instanceof java.nio.file.Path || v instanceof java.util.Locale
                || v instanceof java.nio.charset.Charset || v instanceof java.util.Currency) return v.toString();
        if (v instanceof java.util.regex.Pattern) return ((java.util.regex.Pattern) v).pattern();
        if (k.getName().startsWith("java.time.") && isoTime(v)) return v.toString();
        if (v instanceof Class) return ((Class<?>) v).getName();
        if (v instanceof java.util.TimeZone) return ((java.util.TimeZone) v).getID();
        if (v instanceof java.net.InetAddress) return ((java.net.InetAddress) v).getHostAddress();
        if (v instanceof java.util.Date) {
            try {
                return ((java.util.Date) v).toInstant().toString();
            } catch (UnsupportedOperationException sqlDateOrTime) {
                return v.toString(); // java.sql.Date 2024-01-31, java.sql.Time 12:00:00: ISO too
            }
        }
        if (values.scala) {
            Object s = scalaToJson(v, k, depth);
            if (s != NONE) return s;
        }
        if (Values.jdk(k)) throw unfaithful(v, k, "it is a JDK object that is not a value type");
        Object own = ownJson(v, k);
        if (own != NONE) return own;
        java.util.IdentityHashMap<Object, Boolean> seen = path.get();
        boolean outermost = seen == null;
        if (outermost) path.set(seen = new java.util.IdentityHashMap<Object, Boolean>());
        if (seen.put(v, Boolean.TRUE) != null) {
            throw new Json.NotJson("the result refers back to itself (a " + k.getName() + " cycle)");
        }
        try {
            return object(v, k, depth);
        } finally {
            seen.remove(v);
            if (outermost) path.remove();
        }
    }

    private static final Object NONE = new Object();

    /** java.time values whose toString() is ISO-8601 and parses back (not Clock, ZoneRules, formatters). */
    private static boolean isoTime(Object v) {
        return v instanceof java.time.temporal.TemporalAccessor || v instanceof java.time.temporal.TemporalAmount
                || v instanceof java.time.ZoneId;
    }

    private static String key(Object k) throws Json.NotJson {
        if (k == null) throw new Json.NotJson("a map key is null");
        if (k instanceof Enum) return ((Enum<?>) k).name();
        if (k instanceof String || k instanceof Number || k instanceof Boolean || k instanceof Character
                || k instanceof java.util.UUID || k instanceof java.time.temporal.TemporalAccessor) return k.toString();
        throw new Json.NotJson("a map key of type " + k.getClass().getName() + " has no exact text form");
    }

    // ------------------------------------------------------------------ Scala

    private Object scalaToJson(Object v, Class<?> k, int depth) throws Exception {
        Values s = values;
        if (s.sBoxedUnit != null && s.sBoxedUnit.isInstance(v)) return null;
        if (s.sOption != null && s.sOption.isInstance(v)) {
            return (Boolean) s.mOptionIsEmpty.invoke(v) ? null : toJson(s.mOptionGet.invoke(v), depth + 1);
        }
        if (s.sBigInt != null && s.sBigInt.isInstance(v)) return s.mBigInteger.invoke(v);
        if (s.sBigDecimal != null && s.sBigDecimal.isInstance(v)) return s.mBigDecimal.invoke(v);
        if (s.sMap != null && s.sMap.isInstance(v)) {
            Map<String, Object> out = new LinkedHashMap<String, Object>();
            Object it = s.mIterator.invoke(v);
            while ((Boolean) s.mHasNext.invoke(it)) {
                Object t = s.mNext.invoke(it);
                out.put(key(s.mT1.invoke(t)), toJson(s.mT2.invoke(t), depth + 1));
            }
            return out;
        }
        if (s.sIterable != null && s.sIterable.isInstance(v)) {
            List<Object> out = new ArrayList<Object>();
            Object it = s.mIterator.invoke(v);
            while ((Boolean) s.mHasNext.invoke(it)) out.add(toJson(s.mNext.invoke(it), depth + 1));
            return out;
        }
        if (s.sIterator != null && s.sIterator.isInstance(v)) {
            List<Object> out = new ArrayList<Object>();
            while ((Boolean) s.mHasNext.invoke(v)) out.add(toJson(s.mNext.invoke(v), depth + 1));
            return out;
        }
        if (s.sEnumValue != null && s.sEnumValue.isInstance(v)) return v.toString();
        if (s.sSymbol != null && s.sSymbol.isInstance(v)) return k.getMethod("name").invoke(v);
        if (s.sProduct != null && s.sProduct.isInstance(v) && !Values.jdk(k)) {
            int n = (Integer) s.mArity.invoke(v);
            if (k.getName().startsWith("scala.Tuple")) {
                List<Object> out = new ArrayList<Object>(n);
                for (int i = 0; i < n; i++) out.add(toJson(s.mElement.invoke(v, i), depth + 1));
                return out;
            }
            // A case class: its constructor fields, in declaration order, through their accessors.
            Map<String, Object> out = new LinkedHashMap<String, Object>();
            for (String f : Shapes.caseFields(k)) {
                out.put(f, toJson(k.getMethod(f).invoke(v), depth + 1));
                if (out.size() >= n) break;
            }
            if (n == 0 && out.isEmpty()) return k.getSimpleName().replace("$", "");
            return out;
        }
        return NONE;
    }

    // ------------------------------------------------------------------ a JSON form of its own

    /** A JSON library's tree node, or a component's own {@code toJson()}: its JSON text, parsed. */
    private Object ownJson(Object v, Class<?> k) throws Exception {
        String lib = jsonLibrary(k);
        Method own = null;
        if (lib == null) {
            for (String name : new String[] {"toJson", "toJSON"}) {
                try {
                    Method m = k.getMethod(name);
                    if (!Modifier.isStatic(m.getModifiers()) && CharSequence.class.isAssignableFrom(m.getReturnType())) {
                        own = m;
                        break;
                    }
                } catch (NoSuchMethodException ignored) {
                    // no declared form
                }
            }
            if (own == null) return NONE;
            own.setAccessible(true);
        }
        Object text = own == null ? v.toString() : own.invoke(v);
        try {
            return Json.parse(String.valueOf(text));
        } catch (Json.NotJson e) {
            Map<String, Object> a = describe(v, k);
            throw new Unfaithful("a " + k.getName() + " (" + (lib != null ? "a " + lib : own.getName() + "()")
                    + ") gave text that is not JSON: " + e.getMessage(), a);
        }
    }

    private static String jsonLibrary(Class<?> k) {
        for (Class<?> c = k; c != null; c = c.getSuperclass()) {
            for (String n : JSON_TYPES) if (c.getName().equals(n)) return n;
            for (Class<?> i : c.getInterfaces()) for (String n : JSON_TYPES) if (i.getName().equals(n)) return n;
        }
        return null;
    }

    // ------------------------------------------------------------------ component objects

    /**
     * A component's object: a record; a value that its own parser makes back from
     * its {@code toString()} (equal to it); a plain data bean (no hidden state: every
     * instance field public or read by the getter of its name; its getters and public
     * fields cross); else refused.
     */
    private Object object(Object v, Class<?> k, int depth) throws Exception {
        Shapes.Shape sh = values.shapes.of(k);
        if (sh != null && sh.record() && !values.scalaProduct(k)) {
            Map<String, Object> rec = new LinkedHashMap<String, Object>();
            for (String n : sh.names) {
                Method acc = k.getDeclaredMethod(n);
                acc.setAccessible(true);
                rec.put(n, toJson(acc.invoke(v), depth + 1));
            }
            return rec;
        }
        String text = roundTrip(v, k);
        if (text != null) return text;
        List<String> unbacked = new ArrayList<String>();
        Map<String, Method> props = values.shapes.beanProperties(k, unbacked);
        List<String> hidden = new ArrayList<String>();
        for (Class<?> c = k; c != null && !Values.jdk(c); c = c.getSuperclass()) {
            for (Field f : c.getDeclaredFields()) {
                if (Modifier.isStatic(f.getModifiers()) || f.isSynthetic() || Modifier.isTransient(f.getModifiers())) {
                    continue;
                }
                boolean read = props.containsKey(f.getName()) && !unbacked.contains(getterOf(props.get(f.getName())));
                if (!read && !Modifier.isPublic(f.getModifiers())) hidden.add(f.getName());
            }
        }
        List<Field> fields = Shapes.publicFields(k);
        if (!hidden.isEmpty() || (props.isEmpty() && (fields == null || fields.isEmpty()))) {
            Map<String, Object> a = describe(v, k);
            if (!unbacked.isEmpty()) a.put("getters", new ArrayList<Object>(unbacked));
            if (!hidden.isEmpty()) a.put("hidden_fields", new ArrayList<Object>(hidden));
            String would = hidden.isEmpty() ? "it shows no state of its own"
                    : "its state is in private fields no getter of the same name reads " + hidden
                    + (props.isEmpty() ? "" : ", and only its getters " + props.keySet() + " would have crossed");
            if (v instanceof Iterable) would += "; as an Iterable only its children would have crossed";
            throw new Unfaithful("a " + k.getName() + " has no exact JSON form: " + would
                    + "; return a String, a collection, a record or a bean from a wrapper, or declare toJson()", a);
        }
        Map<String, Object> out = new TreeMap<String, Object>();
        for (Map.Entry<String, Method> e : props.entrySet()) {
            e.getValue().setAccessible(true);
            out.put(e.getKey(), toJson(e.getValue().invoke(v), depth + 1));
        }
        if (fields != null) {
            for (Field f : fields) if (!out.containsKey(f.getName())) out.put(f.getName(), toJson(f.get(v), depth + 1));
        }
        return new LinkedHashMap<String, Object>(out);
    }

    private static String getterOf(Method m) {
        return m.getName() + "()";
    }

    /** The text of a value its class's own parser makes back into an equal value, or null. */
    private String roundTrip(Object v, Class<?> k) {
        try {
            if (k.getMethod("equals", Object.class).getDeclaringClass() == Object.class) return null;
            String s = v.toString();
            Object back = values.arguments.remake(k, s);
            if (back != null && back.equals(v)) return s;
            // A static parser of the value's own class or of a public superclass, returning a type
            // the value is an instance of: Guava's HashCode.fromString(hc.toString()) (the value is a
            // private subclass), InternetDomainName.from(name.toString()).
            for (Class<?> c = k; c != null && !Values.jdk(c); c = c.getSuperclass()) {
                for (String name : PARSERS) {
                    for (Class<?> arg : new Class<?>[] {String.class, CharSequence.class}) {
                        Method m;
                        try {
                            m = c.getMethod(name, arg);
                        } catch (NoSuchMethodException none) {
                            continue;
                        }
                        if (!Modifier.isStatic(m.getModifiers()) || !m.getReturnType().isAssignableFrom(k)) continue;
                        m.setAccessible(true);
                        back = m.invoke(null, s);
                        if (back != null && back.equals(v)) return s;
                    }
                }
            }
            return null;
        } catch (Throwable e) {
            return null;
        }
    }

    private static final String[] PARSERS = {"fromString", "from", "valueOf", "parse"};

    private static Map<String, Object> describe(Object v, Class<?> k) {
        Map<String, Object> a = new LinkedHashMap<String, Object>();
        a.put("type", k.getName());
        String s;
        try {
            s = String.valueOf(v);
        } catch (Throwable e) {
            s = "(toString() threw " + e + ")";
        }
        a.put("to_string", s.length() <= 200 ? s : s.substring(0, 197) + "...");
        return a;
    }

    private static Json.NotJson unfaithful(Object v, Class<?> k, String why) {
        return new Unfaithful("a " + k.getName() + " has no JSON form (" + why + ": not a number, string, boolean, "
                + "collection, map, array, Optional or a java.time / java.util value type)", describe(v, k));
    }
}
