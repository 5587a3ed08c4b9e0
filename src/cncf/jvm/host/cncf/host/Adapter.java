package cncf.host;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Parameter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The facade over a class that is not a Collaborator: its public static methods,
 * and its public instance methods on one persistent instance (created by the
 * public no-argument constructor, or a Scala object's MODULE$), become
 * operations named after the methods. Overloads share one operation; a call picks
 * the overload javac would pick for the JSON arguments ({@link Overloads}); when
 * none fits, the call fails with invalid_arguments listing the signatures, when
 * several fit equally well with ambiguous_operation.
 */
final class Adapter implements Component.Facade {
    private final Class<?> cls;
    private final Values values;
    private final Map<String, List<Method>> ops = new TreeMap<String, List<Method>>();
    /** Per method, the getters of its Scala default arguments (null entries: none). */
    private final Map<Method, Method[]> defaults = new java.util.HashMap<Method, Method[]>();
    /** Per method, its Scala declaration (parameter names and Scala types), when known. */
    private final Map<Method, ScalaSig.SMethod> scalaDecls = new java.util.HashMap<Method, ScalaSig.SMethod>();
    private final boolean instantiable;
    private final Overloads overloads;
    private volatile Object target;
    private final Object given; // the object of a "Class#member" entry, or null

    /** Over one given object (entry "Class#member"): its public methods, on it. */
    Adapter(Class<?> cls, Values values, Object target) {
        this(cls, values, false, target);
    }

    Adapter(Class<?> cls, Values values, boolean init) {
        this(cls, values, init, null);
    }

    private Adapter(Class<?> cls, Values values, boolean init, Object given) {
        this.given = given;
        this.target = given;
        this.cls = cls;
        this.values = values;
        this.overloads = new Overloads(values, new Overloads.Signatures() {
            public String of(Overloads.Candidate c) {
                return signature((Method) c.exe);
            }
        });
        boolean inst = given != null || Component.module(cls) != null;
        if (!inst && init && !cls.isInterface() && !Modifier.isAbstract(cls.getModifiers())) {
            inst = cls.getConstructors().length > 0; // init names a constructor's arguments
        }
        if (!inst && !cls.isInterface() && !Modifier.isAbstract(cls.getModifiers())) {
            try {
                cls.getConstructor();
                inst = true;
            } catch (NoSuchMethodException e) {
                for (java.lang.reflect.Constructor<?> c : cls.getConstructors()) {
                    if (Component.scalaConstructorDefaults(cls, c.getParameterTypes().length) != null) inst = true;
                }
            }
        }
        instantiable = inst;
        Method[] all = cls.getMethods();
        Arrays.sort(all, new Comparator<Method>() {
            public int compare(Method a, Method b) {
                int c = a.getName().compareTo(b.getName());
                if (c != 0) return c;
                c = a.getParameterTypes().length - b.getParameterTypes().length;
                return c != 0 ? c : javaSignature(a).compareTo(javaSignature(b));
            }
        });
        for (Method m : all) {
            String owner = m.getDeclaringClass().getName();
            boolean isStatic = Modifier.isStatic(m.getModifiers());
            if (m.isSynthetic() || m.isBridge() || m.getName().indexOf('$') >= 0) continue;
            if (!isStatic && (!instantiable || owner.startsWith("java.") || owner.startsWith("scala."))) continue;
            try {
                m.setAccessible(true); // public methods inherited from a non-public class
            } catch (RuntimeException ignored) {
                // stays inaccessible; invocation reports it
            }
            defaults.put(m, scalaDefaults(m));
            ScalaSig.SMethod sm = values.scalaMethod(m);
            if (sm != null) scalaDecls.put(m, sm);
            List<Method> list = ops.get(m.getName());
            if (list == null) ops.put(m.getName(), list = new ArrayList<Method>());
            list.add(m);
        }
    }

    /** Scala compiles {@code def f(a: Int, b: Int = 2)} with a getter {@code f$default$2}. */
    private Method[] scalaDefaults(Method m) {
        int n = m.getParameterTypes().length;
        Method[] out = null;
        for (int i = 0; i < n; i++) {
            try {
                Method d = cls.getMethod(m.getName() + "$default$" + (i + 1));
                if (Modifier.isStatic(d.getModifiers()) == Modifier.isStatic(m.getModifiers())) {
                    if (out == null) out = new Method[n];
                    d.setAccessible(true);
                    out[i] = d;
                }
            } catch (NoSuchMethodException | SecurityException ignored) {
                // no default for this parameter
            }
        }
        return out;
    }

    public List<Object> operations() {
        List<Object> out = new ArrayList<Object>();
        Schemas schemas = new Schemas(values);
        for (Map.Entry<String, List<Method>> e : ops.entrySet()) {
            Map<String, Object> op = new LinkedHashMap<String, Object>();
            op.put("name", e.getKey());
            List<Method> ms = e.getValue();
            if (ms.size() == 1) {
                op.put("params", params(ms.get(0), schemas));
            } else {
                op.put("params", null);
                // each overload's parameters: a call fits one of them (the hub checks that before it runs)
                List<Object> each = new ArrayList<Object>();
                for (Method m : ms) each.add(params(m, schemas));
                op.put("overloads", each);
                op.put("signatures", signatures(ms));
            }
            op.put("doc", signatures(ms).toString());
            out.add(op);
        }
        return out;
    }

    /** A method's parameters as the wire describes them: name, kind, required, and the JSON Schema of its values. */
    private List<Object> params(Method m, Schemas schemas) {
        List<Object> params = new ArrayList<Object>();
        Parameter[] ps = m.getParameters();
        java.lang.reflect.Type[] gs = m.getGenericParameterTypes();
        ScalaSig.SMethod sm = scalaDecls.get(m);
        String[] names = Values.parameterNames(m, sm);
        for (int i = 0; i < ps.length; i++) {
            Map<String, Object> p = new LinkedHashMap<String, Object>();
            p.put("name", names != null ? names[i] : "arg" + i);
            boolean javaVarargs = m.isVarArgs() && i == ps.length - 1;
            boolean repeated = (javaVarargs || Values.scalaRepeated(sm, ps.length)) && i == ps.length - 1;
            p.put("kind", repeated ? "varargs" : names != null ? "any" : "positional");
            Method[] defs = defaults.get(m);
            p.put("required", defs == null || defs[i] == null);
            ScalaSig.SType st = Values.stype(sm, i);
            Class<?> t = ps[i].getType();
            java.lang.reflect.Type g = i < gs.length ? gs[i] : t;
            if (javaVarargs) {
                p.put("schema", schemas.varargs(t));
            } else if (!repeated) {
                p.put("schema", schemas.of(t, g, st));
            } else {
                p.put("schema", new LinkedHashMap<String, Object>()); // a Scala repeated parameter: any value
            }
            params.add(p);
        }
        return params;
    }

    public Object target() { return target; }

    public void instantiate(List<Object> args, Map<String, Object> kwargs) throws Throwable {
        if (given != null) {
            if (!args.isEmpty() || !kwargs.isEmpty()) {
                throw Component.Refusal.of("invalid_manifest", "init has nothing to construct: the entry "
                        + "names an object (Class#member)", null);
            }
            target = given;
            return;
        }
        boolean needed = !args.isEmpty() || !kwargs.isEmpty();
        for (List<Method> ms : ops.values()) {
            for (Method m : ms) if (!Modifier.isStatic(m.getModifiers())) needed = true;
        }
        if (needed) target = Component.construct(cls, values, args, kwargs);
    }

    public Object invoke(Call call) throws Throwable {
        List<Method> ms = ops.get(call.operation);
        if (ms == null) {
            throw Component.Refusal.of("unknown_operation", cls.getName() + " has no public method "
                    + call.operation, Component.attrs("candidates", new ArrayList<Object>(ops.keySet())));
        }
        List<Overloads.Candidate> cands = new ArrayList<Overloads.Candidate>();
        for (Method m : ms) cands.add(new Overloads.Candidate(m, defaults.get(m), scalaDecls.get(m)));
        Overloads.Choice choice = overloads.choose(cls.getSimpleName() + "." + call.operation, cands, call.args,
                call.kwargs);
        Method best = (Method) choice.candidate.exe;
        Object self = null;
        if (!Modifier.isStatic(best.getModifiers())) {
            self = target;
            if (self == null) throw Component.Refusal.of("internal_error", "the instance was not created (NEW)", null);
        }
        Object[] args = choice.args;
        Method[] defs = defaults.get(best);
        for (int i = 0; i < args.length; i++) {
            if (args[i] == Overloads.DEFAULT) {
                args[i] = defs[i].invoke(Modifier.isStatic(defs[i].getModifiers()) ? null : self);
            }
        }
        Object r;
        try {
            r = best.invoke(self, args);
        } catch (IllegalArgumentException e) {
            throw Component.Refusal.of("invalid_arguments", "the arguments do not fit " + signature(best)
                    + ": " + e.getMessage(), Component.attrs("signatures", signatures(ms)));
        }
        if (best.getReturnType() == void.class) return null;
        // A fluent method (ObjectMapper.enable(...)) returns its receiver: the effect is the
        // state change, and the receiver stays in the component. It answers null.
        if (self != null && r == self) return null;
        return values.toJson(r);
    }

    List<Object> signatures(List<Method> ms) {
        List<Object> out = new ArrayList<Object>();
        for (Method m : ms) out.add(signature(m));
        return Collections.unmodifiableList(out);
    }

    /** A Scala method as Scala declares it ({@code greet(name: String, times: Int)}), else Java's form. */
    String signature(Method m) {
        ScalaSig.SMethod sm = scalaDecls.get(m);
        if (sm == null) return javaSignature(m);
        StringBuilder sb = new StringBuilder();
        if (Modifier.isStatic(m.getModifiers())) sb.append("static ");
        sb.append(m.getName()).append('(');
        Method[] defs = defaults.get(m);
        for (int i = 0; i < sm.names.size(); i++) {
            if (i > 0) sb.append(", ");
            ScalaSig.SType t = sm.types.get(i);
            sb.append(sm.names.get(i)).append(": ").append(t == null ? "?" : scalaName(t));
            if (defs != null && defs[i] != null) sb.append(" = ...");
        }
        sb.append(')');
        String r = m.getGenericReturnType().getTypeName().replace("java.lang.", "").replace("java.util.", "");
        return sb.append(": ").append(r).toString();
    }

    private static String scalaName(ScalaSig.SType t) {
        String n = t.name == null ? "?" : t.name.substring(t.name.lastIndexOf('.') + 1);
        if (n.equals("<repeated>") && t.arg(0) != null) return scalaName(t.arg(0)) + "*";
        if (t.args == null || t.args.length == 0) return n;
        StringBuilder sb = new StringBuilder(n).append('[');
        for (int i = 0; i < t.args.length; i++) {
            if (i > 0) sb.append(", ");
            sb.append(t.args[i] == null ? "?" : scalaName(t.args[i]));
        }
        return sb.append(']').toString();
    }

    static String javaSignature(Method m) {
        StringBuilder sb = new StringBuilder();
        if (Modifier.isStatic(m.getModifiers())) sb.append("static ");
        sb.append(m.getName()).append('(');
        java.lang.reflect.Type[] ts = m.getGenericParameterTypes();
        Parameter[] ps = m.getParameters();
        for (int i = 0; i < ts.length; i++) {
            if (i > 0) sb.append(", ");
            String t = ts[i].getTypeName().replace("java.lang.", "").replace("java.util.", "");
            if (m.isVarArgs() && i == ts.length - 1 && t.endsWith("[]")) t = t.substring(0, t.length() - 2) + "...";
            sb.append(t);
            if (ps[i].isNamePresent()) sb.append(' ').append(ps[i].getName());
        }
        sb.append(')');
        String r = m.getGenericReturnType().getTypeName().replace("java.lang.", "").replace("java.util.", "");
        return sb.append(": ").append(r).toString();
    }
}
