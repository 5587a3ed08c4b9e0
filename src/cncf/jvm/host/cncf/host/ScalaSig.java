package cncf.host;

import cncf.launch.Isolation;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The Scala types of a method's parameters, read from the Scala compiler's
 * pickled signature (the {@code ScalaSignature} annotation every Scala 2 class
 * carries), so that values can be converted to what Scala code really expects.
 *
 * <p>Why: the JVM signature of {@code def sum(xs: Seq[Int])} is
 * {@code sum(scala.collection.Seq<Object>)} — Scala erases primitive type
 * arguments to Object and unboxes them with a cast to {@code java.lang.Integer}
 * later, so a list of JSON integers must arrive as Integers, not Longs. The
 * pickle keeps the real types ({@code Seq[Int]}) and the parameter names, which
 * Scala 2 never writes to the class file otherwise (named arguments for Scala).
 *
 * <p>Only what is needed is decoded: the symbol table (format 5.x, Scala 2.10 to
 * 2.13), method symbols by name and owner, their parameter symbols, and type
 * references with their arguments. Anything unexpected yields "no information"
 * and the plain Java conversions apply. The layout follows
 * {@code scala.reflect.internal.pickling.PickleFormat}.
 */
final class ScalaSig {
    /** A Scala type: its fully qualified symbol name and its type arguments. */
    static final class SType {
        final String name;
        final SType[] args;

        SType(String name, SType[] args) {
            this.name = name;
            this.args = args;
        }

        SType arg(int i) {
            return args != null && i < args.length ? args[i] : null;
        }

        /** The box class Scala uses for this type when it is a primitive, else null. */
        Class<?> primitiveBox() {
            if (name == null) return null;
            if (name.equals("scala.Int")) return Integer.class;
            if (name.equals("scala.Long")) return Long.class;
            if (name.equals("scala.Double")) return Double.class;
            if (name.equals("scala.Float")) return Float.class;
            if (name.equals("scala.Short")) return Short.class;
            if (name.equals("scala.Byte")) return Byte.class;
            if (name.equals("scala.Boolean")) return Boolean.class;
            if (name.equals("scala.Char")) return Character.class;
            return null;
        }

        @Override
        public String toString() {
            if (args == null || args.length == 0) return name;
            StringBuilder sb = new StringBuilder(name).append('[');
            for (int i = 0; i < args.length; i++) sb.append(i > 0 ? ", " : "").append(args[i]);
            return sb.append(']').toString();
        }
    }

    /** A method as Scala declared it: parameter names and types (one flat list). */
    static final class SMethod {
        final List<String> names = new ArrayList<String>();
        final List<SType> types = new ArrayList<SType>();
    }

    private static final int TERMNAME = 1, TYPENAME = 2, NONESYM = 3, CLASSSYM = 6, MODULESYM = 7, VALSYM = 8,
            EXTREF = 9, EXTMODCLASSREF = 10, THISTPE = 13, SINGLETPE = 14, TYPEREFTPE = 16, METHODTPE = 20,
            POLYTPE = 21, IMPLICITMETHODTPE = 22, ANNOTATEDTPE = 42, EXISTENTIALTPE = 48;

    private final byte[] bytes;
    private final int[] index;
    private final Map<Integer, SType> types = new HashMap<Integer, SType>();

    private ScalaSig(byte[] bytes, int[] index) {
        this.bytes = bytes;
        this.index = index;
    }

    // ------------------------------------------------------------------ reading the annotation

    /** The pickle of a class's top-level Scala class, or null (not Scala, or unreadable). */
    static ScalaSig of(Class<?> cls, Isolation loader) {
        try {
            Class<?> top = cls;
            while (top.getEnclosingClass() != null) top = top.getEnclosingClass();
            String n = top.getName();
            if (n.endsWith("$")) {
                Class<?> mirror = loader.probe(n.substring(0, n.length() - 1));
                if (mirror != null) top = mirror;
            }
            String text = null;
            Class<?> short_ = loader.probe("scala.reflect.ScalaSignature");
            Class<?> long_ = loader.probe("scala.reflect.ScalaLongSignature");
            Object a = short_ == null ? null : annotation(top, short_);
            if (a != null) {
                text = (String) short_.getMethod("bytes").invoke(a);
            } else if (long_ != null && (a = annotation(top, long_)) != null) {
                StringBuilder sb = new StringBuilder();
                for (String part : (String[]) long_.getMethod("bytes").invoke(a)) sb.append(part);
                text = sb.toString();
            }
            if (text == null) return null;
            byte[] raw = new byte[text.length()];
            for (int i = 0; i < raw.length; i++) raw[i] = (byte) text.charAt(i);
            int len = decode(raw);
            byte[] b = new byte[len];
            System.arraycopy(raw, 0, b, 0, len);
            return parse(b);
        } catch (Throwable e) {
            return null;
        }
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Object annotation(Class<?> c, Class<?> ann) {
        return c.getAnnotation((Class) ann);
    }

    /** Undo the annotation's 7-bit encoding in place; returns the decoded length. */
    static int decode(byte[] src) {
        // Each byte was incremented by one and 0x7f..0x80 wrapped to 0 (kept as 0 by the JVM's string).
        int n = src.length;
        for (int i = 0; i < n; i++) {
            int in = src[i] & 0xff;
            src[i] = (byte) (in == 0 ? 0x7f : in - 1);
        }
        // Then every 8 bytes of 7 bits are 7 bytes of 8 bits.
        int dst = (n * 7 + 7) / 8;
        int j = 0;
        int bits = 0, acc = 0;
        for (int i = 0; i < n; i++) {
            acc |= (src[i] & 0x7f) << bits;
            bits += 7;
            if (bits >= 8) {
                src[j++] = (byte) acc;
                acc >>>= 8;
                bits -= 8;
            }
        }
        if (j < dst) src[j++] = (byte) acc; // the leftover bits, as scala.reflect's decoder keeps them
        return j;
    }

    private static ScalaSig parse(byte[] b) {
        int[] pos = {0};
        int major = nat(b, pos);
        nat(b, pos); // minor
        if (major != 5) return null;
        int count = nat(b, pos);
        int[] index = new int[count];
        for (int i = 0; i < count; i++) {
            index[i] = pos[0];
            pos[0]++; // tag
            int len = nat(b, pos);
            pos[0] += len;
        }
        return new ScalaSig(b, index);
    }

    private static int nat(byte[] b, int[] pos) {
        int x = 0;
        int c;
        do {
            c = b[pos[0]++] & 0xff;
            x = (x << 7) | (c & 0x7f);
        } while ((c & 0x80) != 0);
        return x;
    }

    private static long longNat(byte[] b, int[] pos) {
        long x = 0;
        int c;
        do {
            c = b[pos[0]++] & 0xff;
            x = (x << 7) | (c & 0x7f);
        } while ((c & 0x80) != 0);
        return x;
    }

    // ------------------------------------------------------------------ entries

    private int tag(int i) {
        return bytes[index[i]] & 0xff;
    }

    /** The refs (naturals) making up entry i's data, after the tag and length. */
    private int[] refs(int i) {
        int[] pos = {index[i] + 1};
        int len = nat(bytes, pos);
        int end = pos[0] + len;
        List<Integer> out = new ArrayList<Integer>();
        while (pos[0] < end) out.add(nat(bytes, pos));
        int[] r = new int[out.size()];
        for (int k = 0; k < r.length; k++) r[k] = out.get(k);
        return r;
    }

    private String name(int i) {
        int t = tag(i);
        if (t != TERMNAME && t != TYPENAME) return null;
        int[] pos = {index[i] + 1};
        int len = nat(bytes, pos);
        try {
            return new String(bytes, pos[0], len, "UTF-8");
        } catch (java.io.UnsupportedEncodingException e) {
            return null;
        }
    }

    private boolean isLocalSymbol(int i) {
        int t = tag(i);
        return t >= NONESYM && t <= VALSYM;
    }

    /** Symbol info: [name, owner, flags(ignored as ref), (privateWithin), info]. */
    private int[] symbolInfo(int i) {
        int[] pos = {index[i] + 1};
        int len = nat(bytes, pos);
        int end = pos[0] + len;
        int name = nat(bytes, pos);
        int owner = nat(bytes, pos);
        longNat(bytes, pos); // flags
        int ref = nat(bytes, pos);
        int info = ref;
        if (ref < index.length && isLocalSymbol(ref) && pos[0] < end) info = nat(bytes, pos);
        return new int[] {name, owner, info};
    }

    /** The fully qualified name of a symbol entry (local or external). */
    private String symbolName(int i, int depth) {
        if (depth > 32 || i < 0 || i >= index.length) return null;
        int t = tag(i);
        String own;
        String simple;
        if (t == EXTREF || t == EXTMODCLASSREF) {
            int[] r = refs(i);
            simple = name(r[0]);
            own = r.length > 1 ? symbolName(r[1], depth + 1) : null;
        } else if (t >= NONESYM + 1 && t <= VALSYM) {
            int[] info = symbolInfo(i);
            simple = name(info[0]);
            own = symbolName(info[1], depth + 1);
        } else {
            return null;
        }
        if (simple == null) return null;
        if (own == null || own.length() == 0 || own.equals("<root>") || own.equals("<empty>")) return simple;
        if (own.endsWith(".package")) own = own.substring(0, own.length() - 8); // package objects
        return own + "." + simple;
    }

    /** The type entry i as an SType (aliases and annotations see-through where cheap). */
    private SType type(int i, int depth) {
        if (depth > 32 || i < 0 || i >= index.length) return null;
        SType cached = types.get(i);
        if (cached != null) return cached;
        int t = tag(i);
        SType out = null;
        int[] r;
        switch (t) {
            case TYPEREFTPE:
                r = refs(i);
                if (r.length >= 2) {
                    SType[] args = new SType[r.length - 2];
                    for (int k = 2; k < r.length; k++) args[k - 2] = type(r[k], depth + 1);
                    out = new SType(symbolName(r[1], 0), args);
                }
                break;
            case ANNOTATEDTPE:
                r = refs(i);
                if (r.length >= 1) out = type(r[0], depth + 1);
                break;
            case EXISTENTIALTPE:
                r = refs(i);
                if (r.length >= 1) out = type(r[0], depth + 1);
                break;
            case SINGLETPE:
            case THISTPE:
            default:
                out = null;
        }
        if (out != null) types.put(i, out);
        return out;
    }

    // ------------------------------------------------------------------ methods

    /**
     * The Scala declaration matching a Java method: same name, owned by a class or
     * object of the method's declaring class's name, same number of (flattened)
     * parameters, and — among several — the one whose parameter types erase to the
     * Java ones. Null when unknown.
     */
    SMethod method(Method m) {
        return method(m, m.getName());
    }

    /** A constructor as Scala declared it (the class's {@code <init>}): its parameters' names. */
    SMethod constructor(java.lang.reflect.Constructor<?> c) {
        return method(c, "<init>");
    }

    private SMethod method(java.lang.reflect.Executable m, String methodName) {
        String owner = m.getDeclaringClass().getSimpleName();
        if (owner.endsWith("$")) owner = owner.substring(0, owner.length() - 1);
        int want = m.getParameterTypes().length;
        List<SMethod> found = new ArrayList<SMethod>();
        List<Integer> candidates = valuesNamed().get(methodName);
        if (candidates == null) return null;
        for (int i : candidates) {
            int[] info = symbolInfo(i);
            int o = info[1];
            if (o < 0 || o >= index.length || (tag(o) != CLASSSYM && tag(o) != MODULESYM)) continue;
            if (!owner.equals(name(symbolInfo(o)[0]))) continue;
            SMethod sm = new SMethod();
            collect(info[2], sm, 0);
            if (sm.types.size() == want) found.add(sm);
        }
        if (found.size() == 1) return found.get(0);
        SMethod match = null;
        for (SMethod sm : found) {
            if (erasesTo(sm, m.getParameterTypes())) {
                if (match != null) return null; // still ambiguous
                match = sm;
            }
        }
        return match;
    }

    private Map<String, List<Integer>> byName;

    /** Value symbols (methods, parameters, fields) by name, built once. */
    private synchronized Map<String, List<Integer>> valuesNamed() {
        if (byName == null) {
            byName = new HashMap<String, List<Integer>>();
            for (int i = 0; i < index.length; i++) {
                if (tag(i) != VALSYM) continue;
                String n = name(symbolInfo(i)[0]);
                if (n == null) continue;
                List<Integer> l = byName.get(n);
                if (l == null) byName.put(n, l = new ArrayList<Integer>());
                l.add(i);
            }
        }
        return byName;
    }

    private void collect(int tpe, SMethod into, int depth) {
        if (depth > 16 || tpe < 0 || tpe >= index.length) return;
        int t = tag(tpe);
        if (t == POLYTPE) {
            int[] r = refs(tpe);
            if (r.length >= 1) collect(r[0], into, depth + 1);
        } else if (t == METHODTPE || t == IMPLICITMETHODTPE) {
            int[] r = refs(tpe);
            for (int k = 1; k < r.length; k++) {
                int p = r[k];
                if (p >= index.length || tag(p) != VALSYM) continue;
                int[] info = symbolInfo(p);
                into.names.add(name(info[0]));
                into.types.add(type(info[2], 0));
            }
            if (r.length >= 1) collect(r[0], into, depth + 1); // curried: more parameter lists
        }
    }

    private static boolean erasesTo(SMethod sm, Class<?>[] java) {
        for (int k = 0; k < java.length; k++) {
            SType st = sm.types.get(k);
            if (st == null || st.name == null) continue;
            String simple = st.name.substring(st.name.lastIndexOf('.') + 1);
            Class<?> box = st.primitiveBox();
            if (box != null) {
                if (Values.box(java[k]) != box) return false;
            } else if (java[k].isPrimitive()) {
                return false;
            } else if (!java[k].getSimpleName().equals(simple) && java[k] != Object.class) {
                // aliases (Predef.String, scala.Seq) keep their simple names; anything else mismatches
                if (!(simple.equals("String") && java[k] == String.class)) return false;
            }
        }
        return true;
    }
}
