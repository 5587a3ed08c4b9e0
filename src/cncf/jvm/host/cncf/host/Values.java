package cncf.host;

import cncf.launch.Isolation;
import java.lang.reflect.Array;
import java.lang.reflect.Executable;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Method;
import java.lang.reflect.Parameter;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.WildcardType;
import java.math.BigInteger;
import java.util.List;
import java.util.Map;

/**
 * The value context of one component (docs/forms/jar.md, "Values"): the handles
 * on its own scala-library (looked up by reflection through its loader, and only
 * when it bundles one), and the type descriptions every other part shares.
 *
 * <p>The work is split by direction: {@link Arguments} turns JSON-shaped values
 * into parameter types, {@link Overloads} picks the overload as javac would,
 * {@link Results} turns results into JSON only where the form keeps the value,
 * and {@link Shapes} describes the types built from or written as JSON objects
 * (records, case classes, beans).
 */
final class Values {
    final Isolation loader;
    final boolean scala;
    Class<?> sOption, sIterable, sIterator, sMap, sProduct, sTuple2, sBigInt, sBigDecimal,
            sBoxedUnit, sEnumValue, sSymbol, sImmList, sVector, sImmSet, sImmMap, sSeq, sMutableBuffer,
            sMutableMap, sSet;
    Method mOptionIsEmpty, mOptionGet, mIterator, mHasNext, mNext, mT1, mT2, mArity, mElement,
            mBigInteger, mBigDecimal;
    final Arguments arguments;
    final Results results;
    final Shapes shapes;

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
        shapes = new Shapes(this);
        arguments = new Arguments(this);
        results = new Results(this);
    }

    Class<?> c(String name) {
        return loader.probe(name);
    }

    Object module(String name) throws Exception {
        return c(name).getField("MODULE$").get(null);
    }

    boolean scala() {
        return scala;
    }

    /** Results → JSON (see {@link Results}). */
    Object toJson(Object v) throws Json.NotJson {
        return results.toJson(v);
    }

    private final Map<Class<?>, ScalaSig> sigs = new java.util.HashMap<Class<?>, ScalaSig>();

    /** The Scala declaration of a method (names and Scala types of its parameters), or null. */
    /** A Scala class's constructor as declared (its parameter names), or null. */
    ScalaSig.SMethod scalaConstructor(java.lang.reflect.Constructor<?> c) {
        if (!scala) return null;
        Class<?> k = c.getDeclaringClass();
        ScalaSig sig;
        synchronized (sigs) {
            if (!sigs.containsKey(k)) sigs.put(k, ScalaSig.of(k, loader));
            sig = sigs.get(k);
        }
        try {
            return sig == null ? null : sig.constructor(c);
        } catch (RuntimeException unexpected) {
            return null; // no information: positional init only
        }
    }

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

    // ------------------------------------------------------------------ type descriptions

    boolean scalaProduct(Class<?> t) {
        return scala && sProduct != null && sProduct.isAssignableFrom(t);
    }

    boolean scalaMap(Class<?> t) {
        return (sImmMap != null && t.isAssignableFrom(sImmMap)) || (sMutableMap != null && t.isAssignableFrom(sMutableMap));
    }

    boolean scalaSeqLike(Class<?> t) {
        Class<?>[] cs = {sImmList, sVector, sImmSet, sMutableBuffer};
        for (Class<?> k : cs) if (k != null && t.isAssignableFrom(k)) return true;
        return false;
    }

    boolean optional(Class<?> t) {
        return t == java.util.Optional.class || (scala && t == sOption);
    }

    static boolean jdk(Class<?> c) {
        String n = c.getName();
        return n.startsWith("java.") || n.startsWith("javax.") || n.startsWith("jdk.") || n.startsWith("sun.")
                || n.startsWith("com.sun.");
    }

    /** Parameter names from the class file (-parameters), else from the Scala signature, else null. */
    static String[] parameterNames(Executable m, ScalaSig.SMethod sm) {
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

    static ScalaSig.SType stype(ScalaSig.SMethod sm, int i) {
        return sm == null || i < 0 || i >= sm.types.size() ? null : sm.types.get(i);
    }

    static Type typeArg(Type g, int i) {
        if (g instanceof ParameterizedType) {
            Type[] a = ((ParameterizedType) g).getActualTypeArguments();
            return i < a.length ? a[i] : null;
        }
        return null;
    }

    static Class<?> raw(Type t) {
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

    /** A short Java name for messages (java.lang./java.util. dropped). */
    static String shortName(Type t) {
        return t.getTypeName().replace("java.lang.", "").replace("java.util.", "");
    }
}
