package cncf.host;

import java.lang.reflect.Array;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Parameter;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.WildcardType;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Values across the boundary (docs/forms/jar.md, "Values"): JSON-shaped values
 * from the wire become arguments of Java and Scala parameter types, and results
 * become JSON-shaped values. Scala types are handled by reflection through the
 * component's own loader, and only when the component bundles scala-library.
 */
final class Values {
    private final Isolation loader;
    private final boolean scala;
    private Class<?> sOption, sIterable, sIterator, sMap, sProduct, sTuple2, sBigInt, sBigDecimal,
            sBoxedUnit, sEnumValue, sSymbol, sImmList, sVector, sImmSet, sImmMap, sSeq, sMutableBuffer,
            sMutableMap, sSet;
    private Method mOptionIsEmpty, mOptionGet, mIterator, mHasNext, mNext, mT1, mT2, mArity, mElement,
            mBigInteger, mBigDecimal;

    Values(Isolation loader) {
        this.loader = loader;
        this.scala = loader.probe("scala.Option") != null;
        if (scala) {
            try {
                sOption = c("scala.Option");
                sIterable = c("scala.collection.Iterable");
                sIterator = c("scala.collection.Iterator");
                sMap = c("scala.collection.Map");
                sProduct = c("scala.Product");
                sTuple2 = c("scala.Tuple2");
                sBigInt = c("scala.math.BigInt");
                sBigDecimal = c("scala.math.BigDecimal");
                sBoxedUnit = c("scala.runtime.BoxedUnit");
                sEnumValue = c("scala.Enumeration$Value");
                sSymbol = c("scala.Symbol");
                sImmList = c("scala.collection.immutable.List");
                sVector = c("scala.collection.immutable.Vector");
                sImmSet = c("scala.collection.immutable.Set");
                sImmMap = c("scala.collection.immutable.Map");
                sSeq = c("scala.collection.Seq");
                sSet = c("scala.collection.Set");
                sMutableBuffer = c("scala.collection.mutable.Buffer");
                sMutableMap = c("scala.collection.mutable.Map");
                mOptionIsEmpty = sOption.getMethod("isEmpty");
                mOptionGet = sOption.getMethod("get");
                mIterator = sIterable.getMethod("iterator");
                mHasNext = sIterator.getMethod("hasNext");
                mNext = sIterator.getMethod("next");
                mT1 = sTuple2.getMethod("_1");
                mT2 = sTuple2.getMethod("_2");
                mArity = sProduct.getMethod("productArity");
                mElement = sProduct.getMethod("productElement", int.class);
                mBigInteger = sBigInt.getMethod("bigInteger");
                mBigDecimal = sBigDecimal.getMethod("bigDecimal");
            } catch (Exception e) {
                Host.log.println("cncf-host: partial Scala support for " + loader + ": " + e);
            }
        }
    }

    private Class<?> c(String name) {
        return loader.probe(name);
    }

    boolean scala() {
        return scala;
    }

    private final Map<Class<?>, ScalaSig> sigs = new java.util.HashMap<Class<?>, ScalaSig>();

    /** The Scala declaration of a method (names and Scala types of its parameters), or null. */
    ScalaSig.SMethod scalaMethod(Method m) {
        if (!scala) return null;
        Class<?> c = m.getDeclaringClass();
        ScalaSig sig;
        synchronized (sigs) {
            if (!sigs.containsKey(c)) sigs.put(c, ScalaSig.of(c, loader));
            sig = sigs.get(c);
        }
        return sig == null ? null : sig.method(m);
    }

    // ================================================================== results → JSON

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
        if (v instanceof Number) return new BigDecimal(v.toString());
        if (v instanceof Character || v instanceof CharSequence) return v.toString();
        if (v instanceof Enum) return ((Enum<?>) v).name();
        Class<?> k = v.getClass();
        if (k.isArray()) {
            int n = Array.getLength(v);
            List<Object> out = new ArrayList<Object>(n);
            for (int i = 0; i < n; i++) out.add(toJson(Array.get(v, i), depth + 1));
            return out;
        }
        if (v instanceof Map) {
            Map<String, Object> out = new LinkedHashMap<String, Object>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                out.put(key(e.getKey()), toJson(e.getValue(), depth + 1));
            }
            return out;
        }
        if (v instanceof Iterable) {
            List<Object> out = new ArrayList<Object>();
            for (Object o : (Iterable<?>) v) out.add(toJson(o, depth + 1));
            return out;
        }
        if (v instanceof Optional) {
            Optional<?> o = (Optional<?>) v;
            return o.isPresent() ? toJson(o.get(), depth + 1) : null;
        }
        if (v instanceof java.util.UUID || v instanceof java.io.File || v instanceof java.net.URI
                || v instanceof java.net.URL || v instanceof java.nio.file.Path || v instanceof java.util.Locale
                || v instanceof java.nio.charset.Charset || v instanceof java.util.regex.Pattern
                || v instanceof java.util.Currency || k.getName().startsWith("java.time.")) return v.toString();
        if (v instanceof Class) return ((Class<?>) v).getName();
        if (v instanceof java.util.TimeZone) return ((java.util.TimeZone) v).getID();
        if (v instanceof java.net.InetAddress) return ((java.net.InetAddress) v).getHostAddress();
        if (v instanceof java.util.Date) {
            try {
                return ((java.util.Date) v).toInstant().toString();
            } catch (UnsupportedOperationException sqlDateOrTime) {
                return v.toString();
            }
        }
        if (scala) {
            Object s = scalaToJson(v, k, depth);
            if (s != NONE) return s;
        }
        return bean(v, k, depth);
    }

    private static final Object NONE = new Object();

    private Object scalaToJson(Object v, Class<?> k, int depth) throws Exception {
        if (sBoxedUnit != null && sBoxedUnit.isInstance(v)) return null;
        if (sOption != null && sOption.isInstance(v)) {
            return (Boolean) mOptionIsEmpty.invoke(v) ? null : toJson(mOptionGet.invoke(v), depth + 1);
        }
        if (sBigInt != null && sBigInt.isInstance(v)) return mBigInteger.invoke(v);
        if (sBigDecimal != null && sBigDecimal.isInstance(v)) return mBigDecimal.invoke(v);
        if (sMap != null && sMap.isInstance(v)) {
            Map<String, Object> out = new LinkedHashMap<String, Object>();
            Object it = mIterator.invoke(v);
            while ((Boolean) mHasNext.invoke(it)) {
                Object t = mNext.invoke(it);
                out.put(key(mT1.invoke(t)), toJson(mT2.invoke(t), depth + 1));
            }
            return out;
        }
        if (sIterable != null && sIterable.isInstance(v)) {
            List<Object> out = new ArrayList<Object>();
            Object it = mIterator.invoke(v);
            while ((Boolean) mHasNext.invoke(it)) out.add(toJson(mNext.invoke(it), depth + 1));
            return out;
        }
        if (sIterator != null && sIterator.isInstance(v)) {
            List<Object> out = new ArrayList<Object>();
            while ((Boolean) mHasNext.invoke(v)) out.add(toJson(mNext.invoke(v), depth + 1));
            return out;
        }
        if ((sEnumValue != null && sEnumValue.isInstance(v))) return v.toString();
        if (sSymbol != null && sSymbol.isInstance(v)) return k.getMethod("name").invoke(v);
        if (sProduct != null && sProduct.isInstance(v)) {
            int n = (Integer) mArity.invoke(v);
            if (k.getName().startsWith("scala.Tuple")) {
                List<Object> out = new ArrayList<Object>(n);
                for (int i = 0; i < n; i++) out.add(toJson(mElement.invoke(v, i), depth + 1));
                return out;
            }
            // A case class: its constructor fields, in declaration order, through their accessors.
            Map<String, Object> out = new LinkedHashMap<String, Object>();
            for (Field f : k.getDeclaredFields()) {
                if (Modifier.isStatic(f.getModifiers()) || f.isSynthetic() || f.getName().indexOf('$') >= 0) continue;
                try {
                    Method acc = k.getMethod(f.getName());
                    out.put(f.getName(), toJson(acc.invoke(v), depth + 1));
                } catch (NoSuchMethodException e) {
                    // a private val, not part of the value
                }
                if (out.size() >= n) break;
            }
            if (n == 0 && out.isEmpty()) return k.getSimpleName().replace("$", "");
            return out;
        }
        return NONE;
    }

    private static boolean jdk(Class<?> c) {
        String n = c.getName();
        return n.startsWith("java.") || n.startsWith("javax.") || n.startsWith("jdk.") || n.startsWith("sun.")
                || n.startsWith("com.sun.");
    }

    /** Beans being converted on the current path: a reference back to one is a cycle. */
    private final ThreadLocal<java.util.IdentityHashMap<Object, Boolean>> path =
            new ThreadLocal<java.util.IdentityHashMap<Object, Boolean>>();

    /**
     * Any other object of the component's (not of the JDK, whose internals are not
     * data): its public getters (getX / isX) and public fields, as an object.
     */
    private Object bean(Object v, Class<?> k, int depth) throws Exception {
        if (jdk(k)) {
            throw new Json.NotJson("a " + k.getName() + " has no JSON form (not a number, string, boolean, "
                    + "collection, map, array, Optional or a known JDK value type)");
        }
        java.util.IdentityHashMap<Object, Boolean> seen = path.get();
        boolean outermost = seen == null;
        if (outermost) path.set(seen = new java.util.IdentityHashMap<Object, Boolean>());
        if (seen.put(v, Boolean.TRUE) != null) {
            throw new Json.NotJson("the result refers back to itself (a " + k.getName() + " cycle)");
        }
        try {
            return beanFields(v, k, depth);
        } finally {
            seen.remove(v);
            if (outermost) path.remove();
        }
    }

    private Object beanFields(Object v, Class<?> k, int depth) throws Exception {
        Shape sh = shape(k);
        if (sh != null && sh.setters == null && !scalaProduct(k)) {
            // A record: its components, in declaration order, through their accessors.
            Map<String, Object> rec = new LinkedHashMap<String, Object>();
            for (String n : sh.names) {
                Method acc = k.getDeclaredMethod(n);
                acc.setAccessible(true);
                rec.put(n, toJson(acc.invoke(v), depth + 1));
            }
            return rec;
        }
        Map<String, Object> out = new TreeMap<String, Object>();
        for (Method m : k.getMethods()) {
            if (Modifier.isStatic(m.getModifiers()) || m.getParameterTypes().length != 0
                    || jdk(m.getDeclaringClass()) || m.getReturnType() == void.class) continue;
            String n = m.getName();
            String prop = null;
            if (n.startsWith("get") && n.length() > 3 && !n.equals("getClass")) prop = n.substring(3);
            else if (n.startsWith("is") && n.length() > 2
                    && (m.getReturnType() == boolean.class || m.getReturnType() == Boolean.class)) prop = n.substring(2);
            if (prop == null) continue;
            prop = Character.toLowerCase(prop.charAt(0)) + prop.substring(1);
            m.setAccessible(true);
            out.put(prop, toJson(m.invoke(v), depth + 1));
        }
        for (Field f : k.getFields()) {
            if (!Modifier.isStatic(f.getModifiers()) && !out.containsKey(f.getName())) {
                out.put(f.getName(), toJson(f.get(v), depth + 1));
            }
        }
        if (out.isEmpty()) {
            throw new Json.NotJson("a " + k.getName() + " has no JSON form (not a number, string, boolean, "
                    + "collection, map, array, Optional, Scala value, or bean with getters)");
        }
        return new LinkedHashMap<String, Object>(out);
    }

    private static String key(Object k) throws Json.NotJson {
        if (k == null) throw new Json.NotJson("a map key is null");
        if (k instanceof Enum) return ((Enum<?>) k).name();
        return k.toString();
    }

    // ================================================================== JSON → arguments

    /** A candidate overload's converted arguments (null when it does not fit) and its score. */
    static final class Fit {
        final Object[] args;
        final int score;
        final String reason;

        Fit(Object[] args, int score, String reason) {
            this.args = args;
            this.score = score;
            this.reason = reason;
        }
    }

    private static final class Mismatch extends Exception {
        Mismatch() { super(null, null, false, false); }
    }

    private static final Mismatch MISMATCH = new Mismatch();

    /** Marks a parameter left to its Scala default ({@code name$default$k}). */
    static final Object DEFAULT = new Object();

    Fit fit(Method m, List<Object> args, Map<String, Object> kwargs, Method[] defaults, ScalaSig.SMethod sm) {
        Class<?>[] pt = m.getParameterTypes();
        Type[] gt = m.getGenericParameterTypes();
        int n = pt.length;
        Object[] slots = new Object[n];
        boolean[] set = new boolean[n];
        int p = args.size();
        if (kwargs.isEmpty() && p < n && defaults != null && !m.isVarArgs()) {
            boolean all = true;
            for (int i = p; i < n; i++) all &= defaults[i] != null;
            if (all) {
                int score = 0;
                Object[] out = new Object[n];
                try {
                    for (int i = 0; i < n; i++) {
                        if (i >= p) { out[i] = DEFAULT; continue; }
                        int r = rank(args.get(i), pt[i]);
                        if (r < 0) return new Fit(null, 0, null);
                        score += r;
                        out[i] = convert(args.get(i), pt[i], gt[i], stype(sm, i));
                    }
                } catch (Exception e) {
                    return new Fit(null, 0, null);
                }
                return new Fit(out, score, null);
            }
        }
        if (!kwargs.isEmpty()) {
            String[] names = parameterNames(m, sm);
            if (names == null) {
                return new Fit(null, 0, "parameter names are not in the class file (compiled without -parameters): "
                        + "pass the arguments as a list");
            }
            for (int i = 0; i < p; i++) { slots[i] = args.get(i); set[i] = true; }
            int missing = n - p - kwargs.size();
            if (missing < 0) return new Fit(null, 0, null);
            for (Map.Entry<String, Object> e : kwargs.entrySet()) {
                int at = -1;
                for (int i = p; i < n; i++) if (names[i].equals(e.getKey())) at = i;
                if (at < 0 || set[at]) return new Fit(null, 0, "no parameter named " + e.getKey());
                slots[at] = e.getValue();
                set[at] = true;
            }
            if (missing > 0) {
                for (int i = p; i < n; i++) {
                    if (set[i]) continue;
                    if (defaults == null || defaults[i] == null) {
                        return new Fit(null, 0, "no value for parameter " + names[i]);
                    }
                    slots[i] = DEFAULT;
                }
            }
        } else if ((m.isVarArgs() || scalaRepeated(sm, n)) && p >= n - 1
                && !(p == n && (args.get(n - 1) instanceof List || args.get(n - 1) == null))) {
            for (int i = 0; i < n - 1; i++) slots[i] = args.get(i);
            slots[n - 1] = new ArrayList<Object>(args.subList(n - 1, p));
        } else {
            if (p != n) return new Fit(null, 0, null);
            for (int i = 0; i < n; i++) slots[i] = args.get(i);
        }
        int score = 0;
        Object[] out = new Object[n];
        try {
            for (int i = 0; i < n; i++) {
                if (slots[i] == DEFAULT) {
                    out[i] = DEFAULT;
                    continue;
                }
                int r = rank(slots[i], pt[i]);
                if (r < 0) return new Fit(null, 0, null);
                score += r;
                out[i] = convert(slots[i], pt[i], gt[i], stype(sm, i));
            }
        } catch (Mismatch e) {
            return new Fit(null, 0, null);
        } catch (Exception e) {
            return new Fit(null, 0, e.toString());
        }
        return new Fit(out, score, null);
    }

    /** How well a JSON value fits a parameter type: -1 not at all, 1 loosely, 3 exactly. */
    int rank(Object v, Class<?> t) {
        if (t == Object.class) return 1;
        if (v == null) return t.isPrimitive() ? -1 : 2;
        Class<?> b = box(t);
        if (v instanceof Boolean) return b == Boolean.class ? 3 : -1;
        if (v instanceof Long || v instanceof BigInteger) {
            if (b == Long.class) return v instanceof Long ? 3 : -1;
            if (b == Integer.class) return fits(v, Integer.MIN_VALUE, Integer.MAX_VALUE) ? 2 : -1;
            if (b == Short.class) return fits(v, Short.MIN_VALUE, Short.MAX_VALUE) ? 1 : -1;
            if (b == Byte.class) return fits(v, Byte.MIN_VALUE, Byte.MAX_VALUE) ? 1 : -1;
            if (b == Double.class || b == Float.class) return 1;
            if (t == BigInteger.class) return 2;
            if (t == BigDecimal.class || t == Number.class) return 1;
            if (scala && ((sBigInt != null && t == sBigInt) || (sBigDecimal != null && t == sBigDecimal))) return 1;
            return optional(t) ? 1 : -1;
        }
        if (v instanceof Double) {
            if (b == Double.class) return 3;
            if (b == Float.class) return 2;
            if (t == BigDecimal.class || t == Number.class) return 1;
            if (scala && sBigDecimal != null && t == sBigDecimal) return 1;
            return optional(t) ? 1 : -1;
        }
        if (v instanceof String) {
            String s = (String) v;
            if (t == String.class) return 3;
            if (t == CharSequence.class) return 2;
            if (b == Character.class) return s.length() == 1 ? 1 : -1;
            if (t.isEnum()) return enumConstant(t, s) != null ? 3 : -1;
            if (fromString(t) != null) return 1;
            return optional(t) ? 1 : -1;
        }
        if (v instanceof List) {
            if (t.isArray()) return 2;
            if (t.isAssignableFrom(ArrayList.class)) return 2;
            if (t.isAssignableFrom(LinkedHashSet.class)) return 1;
            if (scala && scalaSeqLike(t)) return 2;
            return optional(t) ? 1 : -1;
        }
        if (v instanceof Map) {
            if (t.isAssignableFrom(LinkedHashMap.class)) return 2;
            if (scala && scalaMap(t)) return 2;
            if (shape(t) != null) return shape(t).accepts((Map<?, ?>) v) ? 2 : -1;
            return optional(t) ? 1 : -1;
        }
        return t.isInstance(v) ? 1 : -1;
    }

    private boolean scalaProduct(Class<?> t) {
        return scala && sProduct != null && sProduct.isAssignableFrom(t);
    }

    private boolean scalaMap(Class<?> t) {
        return (sImmMap != null && t.isAssignableFrom(sImmMap)) || (sMutableMap != null && t.isAssignableFrom(sMutableMap));
    }

    // ------------------------------------------------------------------ objects from JSON objects

    /**
     * How to build a {@code t} from a JSON object: a Java record (canonical
     * constructor, by component name), a Scala case class (its constructor, by field
     * name; missing fields take their Scala defaults), or a JavaBean (public no-arg
     * constructor, one public setter per key). Keys must all be known; a missing
     * field without a default is null (a primitive: no fit).
     */
    final class Shape {
        final java.lang.reflect.Constructor<?> ctor;
        final String[] names;
        final Class<?>[] types;
        final Type[] generics;
        final Method[] setters; // a bean: one per name
        final Object[] defaults; // a case class: per field, or NO_DEFAULT

        Shape(java.lang.reflect.Constructor<?> ctor, String[] names, Class<?>[] types, Type[] generics,
              Method[] setters, Object[] defaults) {
            this.ctor = ctor;
            this.names = names;
            this.types = types;
            this.generics = generics;
            this.setters = setters;
            this.defaults = defaults;
        }

        boolean accepts(Map<?, ?> map) {
            for (Object k : map.keySet()) if (indexOf(String.valueOf(k)) < 0) return false;
            if (setters == null) {
                for (int i = 0; i < names.length; i++) {
                    if (!map.containsKey(names[i]) && types[i].isPrimitive() && defaults[i] == NO_DEFAULT) return false;
                }
            }
            for (Map.Entry<?, ?> e : map.entrySet()) {
                int i = indexOf(String.valueOf(e.getKey()));
                if (rank(e.getValue(), types[i]) < 0) return false;
            }
            return true;
        }

        int indexOf(String name) {
            for (int i = 0; i < names.length; i++) if (names[i].equals(name)) return i;
            return -1;
        }

        Object build(Map<?, ?> map) throws Exception {
            if (!accepts(map)) throw MISMATCH;
            if (setters != null) {
                Object bean = ctor.newInstance();
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    int i = indexOf(String.valueOf(e.getKey()));
                    setters[i].invoke(bean, convert(e.getValue(), types[i], generics[i], null));
                }
                return bean;
            }
            Object[] args = new Object[names.length];
            for (int i = 0; i < names.length; i++) {
                if (map.containsKey(names[i])) args[i] = convert(map.get(names[i]), types[i], generics[i], null);
                else if (defaults[i] != NO_DEFAULT) args[i] = defaults[i];
                else args[i] = null;
            }
            return ctor.newInstance(args);
        }
    }

    private static final Object NO_DEFAULT = new Object();
    private final Map<Class<?>, Object> shapes = new java.util.HashMap<Class<?>, Object>();

    Shape shape(Class<?> t) {
        synchronized (shapes) {
            if (!shapes.containsKey(t)) {
                Shape sh = null;
                try {
                    sh = findShape(t);
                } catch (Exception ignored) {
                    // not buildable from an object
                }
                shapes.put(t, sh == null ? NONE : sh);
            }
            Object sh = shapes.get(t);
            return sh == NONE ? null : (Shape) sh;
        }
    }

    private Shape findShape(Class<?> t) throws Exception {
        if (t.isPrimitive() || t.isArray() || t.isInterface() || t.isEnum() || Modifier.isAbstract(t.getModifiers())
                || t.getName().startsWith("java.") || t.getName().startsWith("scala.")) return null;
        // A Java record (Java 16+), found by reflection so the host stays Java 8.
        try {
            if ((Boolean) Class.class.getMethod("isRecord").invoke(t)) {
                Object[] comps = (Object[]) Class.class.getMethod("getRecordComponents").invoke(t);
                int n = comps.length;
                String[] names = new String[n];
                Class<?>[] types = new Class<?>[n];
                Type[] generics = new Type[n];
                Object[] defaults = new Object[n];
                for (int i = 0; i < n; i++) {
                    Class<?> rc = comps[i].getClass();
                    names[i] = (String) rc.getMethod("getName").invoke(comps[i]);
                    types[i] = (Class<?>) rc.getMethod("getType").invoke(comps[i]);
                    generics[i] = (Type) rc.getMethod("getGenericType").invoke(comps[i]);
                    defaults[i] = NO_DEFAULT;
                }
                java.lang.reflect.Constructor<?> c = t.getDeclaredConstructor(types);
                c.setAccessible(true);
                return new Shape(c, names, types, generics, null, defaults);
            }
        } catch (NoSuchMethodException java8) {
            // no records before Java 16
        }
        // A Scala case class: constructor parameters are its fields, in order.
        if (scala && sProduct != null && sProduct.isAssignableFrom(t)) {
            List<String> fields = new ArrayList<String>();
            for (Field f : t.getDeclaredFields()) {
                if (Modifier.isStatic(f.getModifiers()) || f.isSynthetic() || f.getName().indexOf('$') >= 0) continue;
                try {
                    t.getMethod(f.getName());
                    fields.add(f.getName());
                } catch (NoSuchMethodException notAField) {
                    // a private val
                }
            }
            for (java.lang.reflect.Constructor<?> c : t.getConstructors()) {
                if (c.getParameterTypes().length != fields.size()) continue;
                int n = fields.size();
                Object[] defaults = new Object[n];
                Object[] all = Component.scalaConstructorDefaults(t, n);
                for (int i = 0; i < n; i++) defaults[i] = scalaDefault(t, i, all);
                return new Shape(c, fields.toArray(new String[0]), c.getParameterTypes(),
                        c.getGenericParameterTypes(), null, defaults);
            }
            return null;
        }
        // A JavaBean: public no-arg constructor and setters.
        java.lang.reflect.Constructor<?> c;
        try {
            c = t.getConstructor();
        } catch (NoSuchMethodException e) {
            return null;
        }
        List<String> names = new ArrayList<String>();
        List<Method> setters = new ArrayList<Method>();
        for (Method m : t.getMethods()) {
            if (Modifier.isStatic(m.getModifiers()) || m.getParameterTypes().length != 1) continue;
            String n = m.getName();
            if (!n.startsWith("set") || n.length() < 4 || jdk(m.getDeclaringClass())) continue;
            names.add(Character.toLowerCase(n.charAt(3)) + n.substring(4));
            setters.add(m);
        }
        if (setters.isEmpty()) return null;
        int n = setters.size();
        Class<?>[] types = new Class<?>[n];
        Type[] generics = new Type[n];
        for (int i = 0; i < n; i++) {
            types[i] = setters.get(i).getParameterTypes()[0];
            generics[i] = setters.get(i).getGenericParameterTypes()[0];
        }
        return new Shape(c, names.toArray(new String[0]), types, generics, setters.toArray(new Method[0]), null);
    }

    /** The Scala default of constructor parameter i, or NO_DEFAULT. */
    private static Object scalaDefault(Class<?> t, int i, Object[] all) {
        if (all != null) return all[i];
        Object[] one = Component.scalaConstructorDefault(t, i);
        return one == null ? NO_DEFAULT : one[0];
    }

    private boolean optional(Class<?> t) {
        return t == Optional.class || (scala && t == sOption);
    }

    private boolean scalaSeqLike(Class<?> t) {
        Class<?>[] cs = {sImmList, sVector, sImmSet, sMutableBuffer};
        for (Class<?> c : cs) if (c != null && t.isAssignableFrom(c)) return true;
        return false;
    }

    /** Parameter names from the class file (-parameters), else from the Scala signature, else null. */
    static String[] parameterNames(Method m, ScalaSig.SMethod sm) {
        Parameter[] ps = m.getParameters();
        String[] out = new String[ps.length];
        if (ps.length == 0 || ps[0].isNamePresent()) {
            for (int i = 0; i < ps.length; i++) out[i] = ps[i].getName();
            return out;
        }
        if (sm != null && sm.names.size() == ps.length) {
            for (int i = 0; i < ps.length; i++) out[i] = sm.names.get(i);
            return out;
        }
        return null;
    }

    /** Whether the last parameter is a Scala repeated parameter ({@code xs: Int*}, a Seq to the JVM). */
    static boolean scalaRepeated(ScalaSig.SMethod sm, int n) {
        ScalaSig.SType last = n > 0 ? stype(sm, n - 1) : null;
        return last != null && last.name != null && last.name.endsWith("<repeated>");
    }

    private static ScalaSig.SType stype(ScalaSig.SMethod sm, int i) {
        return sm == null || i < 0 || i >= sm.types.size() ? null : sm.types.get(i);
    }

    /**
     * Convert a JSON value to parameter type {@code t} (generic type {@code g}); {@code st}
     * is the Scala type when the pickled signature is known, which tells what erased
     * type arguments really are ({@code Seq[Int]} is {@code Seq<Object>} to the JVM).
     */
    Object convert(Object v, Class<?> t, Type g, ScalaSig.SType st) throws Exception {
        if (t == Object.class) return v;
        if (v == null) {
            if (t.isPrimitive()) throw MISMATCH;
            if (t == Optional.class) return Optional.empty();
            if (scala && t == sOption) return c("scala.None$").getField("MODULE$").get(null);
            return null;
        }
        Class<?> b = box(t);
        if (v instanceof Boolean) {
            if (b == Boolean.class) return v;
        } else if (v instanceof Number) {
            Number num = (Number) v;
            {
                if (b == Long.class) return num.longValue();
                if (b == Integer.class) return num.intValue();
                if (b == Short.class) return num.shortValue();
                if (b == Byte.class) return num.byteValue();
                if (b == Double.class) return num.doubleValue();
                if (b == Float.class) return num.floatValue();
                if (t == BigInteger.class) return v instanceof BigInteger ? v : BigInteger.valueOf(num.longValue());
                if (t == BigDecimal.class) return new BigDecimal(num.toString());
                if (t == Number.class) return v;
            }
        }
        if (v instanceof Number && scala) {
            if (sBigInt != null && t == sBigInt) {
                BigInteger bi = v instanceof BigInteger ? (BigInteger) v : BigInteger.valueOf(((Number) v).longValue());
                return module("scala.math.BigInt$").getClass().getMethod("apply", BigInteger.class).invoke(module("scala.math.BigInt$"), bi);
            }
            if (sBigDecimal != null && t == sBigDecimal) {
                Object m = module("scala.math.BigDecimal$");
                return m.getClass().getMethod("apply", BigDecimal.class).invoke(m, new BigDecimal(v.toString()));
            }
        }
        if (v instanceof String) {
            String s = (String) v;
            if (t == String.class || t == CharSequence.class) return s;
            if (b == Character.class && s.length() == 1) return s.charAt(0);
            if (t.isEnum()) {
                Object e = enumConstant(t, s);
                if (e != null) return e;
            }
            java.lang.reflect.Member f = fromString(t);
            if (f != null) {
                try {
                    if (f instanceof Method) {
                        Method m = (Method) f;
                        Object self = Modifier.isStatic(m.getModifiers()) ? null
                                : Component.module(loader.probe(t.getName() + "$"));
                        return m.invoke(self, s);
                    }
                    return ((java.lang.reflect.Constructor<?>) f).newInstance(s);
                } catch (java.lang.reflect.InvocationTargetException e) {
                    Throwable c = e.getCause();
                    throw new IllegalArgumentException("cannot make a " + t.getSimpleName() + " of \"" + s + "\": " + c, c);
                }
            }
        }
        if (v instanceof List) {
            List<?> list = (List<?>) v;
            if (t.isArray()) {
                Class<?> ct = t.getComponentType();
                Type cg = g instanceof GenericArrayType ? ((GenericArrayType) g).getGenericComponentType() : ct;
                Object arr = Array.newInstance(ct, list.size());
                for (int i = 0; i < list.size(); i++) {
                    if (rank(list.get(i), ct) < 0) throw MISMATCH;
                    Array.set(arr, i, convert(list.get(i), ct, cg, st == null ? null : st.arg(0)));
                }
                return arr;
            }
            if (t.isAssignableFrom(ArrayList.class) || t.isAssignableFrom(LinkedHashSet.class)) {
                Collection<Object> out = t.isAssignableFrom(ArrayList.class)
                        ? new ArrayList<Object>(list.size()) : new LinkedHashSet<Object>();
                Type et = typeArg(g, 0);
                for (Object o : list) out.add(element(o, et, st == null ? null : st.arg(0)));
                return out;
            }
            if (scala && scalaSeqLike(t)) {
                List<Object> conv = new ArrayList<Object>(list.size());
                for (Object o : list) conv.add(element(o, typeArg(g, 0), st == null ? null : st.arg(0)));
                Object buffer = asScala("asScalaBufferConverter", List.class, conv);
                if (sMutableBuffer != null && t.isAssignableFrom(sMutableBuffer)) return buffer;
                if (sImmList != null && t.isAssignableFrom(sImmList)) return buffer.getClass().getMethod("toList").invoke(buffer);
                if (sVector != null && t.isAssignableFrom(sVector)) return buffer.getClass().getMethod("toVector").invoke(buffer);
                return buffer.getClass().getMethod("toSet").invoke(buffer);
            }
        }
        if (v instanceof Map) {
            Map<?, ?> map = (Map<?, ?>) v;
            if (t.isAssignableFrom(LinkedHashMap.class)) {
                Map<Object, Object> out = new LinkedHashMap<Object, Object>();
                Type kt = typeArg(g, 0), vt = typeArg(g, 1);
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    out.put(mapKey((String) e.getKey(), kt), element(e.getValue(), vt, st == null ? null : st.arg(1)));
                }
                return out;
            }
            Shape sh = shape(t);
            if (sh != null) return sh.build(map);
            if (scala && scalaMap(t)) {
                Map<Object, Object> conv = new LinkedHashMap<Object, Object>();
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    conv.put(e.getKey(), element(e.getValue(), typeArg(g, 1), st == null ? null : st.arg(1)));
                }
                Object mm = asScala("mapAsScalaMapConverter", Map.class, conv);
                if (sMutableMap != null && t.isAssignableFrom(sMutableMap)) return mm;
                Object predef = module("scala.Predef$");
                Method conforms = predef.getClass().getMethod("$conforms");
                Object ev = conforms.invoke(predef);
                for (Method m : mm.getClass().getMethods()) {
                    if (m.getName().equals("toMap") && m.getParameterTypes().length == 1) return m.invoke(mm, ev);
                }
            }
        }
        if (t == Optional.class) return Optional.ofNullable(element(v, typeArg(g, 0), null));
        if (scala && t == sOption) {
            Object opt = module("scala.Option$");
            return opt.getClass().getMethod("apply", Object.class).invoke(opt, element(v, typeArg(g, 0), st == null ? null : st.arg(0)));
        }
        if (t.isInstance(v)) return v;
        throw MISMATCH;
    }

    private static final String[] FACTORIES = {"valueOf", "parse", "of", "fromString", "forName", "apply"};

    /**
     * How to make a {@code t} from a string, for types such as File, Path, URI, UUID,
     * Charset, BigDecimal or java.time values: a public static factory taking one
     * String or CharSequence ({@code valueOf}, {@code parse}, {@code of},
     * {@code fromString}, {@code forName}, a Scala companion's {@code apply}; {@code Paths.get}
     * for Path) returning
     * {@code t}, else a public constructor taking one String. Null when there is none.
     */
    private final Map<Class<?>, Object> makers = new java.util.HashMap<Class<?>, Object>();

    java.lang.reflect.Member fromString(Class<?> t) {
        synchronized (makers) {
            if (makers.containsKey(t)) return (java.lang.reflect.Member) makers.get(t);
            java.lang.reflect.Member m = findFromString(t);
            makers.put(t, m);
            return m;
        }
    }

    private java.lang.reflect.Member findFromString(Class<?> t) {
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
        Class<?> companion = t.getClassLoader() == loader ? loader.probe(t.getName() + "$") : null;
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

    private static final Method PATHS_GET = pathOf();

    private static Method pathOf() {
        try {
            return Values.class.getDeclaredMethod("path", String.class);
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(e);
        }
    }

    static java.nio.file.Path path(String s) {
        return java.nio.file.Paths.get(s);
    }

    /** A collection element, converted when its generic type is known. */
    private Object element(Object v, Type et, ScalaSig.SType est) throws Exception {
        Class<?> raw = raw(et);
        if (raw == null || raw == Object.class) {
            // Erased to Object: a Scala primitive type argument arrives as its box (Int -> Integer).
            Class<?> box = est == null || v == null ? null : est.primitiveBox();
            if (box == null) return v;
            if (rank(v, box) < 0) throw MISMATCH;
            return convert(v, box, box, null);
        }
        if (rank(v, raw) < 0) throw MISMATCH;
        return convert(v, raw, et, est);
    }

    private Object mapKey(String k, Type kt) throws Exception {
        Class<?> raw = raw(kt);
        if (raw == null || raw == Object.class || raw == String.class || raw == CharSequence.class) return k;
        if (box(raw) == Integer.class) return Integer.valueOf(k);
        if (box(raw) == Long.class) return Long.valueOf(k);
        if (raw.isEnum()) {
            Object e = enumConstant(raw, k);
            if (e != null) return e;
        }
        throw MISMATCH;
    }

    private Object module(String name) throws Exception {
        return c(name).getField("MODULE$").get(null);
    }

    private Object asScala(String converter, Class<?> arg, Object value) throws Exception {
        Object jc = module("scala.collection.JavaConverters$");
        Object decorated = jc.getClass().getMethod(converter, arg).invoke(jc, value);
        return decorated.getClass().getMethod("asScala").invoke(decorated);
    }

    private static Type typeArg(Type g, int i) {
        if (g instanceof ParameterizedType) {
            Type[] a = ((ParameterizedType) g).getActualTypeArguments();
            return i < a.length ? a[i] : null;
        }
        return null;
    }

    private static Class<?> raw(Type t) {
        if (t instanceof Class) return (Class<?>) t;
        if (t instanceof ParameterizedType) return (Class<?>) ((ParameterizedType) t).getRawType();
        if (t instanceof WildcardType) {
            Type[] up = ((WildcardType) t).getUpperBounds();
            return up.length == 1 ? raw(up[0]) : null;
        }
        if (t instanceof GenericArrayType) {
            Class<?> c = raw(((GenericArrayType) t).getGenericComponentType());
            return c == null ? null : Array.newInstance(c, 0).getClass();
        }
        return null; // a type variable: anything goes
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Object enumConstant(Class<?> t, String s) {
        for (Object e : t.getEnumConstants()) if (((Enum) e).name().equals(s)) return e;
        for (Object e : t.getEnumConstants()) if (((Enum) e).name().equalsIgnoreCase(s)) return e;
        return null;
    }

    private static boolean fits(Object v, long min, long max) {
        if (v instanceof BigInteger) return false;
        long l = (Long) v;
        return l >= min && l <= max;
    }

    static Class<?> box(Class<?> t) {
        if (!t.isPrimitive()) return t;
        if (t == int.class) return Integer.class;
        if (t == long.class) return Long.class;
        if (t == boolean.class) return Boolean.class;
        if (t == double.class) return Double.class;
        if (t == float.class) return Float.class;
        if (t == short.class) return Short.class;
        if (t == byte.class) return Byte.class;
        if (t == char.class) return Character.class;
        return Void.class;
    }

    /** "(string, number, list)" for messages: the JSON types of the given arguments. */
    static String describe(List<Object> args, Map<String, Object> kwargs) {
        StringBuilder sb = new StringBuilder("(");
        boolean first = true;
        for (Object a : args) {
            if (!first) sb.append(", ");
            first = false;
            sb.append(jsonType(a));
        }
        for (Map.Entry<String, Object> e : kwargs.entrySet()) {
            if (!first) sb.append(", ");
            first = false;
            sb.append(e.getKey()).append('=').append(jsonType(e.getValue()));
        }
        return sb.append(')').toString();
    }

    static String jsonType(Object v) {
        if (v == null) return "null";
        if (v instanceof Boolean) return "boolean";
        if (v instanceof Long || v instanceof BigInteger) return "integer";
        if (v instanceof Number) return "number";
        if (v instanceof String) return "string";
        if (v instanceof List) return "list";
        if (v instanceof Map) return "object";
        return v.getClass().getSimpleName();
    }
}
