package cncf.host;

import cncf.launch.Isolation;
import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Drives a Collaborator through its own (per-loader) copy of the API classes. */
final class CollaboratorFacade implements Component.Facade {
    private final Class<?> cls;
    private final Values values;
    private final Constructor<?> newCall;
    private final Method call, isSuccess, value, code, message, attributes;
    private final List<Object> operations = new ArrayList<Object>();
    private volatile Object target;

    CollaboratorFacade(Class<?> cls, Isolation l, Values values) throws Exception {
        this.cls = cls;
        this.values = values;
        Class<?> api = l.probe(Component.COLLABORATOR);
        Class<?> ac = l.probe("cncf.collaborator.ActionCall");
        Class<?> result = l.probe("cncf.collaborator.Result");
        newCall = ac.getConstructor(String.class, String.class, List.class, Map.class);
        call = api.getMethod("call", ac);
        isSuccess = result.getMethod("isSuccess");
        value = result.getMethod("value");
        code = result.getMethod("code");
        message = result.getMethod("message");
        attributes = result.getMethod("attributes");
        Class<?> ann = l.probe("cncf.collaborator.Operations");
        Set<Object> names = new LinkedHashSet<Object>();
        if (ann != null) collectOperations(cls, ann, names, new java.util.HashSet<Class<?>>());
        for (Object n : names) {
            Map<String, Object> op = new LinkedHashMap<String, Object>();
            op.put("name", n);
            op.put("params", null);
            op.put("doc", "");
            operations.add(op);
        }
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static void collectOperations(Class<?> c, Class<?> ann, Set<Object> names, Set<Class<?>> seen)
            throws Exception {
        if (c == null || !seen.add(c)) return;
        Object a = c.getDeclaredAnnotation((Class) ann);
        if (a != null) names.addAll(java.util.Arrays.asList((Object[]) ann.getMethod("value").invoke(a)));
        collectOperations(c.getSuperclass(), ann, names, seen);
        for (Class<?> i : c.getInterfaces()) collectOperations(i, ann, names, seen);
    }

    public List<Object> operations() { return operations; }

    public Object target() { return target; }

    public void instantiate(List<Object> args, Map<String, Object> kwargs) throws Throwable {
        target = Component.construct(cls, values, args, kwargs);
    }

    public Object invoke(Call c) throws Throwable {
        Object t = target;
        if (t == null) throw Component.Refusal.of("internal_error", "the instance was not created (NEW)", null);
        Object ac = newCall.newInstance(c.callId, c.operation, new ArrayList<Object>(c.args),
                new LinkedHashMap<String, Object>(c.kwargs));
        Object r = call.invoke(t, ac);
        if (r == null) return null;
        if ((Boolean) isSuccess.invoke(r)) return values.toJson(value.invoke(r));
        String own = String.valueOf(code.invoke(r));
        Map<String, Object> attrs = new LinkedHashMap<String, Object>();
        Object a = values.toJson(attributes.invoke(r));
        if (a instanceof Map) {
            for (Map.Entry<?, ?> e : ((Map<?, ?>) a).entrySet()) attrs.put(String.valueOf(e.getKey()), e.getValue());
        }
        attrs.put("component_code", own);
        throw Component.Refusal.of("operation_failed", String.valueOf(message.invoke(r)), attrs);
    }
}
