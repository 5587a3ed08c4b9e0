package cncf.host;

import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Type descriptions of the classes that cross as JSON objects: a Java record
 * (canonical constructor, by component name), a Scala case class (its
 * constructor, by field name; missing fields take their Scala defaults), a
 * JavaBean (public no-argument constructor, one public setter per key); and,
 * for results, which getters of an object are its data ({@link #beanProperties}).
 */
final class Shapes {
    static final Object NO_DEFAULT = new Object();
    private static final Object NONE = new Object();

    private final Values values;
    private final Map<Class<?>, Object> cache = new java.util.HashMap<Class<?>, Object>();

    Shapes(Values values) {
        this.values = values;
    }

    /** How to build a {@code t} from a JSON object. */
    final class Shape {
        final Constructor<?> ctor;
        final String[] names;
        final Class<?>[] types;
        final Type[] generics;
        final Method[] setters; // a bean: one per name
        final Object[] defaults; // a case class: per field, or NO_DEFAULT

        Shape(Constructor<?> ctor, String[] names, Class<?>[] types, Type[] generics, Method[] setters,
              Object[] defaults) {
            this.ctor = ctor;
            this.names = names;
            this.types = types;
            this.generics = generics;
            this.setters = setters;
            this.defaults = defaults;
        }

        boolean record() {
            return setters == null;
        }

        /** The worst conversion tier of the object's fields, or -1 when it does not fit. */
        int tier(Map<?, ?> map, Arguments.Why why) {
            for (Object k : map.keySet()) {
                if (indexOf(String.valueOf(k)) < 0) {
                    why.add("a " + ctor.getDeclaringClass().getSimpleName() + " has no field " + k);
                    return -1;
                }
            }
            if (setters == null) {
                for (int i = 0; i < names.length; i++) {
                    if (!map.containsKey(names[i]) && types[i].isPrimitive() && defaults[i] == NO_DEFAULT) {
                        why.add("no value for field " + names[i]);
                        return -1;
                    }
                }
            }
            int worst = Arguments.STRICT;
            for (Map.Entry<?, ?> e : map.entrySet()) {
                int i = indexOf(String.valueOf(e.getKey()));
                int r = values.arguments.tier(e.getValue(), types[i], generics[i], null, why);
                if (r < 0) return -1;
                worst = Math.max(worst, r);
            }
            return worst;
        }

        int indexOf(String name) {
            for (int i = 0; i < names.length; i++) if (names[i].equals(name)) return i;
            return -1;
        }

        Object build(Map<?, ?> map) throws Exception {
            if (tier(map, new Arguments.Why()) < 0) throw Arguments.MISMATCH;
            if (setters != null) {
                Object bean = ctor.newInstance();
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    int i = indexOf(String.valueOf(e.getKey()));
                    setters[i].invoke(bean, values.arguments.convert(e.getValue(), types[i], generics[i], null));
                }
                return bean;
            }
            Object[] args = new Object[names.length];
            for (int i = 0; i < names.length; i++) {
                if (map.containsKey(names[i])) {
                    args[i] = values.arguments.convert(map.get(names[i]), types[i], generics[i], null);
                } else if (defaults[i] != NO_DEFAULT) {
                    args[i] = defaults[i];
                } else {
                    args[i] = null;
                }
            }
            return ctor.newInstance(args);
        }
    }

    Shape of(Class<?> t) {
        synchronized (cache) {
            if (!cache.containsKey(t)) {
                Shape sh = null;
                try {
                    sh = find(t);
                } catch (Exception ignored) {
                    // not buildable from an object
                }
                cache.put(t, sh == null ? NONE : sh);
            }
            Object sh = cache.get(t);
            return sh == NONE ? null : (Shape) sh;
        }
    }

    private Shape find(Class<?> t) throws Exception {
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
                Constructor<?> c = t.getDeclaredConstructor(types);
                c.setAccessible(true);
                return new Shape(c, names, types, generics, null, defaults);
            }
        } catch (NoSuchMethodException java8) {
            // no records before Java 16
        }
        // A Scala case class: constructor parameters are its fields, in order.
        if (values.scalaProduct(t)) {
            List<String> fields = caseFields(t);
            for (Constructor<?> c : t.getConstructors()) {
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
        Constructor<?> c;
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
            if (!n.startsWith("set") || n.length() < 4 || Values.jdk(m.getDeclaringClass())) continue;
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

    /** A case class's constructor fields, in declaration order (those with a public accessor). */
    static List<String> caseFields(Class<?> t) {
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
        return fields;
    }

    /** The Scala default of constructor parameter i, or NO_DEFAULT. */
    private static Object scalaDefault(Class<?> t, int i, Object[] all) {
        if (all != null) return all[i];
        Object[] one = Component.scalaConstructorDefault(t, i);
        return one == null ? NO_DEFAULT : one[0];
    }

    // ------------------------------------------------------------------ beans as results

    /**
     * The bean properties of a class: its public getters ({@code getX}, {@code isX},
     * not declared by a JDK class), by property name. {@code unbacked} receives those
     * that read no field of that name and have no setter: views computed from other
     * state (a Joda {@code LocalDate}'s {@code getYear()} reads no field {@code year}).
     */
    Map<String, Method> beanProperties(Class<?> k, List<String> unbacked) {
        Map<String, Method> out = new TreeMap<String, Method>();
        for (Method m : k.getMethods()) {
            if (Modifier.isStatic(m.getModifiers()) || m.getParameterTypes().length != 0
                    || Values.jdk(m.getDeclaringClass()) || m.getReturnType() == void.class) continue;
            String n = m.getName();
            String prop = null;
            if (n.startsWith("get") && n.length() > 3 && !n.equals("getClass")) prop = n.substring(3);
            else if (n.startsWith("is") && n.length() > 2
                    && (m.getReturnType() == boolean.class || m.getReturnType() == Boolean.class)) prop = n.substring(2);
            if (prop == null) continue;
            prop = Character.toLowerCase(prop.charAt(0)) + prop.substring(1);
            if (!hasField(k, prop) && !hasSetter(k, n.startsWith("is") ? n.substring(2) : n.substring(3), m.getReturnType())) {
                unbacked.add(n + "()");
            }
            out.put(prop, m);
        }
        return out;
    }

    private static boolean hasField(Class<?> k, String name) {
        for (Class<?> c = k; c != null && !Values.jdk(c); c = c.getSuperclass()) {
            try {
                Field f = c.getDeclaredField(name);
                if (!Modifier.isStatic(f.getModifiers())) return true;
            } catch (NoSuchFieldException ignored) {
                // look further up
            }
        }
        return false;
    }

    private static boolean hasSetter(Class<?> k, String suffix, Class<?> type) {
        try {
            k.getMethod("set" + suffix, type);
            return true;
        } catch (NoSuchMethodException e) {
            return false;
        }
    }

    /** The public instance fields of a plain struct (every instance field public), else null. */
    static List<Field> publicFields(Class<?> k) {
        List<Field> out = new ArrayList<Field>();
        for (Class<?> c = k; c != null && !Values.jdk(c); c = c.getSuperclass()) {
            for (Field f : c.getDeclaredFields()) {
                if (Modifier.isStatic(f.getModifiers()) || f.isSynthetic()) continue;
                if (!Modifier.isPublic(f.getModifiers())) return null;
                out.add(f);
            }
        }
        return out;
    }
}
