package rogue;

import java.lang.reflect.Array;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.TreeSet;

/**
 * A hostile component of a shared JVM host: it walks everything a component can
 * reach with public APIs and plain reflection (setAccessible works on classpath
 * code on Java 17) looking for the host's registry and its neighbours' instances.
 */
public class Rogue {
    private static final String[] NAMES = {
        "cncf.host.Host", "cncf.host.Component", "cncf.host.Heartbeat", "cncf.host.Capture",
        "cncf.host.Scan", "cncf.host.Diagnostics", "cncf.host.Call", "cncf.launch.Launcher",
        "cncf.launch.Isolation", "demo.Counter",
    };

    private final Set<ClassLoader> loaders = new LinkedHashSet<ClassLoader>();
    private final Set<Class<?>> classes = new LinkedHashSet<Class<?>>();
    private final Map<Object, Boolean> seen = new IdentityHashMap<Object, Boolean>();
    private final ArrayDeque<Object> todo = new ArrayDeque<Object>();
    private final Set<String> reached = new TreeSet<String>();
    private final Set<String> hostClasses = new TreeSet<String>();
    private final Set<String> hostClassesByLoaderWalk = new TreeSet<String>();
    private int changed;
    private long value;

    /** Everything a component can reach; every demo.Counter found gets count = value. */
    public static Map<String, Object> attack(long value) {
        Rogue r = new Rogue();
        r.value = value;
        return r.run();
    }

    private Map<String, Object> run() {
        ClassLoader own = Rogue.class.getClassLoader();
        // 1. Class-loader walks: the loader's class's loader, parents, the system loader.
        addLoader(own);
        addLoader(ClassLoader.getSystemClassLoader());
        addLoader(Thread.currentThread().getContextClassLoader());
        for (int i = 0; i < 4; i++) {
            for (ClassLoader l : new ArrayList<ClassLoader>(loaders)) {
                addLoader(l.getClass().getClassLoader());
                addLoader(l.getParent());
            }
        }
        for (ClassLoader l : new ArrayList<ClassLoader>(loaders)) byName(l, hostClassesByLoaderWalk);
        // 2. The stack: every frame's declaring class (the host's frames below ours).
        StackWalker.getInstance(java.util.EnumSet.of(StackWalker.Option.RETAIN_CLASS_REFERENCE,
                StackWalker.Option.SHOW_REFLECT_FRAMES, StackWalker.Option.SHOW_HIDDEN_FRAMES))
                .forEach(f -> addClass(f.getDeclaringClass()));
        // 3. Every thread, its context loader and handler.
        List<Object> threadNames = new ArrayList<Object>();
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            threadNames.add(t.getName());
            push(t);
            addLoader(t.getContextClassLoader());
            push(t.getUncaughtExceptionHandler());
        }
        push(Thread.getDefaultUncaughtExceptionHandler());
        push(System.out);
        push(System.err);
        // 4. Services any loader offers.
        for (ClassLoader l : new ArrayList<ClassLoader>(loaders)) {
            for (Class<?> svc : new Class<?>[] {Runnable.class, Object.class, ClassLoader.class}) {
                try {
                    for (Object o : ServiceLoader.load(svc, l)) push(o);
                } catch (Throwable ignored) {
                    // no such service
                }
            }
        }
        // 5. Names through every loader found, then the object graph (static fields included).
        for (ClassLoader l : new ArrayList<ClassLoader>(loaders)) byName(l, null);
        for (Class<?> c : new ArrayList<Class<?>>(classes)) push(c);
        int visited = 0;
        while (!todo.isEmpty() && visited < 300000) {
            visit(todo.poll());
            visited++;
        }
        Map<String, Object> out = new LinkedHashMap<String, Object>();
        out.put("host_classes_by_loader_walk", new ArrayList<Object>(hostClassesByLoaderWalk));
        out.put("host_classes", new ArrayList<Object>(hostClasses));
        out.put("reached", new ArrayList<Object>(reached));
        out.put("changed", changed);
        out.put("visited", visited);
        out.put("thread_names", threadNames);
        List<Object> ls = new ArrayList<Object>();
        for (ClassLoader l : loaders) ls.add(l.getClass().getName());
        out.put("loaders", ls);
        return out;
    }

    private void byName(ClassLoader l, Set<String> found) {
        for (String n : NAMES) {
            try {
                Class<?> c = Class.forName(n, false, l);
                addClass(c);
                if (found != null && n.startsWith("cncf.host.")) found.add(n);
            } catch (Throwable ignored) {
                // not visible there
            }
        }
    }

    private void addLoader(ClassLoader l) {
        if (l != null && loaders.add(l)) push(l);
    }

    private void addClass(Class<?> c) {
        if (c == null || !classes.add(c)) return;
        if (c.getName().startsWith("cncf.host.")) hostClasses.add(c.getName());
        addLoader(c.getClassLoader());
        push(c);
    }

    private void push(Object o) {
        if (o != null && !seen.containsKey(o)) {
            seen.put(o, Boolean.TRUE);
            todo.add(o);
        }
    }

    private static boolean jdk(String n) {
        return n.startsWith("java.") || n.startsWith("javax.") || n.startsWith("jdk.") || n.startsWith("sun.")
                || n.startsWith("com.sun.");
    }

    private void visit(Object o) {
        if (o instanceof Class) {
            Class<?> c = (Class<?>) o;
            addClass(c);
            for (Class<?> k = c; k != null; k = k.getSuperclass()) {
                if (jdk(k.getName())) break;
                for (Field f : k.getDeclaredFields()) {
                    if (Modifier.isStatic(f.getModifiers())) take(f, null);
                }
            }
            return;
        }
        Class<?> c = o.getClass();
        String n = c.getName();
        if (n.startsWith("cncf.host.") || n.equals("demo.Counter")) reached.add(n);
        if (n.equals("demo.Counter")) {
            try {
                Field f = c.getDeclaredField("count");
                f.setAccessible(true);
                f.setLong(o, value);
                changed++;
            } catch (Throwable ignored) {
                // not that counter
            }
        }
        if (c.isArray()) {
            if (!c.getComponentType().isPrimitive()) {
                for (int i = 0, len = Array.getLength(o); i < len; i++) push(Array.get(o, i));
            }
            return;
        }
        addClass(c);
        try {
            if (o instanceof Map) {
                for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                    push(e.getKey());
                    push(e.getValue());
                }
            } else if (o instanceof Collection) {
                for (Object x : (Collection<?>) o) push(x);
            } else if (o instanceof java.lang.ref.Reference) {
                push(((java.lang.ref.Reference<?>) o).get());
            } else if (o instanceof Thread) {
                addLoader(((Thread) o).getContextClassLoader());
            } else if (o instanceof ClassLoader) {
                addLoader(((ClassLoader) o).getParent());
                byName((ClassLoader) o, null);
            } else if (o instanceof java.util.concurrent.atomic.AtomicReference) {
                push(((java.util.concurrent.atomic.AtomicReference<?>) o).get());
            }
        } catch (Throwable ignored) {
            // a concurrent modification, a refusing collection
        }
        for (Class<?> k = c; k != null; k = k.getSuperclass()) {
            for (Field f : k.getDeclaredFields()) {
                if (!Modifier.isStatic(f.getModifiers())) take(f, o);
            }
        }
    }

    private void take(Field f, Object o) {
        if (f.getType().isPrimitive()) return;
        try {
            f.setAccessible(true); // refused for the JDK's own classes on Java 16+
            push(f.get(o));
        } catch (Throwable ignored) {
            // inaccessible
        }
    }

    /**
     * For {@code ms} milliseconds, suspend every thread that runs another
     * component's code (its context class loader is a component loader that is
     * not ours): its calls never finish.
     */
    @SuppressWarnings("deprecation")
    public static int suspendOthers(long ms) throws InterruptedException {
        ClassLoader own = Rogue.class.getClassLoader();
        Set<Thread> done = new LinkedHashSet<Thread>();
        long end = System.currentTimeMillis() + ms;
        while (System.currentTimeMillis() < end) {
            for (Thread t : Thread.getAllStackTraces().keySet()) {
                ClassLoader l = t.getContextClassLoader();
                if (t == Thread.currentThread() || l == null || l == own || done.contains(t)) continue;
                if (!l.getClass().getName().endsWith("Isolation")) continue;
                t.suspend();
                done.add(t);
            }
            Thread.sleep(5);
        }
        return done.size();
    }

    /**
     * Suspend every executor thread of the host that is not ours, idle ones
     * included (found by the host's thread names): the next call handed to one
     * never starts.
     */
    @SuppressWarnings("deprecation")
    public static int suspendIdle() {
        String me = Thread.currentThread().getName();
        String mine = me.substring(0, me.lastIndexOf('-') + 1);
        int n = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            String name = t.getName();
            if (name.startsWith("cncf-component-") && !name.startsWith(mine)) {
                t.suspend();
                n++;
            }
        }
        return n;
    }

    /** Hold System.out's lock for {@code ms} milliseconds: every component that prints waits. */
    public static String holdOut(long ms) throws InterruptedException {
        synchronized (System.out) {
            Thread.sleep(ms);
        }
        return "released";
    }

    /**
     * The same from a thread of the component's own, which stays alive (a helper
     * thread, as a library's process pool would keep); returns the child's pid.
     */
    public static long spawnFromThread(final int seconds) throws Exception {
        final long[] pid = {0L};
        final java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(1);
        Thread t = new Thread(() -> {
            try {
                pid[0] = spawn(seconds);
            } catch (Exception e) {
                pid[0] = -1L;
            }
            started.countDown();
            try {
                Thread.sleep(Long.MAX_VALUE);
            } catch (InterruptedException unloaded) {
                // the host interrupts what an unloaded component left running
            }
        }, "spawner-" + Long.toHexString(System.nanoTime()));
        t.setDaemon(true);
        t.start();
        started.await();
        return pid[0];
    }

    /** Start {@code sh -c 'sleep N & sleep N'}: a child and a grandchild; returns the child's pid. */
    public static long spawn(int seconds) throws Exception {
        Process p = new ProcessBuilder("sh", "-c", "sleep " + seconds + " & exec sleep " + seconds).start();
        return p.pid();
    }
}
