package cncf.host;

import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The component's class loader: its jar (and extra paths) plus its own copy of
 * the collaborator API, with the platform class loader as parent on Java 9+
 * (null = bootstrap on Java 8), so that only the JDK and the API are visible,
 * never the host's classes or its class path. Every refused class name is
 * recorded and reported as an EVENT (evidence of the visibility rules).
 */
final class Isolation extends URLClassLoader {
    static final ClassLoader PLATFORM = platform();
    private static final ThreadLocal<Boolean> QUIET = new ThreadLocal<Boolean>();

    static {
        ClassLoader.registerAsParallelCapable();
    }

    private final String instance;
    private final Set<String> refused = new LinkedHashSet<String>();
    private int refusedCount;

    Isolation(String instance, URL[] urls) {
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

    String parentName() {
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
    Class<?> probe(String name) {
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
        boolean report;
        synchronized (refused) {
            refusedCount++;
            report = refused.size() < 200 && refused.add(name);
        }
        if (report) {
            Map<String, Object> ev = new LinkedHashMap<String, Object>();
            ev.put("instance", instance);
            ev.put("class", name);
            ev.put("parent", parentName());
            Host.event("visibility_refused", ev);
        }
    }

    List<Object> refusedNames() {
        synchronized (refused) {
            return new ArrayList<Object>(refused);
        }
    }

    int refusedCount() {
        synchronized (refused) {
            return refusedCount;
        }
    }

    @Override
    public String toString() {
        return "cncf-isolation[" + instance + "]@" + Integer.toHexString(System.identityHashCode(this));
    }
}
