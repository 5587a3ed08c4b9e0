package cncf.launch;

import java.io.File;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;

/**
 * Starts the cncf JVM host in a class loader of its own.
 *
 * The JVM's class path holds only this class, so the system class loader
 * cannot see the host: a component calling
 * {@code ClassLoader.getSystemClassLoader().loadClass("cncf.host.Host")} gets
 * ClassNotFoundException instead of the host's registry and every other
 * component's state. The host's loader has the platform loader as parent
 * (null = bootstrap on Java 8), like the components' own loaders, and is
 * not made any thread's context class loader.
 *
 * Usage: {@code java -cp cncf-launcher.jar cncf.launch.Launcher --host cncf-host.jar HOST-ARGS...}
 */
public final class Launcher {
    private Launcher() {}

    public static void main(String[] args) throws Throwable {
        if (args.length < 2 || !"--host".equals(args[0])) {
            System.err.println("cncf-launcher: usage: --host <cncf-host.jar> [host arguments]");
            System.exit(2);
        }
        File jar = new File(args[1]);
        String[] rest = new String[args.length - 2];
        System.arraycopy(args, 2, rest, 0, rest.length);
        URLClassLoader loader = new URLClassLoader(new URL[] {jar.toURI().toURL()}, platform());
        Class<?> host = Class.forName("cncf.host.Host", true, loader);
        Method main = host.getMethod("main", String[].class);
        try {
            main.invoke(null, (Object) rest);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    static ClassLoader platform() {
        try {
            return (ClassLoader) ClassLoader.class.getMethod("getPlatformClassLoader").invoke(null);
        } catch (Exception java8) {
            return null;
        }
    }
}
