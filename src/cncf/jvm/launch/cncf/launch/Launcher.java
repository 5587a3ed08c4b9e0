package cncf.launch;

import java.io.File;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;

/**
 * Starts the cncf JVM host in a class loader of its own.
 *
 * The JVM's class path holds only the launcher jar (this class and
 * {@link Isolation}, the components' loader class), so the system class
 * loader cannot see the host: a component calling
 * {@code ClassLoader.getSystemClassLoader().loadClass("cncf.host.Host")}, or
 * walking {@code getClass().getClassLoader()} from its own loader, gets the
 * launcher's classes, which hold no reference to the host. The host's loader
 * (a plain {@code URLClassLoader} whose parent is the system loader, so that
 * the host links to {@link Isolation}) is held only by this frame and is not
 * made any thread's context class loader. The host itself keeps no state in
 * static fields (see {@code cncf.host.Host}), so a component that obtains a
 * host class anyway (a {@code StackWalker} over its own thread) finds nothing
 * to follow.
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
        URLClassLoader loader = new URLClassLoader(new URL[] {jar.toURI().toURL()}, Launcher.class.getClassLoader());
        Class<?> host = Class.forName("cncf.host.Host", true, loader);
        Method main = host.getMethod("main", String[].class);
        try {
            main.invoke(null, (Object) rest);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }
}
