package cncf.launch;

import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The component's class loader: its jar (and extra paths) plus its own copy of
 * the collaborator API, with the platform class loader as parent on Java 9+
 * (null = bootstrap on Java 8), so that only the JDK and the API are visible,
 * never the host's classes or its class path.
 *
 * <p>This class lives in the launcher jar, on the JVM's class path, not in the
 * host's jar: a component that walks {@code getClass().getClassLoader()} from
 * its own loader reaches the system class loader, which holds only the launcher
 * ({@code cncf.launch.*}) and cannot name {@code cncf.host.*}. It holds no
 * reference to the host either: refused class names are kept here (bounded) and
 * the host collects them ({@link #takeFresh()}) to report them as EVENTs.
 */
public final class Isolation extends URLClassLoader {
    private static final ClassLoader PLATFORM = platform();
    private static final ThreadLocal<Boolean> QUIET = new ThreadLocal<Boolean>();
    private static final int KEPT = 200;

    static {
        ClassLoader.registerAsParallelCapable();
    }

    private final String instance;
    private final Set<String> refused = new LinkedHashSet<String>();
    private final List<String> fresh = new ArrayList<String>();
    private int refusedCount;

    public Isolation(String instance, URL[] urls) {
        super(urls, PLATFORM);
        this.instance = instance;
    }

    static ClassLoader platform() {
        try {
            return (ClassLoader) ClassLoader.class.getMethod("getPlatformClassLoader").invoke(null);
        } catch (Exception java8) {
            return null;
        }
    }

    public String parentName() {
        return PLATFORM == null ? "bootstrap" : "platform";
    }

    @Override
    protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
        try {
            return super.loadClass(name, resolve);
        } catch (ClassNotFoundException e) {
            if (QUIET.get() == null) refuse(name);
            throw e;
        }
    }

    /** Load a class if this component can see it, without recording a refusal. */
    public Class<?> probe(String name) {
        QUIET.set(Boolean.TRUE);
        try {
            return Class.forName(name, false, this);
        } catch (ClassNotFoundException | LinkageError e) {
            return null;
        } finally {
            QUIET.remove();
        }
    }

    private void refuse(String name) {
        synchronized (refused) {
            refusedCount++;
            if (refused.size() < KEPT && refused.add(name)) fresh.add(name);
        }
    }

    /** Names refused since the last call (each name once per loader, at most 200 in all). */
    public List<String> takeFresh() {
        synchronized (refused) {
            if (fresh.isEmpty()) return new ArrayList<String>(0);
            List<String> out = new ArrayList<String>(fresh);
            fresh.clear();
            return out;
        }
    }

    public List<Object> refusedNames() {
        synchronized (refused) {
            return new ArrayList<Object>(refused);
        }
    }

    public int refusedCount() {
        synchronized (refused) {
            return refusedCount;
        }
    }

    @Override
    public String toString() {
        return "cncf-isolation[" + instance + "]@" + Integer.toHexString(System.identityHashCode(this));
    }
}
