package cncf.host;

import java.lang.reflect.Array;
import java.lang.reflect.Executable;
import java.lang.reflect.Method;
import java.lang.reflect.Type;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Overload resolution as javac does it (JLS 15.12.2), over JSON arguments.
 *
 * <p>Each candidate (a method, or a constructor for {@code init}) is tried in the
 * phases of the JLS, and the first phase in which any candidate applies wins:
 * <ol>
 * <li>fixed arity, every argument {@link Arguments#STRICT} (no boxing);</li>
 * <li>fixed arity, boxing allowed;</li>
 * <li>fixed arity with the host's own conversions ({@link Arguments#LOOSE}:
 *     strings parsed to enums, dates, classes; integers narrowed where they fit) —
 *     conversions javac does not know, tried only when no Java conversion fits;</li>
 * <li>Scala default arguments filling omitted parameters (Scala tries these only
 *     when no alternative applies without defaults);</li>
 * <li>variable arity: trailing arguments as the varargs array (Java) or repeated
 *     parameter (Scala).</li>
 * </ol>
 * Among the candidates of that phase the most specific is chosen (15.12.2.5):
 * one whose parameter type for each argument is no worse a conversion and a
 * subtype (or, for a JSON number, a narrower primitive) of every other's. No
 * single most specific candidate is {@code ambiguous_operation} listing them;
 * no applicable candidate is {@code invalid_arguments} with the reasons
 * (a value out of range, a misspelt enum constant, ...).
 */
final class Overloads {
    static final int FIXED_DEFAULTS = 4, VARIABLE = 5;

    /** Marks a parameter left to its Scala default ({@code name$default$k}). */
    static final Object DEFAULT = new Object();

    /** A candidate and what it needs. */
    static final class Candidate {
        final Executable exe;
        final Method[] defaults; // Scala default getters per parameter, or null
        final ScalaSig.SMethod scala;

        Candidate(Executable exe, Method[] defaults, ScalaSig.SMethod scala) {
            this.exe = exe;
            this.defaults = defaults;
            this.scala = scala;
        }
    }

    /** The chosen candidate and its converted arguments (DEFAULT where the Scala default applies). */
    static final class Choice {
        final Candidate candidate;
        final Object[] args;

        Choice(Candidate candidate, Object[] args) {
            this.candidate = candidate;
            this.args = args;
        }
    }

    /** How one candidate applies: its phase, and per supplied argument the target type and tier. */
    private static final class Application {
        final Candidate c;
        final int phase;
        final Object[] slots; // per parameter: the JSON value, DEFAULT, or (varargs) the trailing list
        final boolean variable;
        final Class<?>[] types; // per supplied argument (positional first, then named in order)
        final int[] tiers;

        Application(Candidate c, int phase, Object[] slots, boolean variable, Class<?>[] types, int[] tiers) {
            this.c = c;
            this.phase = phase;
            this.slots = slots;
            this.variable = variable;
            this.types = types;
            this.tiers = tiers;
        }
    }

    private final Values values;
    private final Signatures signatures;

    /** Renders a candidate's signature for messages. */
    interface Signatures {
        String of(Candidate c);
    }

    Overloads(Values values, Signatures signatures) {
        this.values = values;
        this.signatures = signatures;
    }

    Choice choose(String what, List<Candidate> cands, List<Object> args, Map<String, Object> kwargs)
            throws Component.Refusal {
        Arguments.Why why = new Arguments.Why();
        List<Application> apps = new ArrayList<Application>();
        for (Candidate c : cands) {
            Application a = apply(c, args, kwargs, why);
            if (a != null) apps.add(a);
        }
        if (apps.isEmpty()) {
            Map<String, Object> a = Component.attrs("signatures", all(cands));
            a.put("given", Values.describe(args, kwargs));
            if (!why.reasons.isEmpty()) a.put("reasons", new ArrayList<Object>(why.reasons));
            throw Component.Refusal.of("invalid_arguments", "no overload of " + what + " accepts "
                    + Values.describe(args, kwargs) + (why.reasons.isEmpty() ? "" : " (" + join(why.reasons) + ")")
                    + "; signatures: " + all(cands), a);
        }
        int phase = Integer.MAX_VALUE;
        for (Application a : apps) phase = Math.min(phase, a.phase);
        List<Application> inPhase = new ArrayList<Application>();
        for (Application a : apps) if (a.phase == phase) inPhase.add(a);
        List<Application> best = new ArrayList<Application>();
        for (Application a : inPhase) {
            boolean dominated = false;
            for (Application b : inPhase) {
                if (b != a && atLeast(b, a, args, kwargs) && !atLeast(a, b, args, kwargs)) {
                    dominated = true;
                    break;
                }
            }
            if (!dominated) best.add(a);
        }
        Application chosen = best.get(0);
        for (Application b : best) {
            if (!sameParameters(b.c.exe, chosen.c.exe)) {
                List<Object> sigs = new ArrayList<Object>();
                for (Application x : best) sigs.add(signatures.of(x.c));
                Map<String, Object> a = Component.attrs("signatures", sigs);
                a.put("given", Values.describe(args, kwargs));
                throw Component.Refusal.of("ambiguous_operation", "the call " + what + Values.describe(args, kwargs)
                        + " fits several overloads equally well, as it would for javac: " + sigs
                        + "; pass values whose JSON types tell them apart, or call a method with one signature", a);
            }
        }
        try {
            return new Choice(chosen.c, convert(chosen));
        } catch (Arguments.Mismatch e) {
            throw Component.Refusal.of("invalid_arguments", "the arguments do not fit "
                    + signatures.of(chosen.c), Component.attrs("signatures", all(cands)));
        } catch (Component.Refusal r) {
            throw r;
        } catch (Exception e) {
            Throwable u = e instanceof java.lang.reflect.InvocationTargetException ? e.getCause() : e;
            throw Component.Refusal.of("invalid_arguments", "the arguments do not fit " + signatures.of(chosen.c)
                    + ": " + (u.getMessage() == null ? u.toString() : u.getMessage()),
                    Component.attrs("signatures", all(cands)));
        }
    }

    private List<Object> all(List<Candidate> cands) {
        List<Object> out = new ArrayList<Object>();
        for (Candidate c : cands) out.add(signatures.of(c));
        return out;
    }

    private static String join(List<String> xs) {
        StringBuilder sb = new StringBuilder();
        for (String x : xs) sb.append(sb.length() > 0 ? "; " : "").append(x);
        return sb.toString();
    }

    // ------------------------------------------------------------------ applicability

    private Application apply(Candidate c, List<Object> args, Map<String, Object> kwargs, Arguments.Why why) {
        Executable m = c.exe;
        int n = m.getParameterCount();
        int p = args.size();
        boolean repeated = m.isVarArgs() || Values.scalaRepeated(c.scala, n);
        if (!kwargs.isEmpty()) {
            String[] names = Values.parameterNames(m, c.scala);
            if (names == null) {
                why.add("parameter names are not in the class file (compiled without -parameters): "
                        + "pass the arguments as a list");
                return null;
            }
            if (p > n) return null;
            Object[] slots = new Object[n];
            boolean[] set = new boolean[n];
            int[] where = new int[p + kwargs.size()];
            for (int i = 0; i < p; i++) { slots[i] = args.get(i); set[i] = true; where[i] = i; }
            int j = p;
            for (Map.Entry<String, Object> e : kwargs.entrySet()) {
                int at = -1;
                for (int i = p; i < n; i++) if (names[i].equals(e.getKey())) at = i;
                if (at < 0 || set[at]) {
                    why.add("no parameter named " + e.getKey());
                    return null;
                }
                slots[at] = e.getValue();
                set[at] = true;
                where[j++] = at;
            }
            boolean defaulted = false;
            for (int i = 0; i < n; i++) {
                if (set[i]) continue;
                if (c.defaults == null || c.defaults[i] == null) {
                    why.add("no value for parameter " + names[i]);
                    return null;
                }
                slots[i] = DEFAULT;
                defaulted = true;
            }
            return fixed(c, slots, where, defaulted, why);
        }
        if (p == n) {
            int[] where = new int[p];
            for (int i = 0; i < p; i++) where[i] = i;
            Application a = fixed(c, args.toArray(), where, false, why);
            if (a != null) return a;
        }
        if (p < n && c.defaults != null && !repeated) {
            Object[] slots = new Object[n];
            boolean all = true;
            for (int i = 0; i < n; i++) {
                if (i < p) slots[i] = args.get(i);
                else if (c.defaults[i] != null) slots[i] = DEFAULT;
                else all = false;
            }
            if (all) {
                int[] where = new int[p];
                for (int i = 0; i < p; i++) where[i] = i;
                Application a = fixed(c, slots, where, true, why);
                if (a != null) return a;
            }
        }
        if (repeated && p >= n - 1) return variable(c, args, why);
        return null;
    }

    /** Fixed arity: every slot against its parameter type. */
    private Application fixed(Candidate c, Object[] slots, int[] where, boolean defaulted, Arguments.Why why) {
        Class<?>[] pt = c.exe.getParameterTypes();
        Type[] gt = c.exe.getGenericParameterTypes();
        Class<?>[] types = new Class<?>[where.length];
        int[] tiers = new int[where.length];
        int worst = Arguments.STRICT;
        for (int j = 0; j < where.length; j++) {
            int i = where[j];
            int r = values.arguments.tier(slots[i], pt[i], gt[i], Values.stype(c.scala, i), why);
            if (r < 0) return null;
            types[j] = pt[i];
            tiers[j] = r;
            worst = Math.max(worst, r);
        }
        int phase = defaulted ? FIXED_DEFAULTS : 1 + worst;
        return new Application(c, phase, slots, false, types, tiers);
    }

    /** Variable arity: the last parameter takes the trailing arguments, each against its element type. */
    private Application variable(Candidate c, List<Object> args, Arguments.Why why) {
        Class<?>[] pt = c.exe.getParameterTypes();
        Type[] gt = c.exe.getGenericParameterTypes();
        int n = pt.length, p = args.size();
        Class<?>[] types = new Class<?>[p];
        int[] tiers = new int[p];
        for (int i = 0; i < n - 1; i++) {
            int r = values.arguments.tier(args.get(i), pt[i], gt[i], Values.stype(c.scala, i), why);
            if (r < 0) return null;
            types[i] = pt[i];
            tiers[i] = r;
        }
        Class<?> et;
        Type eg;
        ScalaSig.SType est = null;
        if (c.exe.isVarArgs()) {
            et = pt[n - 1].getComponentType();
            Type g = gt[n - 1];
            eg = g instanceof java.lang.reflect.GenericArrayType
                    ? ((java.lang.reflect.GenericArrayType) g).getGenericComponentType() : et;
        } else {
            ScalaSig.SType rep = Values.stype(c.scala, n - 1);
            est = rep == null ? null : rep.arg(0);
            Class<?> box = est == null ? null : est.primitiveBox();
            et = box != null ? box : Object.class;
            eg = et;
        }
        for (int i = n - 1; i < p; i++) {
            int r = values.arguments.tier(args.get(i), et, eg, est, why);
            if (r < 0) return null;
            types[i] = et;
            tiers[i] = r;
        }
        Object[] slots = new Object[n];
        for (int i = 0; i < n - 1; i++) slots[i] = args.get(i);
        slots[n - 1] = new ArrayList<Object>(args.subList(n - 1, p));
        return new Application(c, VARIABLE, slots, true, types, tiers);
    }

    // ------------------------------------------------------------------ most specific

    /** Whether {@code a} is at least as specific as {@code b} for every supplied argument. */
    private static boolean atLeast(Application a, Application b, List<Object> args, Map<String, Object> kwargs) {
        List<Object> given = new ArrayList<Object>(args);
        given.addAll(kwargs.values());
        for (int j = 0; j < a.types.length && j < b.types.length; j++) {
            if (a.tiers[j] < b.tiers[j]) continue;
            if (a.tiers[j] > b.tiers[j]) return false;
            if (!specific(a.types[j], b.types[j], j < given.size() ? given.get(j) : null)) return false;
        }
        return true;
    }

    private static final Class<?>[] WIDENING = {byte.class, short.class, int.class, long.class, float.class,
        double.class};

    /** S is at least as specific as T for the JSON value v (JLS 15.12.2.5, 4.10). */
    static boolean specific(Class<?> s, Class<?> t, Object v) {
        if (s == t || t == Object.class) return true;
        if (s == Object.class) return false;
        if (s.isArray() && t.isArray()) return specific(s.getComponentType(), t.getComponentType(), 0L);
        if (s.isPrimitive() && t.isPrimitive()) {
            if (s == char.class) return t == int.class || t == long.class || t == float.class || t == double.class;
            return rank(s) >= 0 && rank(t) >= 0 && rank(s) <= rank(t);
        }
        // A JSON number or boolean is a standalone expression of primitive type: primitive first.
        if (s.isPrimitive()) return v instanceof Number || v instanceof Boolean;
        if (t.isPrimitive()) return !(v instanceof Number || v instanceof Boolean);
        return t.isAssignableFrom(s);
    }

    private static int rank(Class<?> p) {
        for (int i = 0; i < WIDENING.length; i++) if (WIDENING[i] == p) return i;
        return -1;
    }

    private static boolean sameParameters(Executable a, Executable b) {
        return java.util.Arrays.equals(a.getParameterTypes(), b.getParameterTypes());
    }

    // ------------------------------------------------------------------ conversion

    private Object[] convert(Application a) throws Exception {
        Executable m = a.c.exe;
        Class<?>[] pt = m.getParameterTypes();
        Type[] gt = m.getGenericParameterTypes();
        int n = pt.length;
        Object[] out = new Object[n];
        for (int i = 0; i < n; i++) {
            Object v = a.slots[i];
            if (v == DEFAULT) {
                out[i] = DEFAULT;
            } else if (a.variable && i == n - 1 && m.isVarArgs()) {
                List<?> rest = (List<?>) v;
                Class<?> ct = pt[i].getComponentType();
                Type g = gt[i];
                Type cg = g instanceof java.lang.reflect.GenericArrayType
                        ? ((java.lang.reflect.GenericArrayType) g).getGenericComponentType() : ct;
                Object arr = Array.newInstance(ct, rest.size());
                for (int k = 0; k < rest.size(); k++) {
                    Array.set(arr, k, values.arguments.convert(rest.get(k), ct, cg, null));
                }
                out[i] = arr;
            } else {
                out[i] = values.arguments.convert(v, pt[i], gt[i], Values.stype(a.c.scala, i));
            }
        }
        return out;
    }
}
