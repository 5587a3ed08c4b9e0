package cncf.host;

import cncf.launch.Isolation;
import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URL;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.ZipException;

/**
 * One component in the host: its isolated class loader, its executor, its facade
 * (a Collaborator, or the adapter over a plain class) and its live instance.
 *
 * <p>Facade resolution order: the {@code entry} the hub sends (from the manifest or
 * the CLI); the first non-comment line of {@code META-INF/cncf/collaborator}; the
 * single Collaborator implementation found by scanning the jar's class headers.
 */
final class Component {
    static final String COLLABORATOR = "cncf.collaborator.Collaborator";
    static final String COLLABORATOR_FILE = "META-INF/cncf/collaborator";

    final Host host;
    final String name;
    final File jar;
    final List<File> paths = new ArrayList<File>();
    final String requestedEntry;
    /** The constructor arguments ({@code init}): positional, named. */
    final List<Object> initArgs = new ArrayList<Object>();
    final Map<String, Object> initKwargs = new LinkedHashMap<String, Object>();
    final Capture.Sink spill = new Capture.Sink(null);
    private final ThreadPoolExecutor executor;

    volatile Isolation loader;
    volatile Facade facade;
    volatile String entrySource = "";
    volatile boolean unloaded;
    /** Why the component's executor counts as frozen (null: it is live); see {@link #checkLive}. */
    volatile String frozen;
    /** When the pending liveness probe was queued (System.nanoTime; 0: none pending), and at which beat. */
    private volatile long probeSince;
    private long probeBeat;
    private final Runnable probe = new Runnable() {
        public void run() { probeSince = 0L; }
    };
    /** The Linux tasks (/proc/PID/task/TID) of the executor's live threads, and the processes they started. */
    private final java.util.Set<String> tasks = Collections.synchronizedSet(new java.util.HashSet<String>());
    private final Map<Long, Long> children = new java.util.concurrent.ConcurrentHashMap<Long, Long>();

    /** What the host needs from a facade: operations, instance creation, invocation. */
    interface Facade {
        List<Object> operations();

        /** Create the live instance; {@code args}/{@code kwargs} are the manifest's {@code init}. */
        void instantiate(List<Object> args, Map<String, Object> kwargs) throws Throwable;

        /** Returns the result already converted to a JSON-shaped value. */
        Object invoke(Call call) throws Throwable;

        Object target();
    }

    /** A failure to report as-is (the record is ready). */
    static final class Refusal extends Exception {
        final Map<String, Object> record;

        Refusal(Map<String, Object> record) {
            super(String.valueOf(record.get("message")), null, false, false);
            this.record = record;
        }

        static Refusal of(String code, String message, Map<String, Object> attributes) {
            return new Refusal(Failures.record(code, message, null, attributes));
        }
    }

    @SuppressWarnings("unchecked")
    Component(Host host, String name, Map<String, Object> body) {
        this.host = host;
        this.name = name;
        this.jar = new File(Host.string(body.get("artifact")));
        Object p = body.get("paths");
        if (p instanceof List) {
            for (Object o : (List<Object>) p) paths.add(new File(String.valueOf(o)));
        }
        Object init = body.get("init");
        if (init instanceof List) initArgs.addAll((List<Object>) init);
        else if (init instanceof Map) initKwargs.putAll((Map<String, Object>) init);
        Object e = body.get("entry");
        this.requestedEntry = e == null || e.toString().trim().length() == 0 ? null : e.toString().trim();
        // Thread names carry a number, not the instance's name: a neighbour listing the
        // JVM's threads learns nothing about which components share the host.
        final String label = "cncf-component-" + host.componentSeq.incrementAndGet() + "-";
        final AtomicInteger n = new AtomicInteger();
        executor = new ThreadPoolExecutor(1, Integer.MAX_VALUE, 30L, TimeUnit.SECONDS,
                new SynchronousQueue<Runnable>(), new ThreadFactory() {
                    public Thread newThread(final Runnable r) {
                        Thread t = new Thread(new Runnable() {
                            public void run() { runTracked(r); }
                        }, label + n.incrementAndGet());
                        t.setDaemon(true);
                        return t;
                    }
                });
    }

    /** The component's name for messages (the hub's instance id without its "#n"). */
    String label() {
        int i = name.lastIndexOf('#');
        return i > 0 ? name.substring(0, i) : name;
    }

    void submit(final Runnable task) {
        executor.execute(new Runnable() {
            public void run() {
                Thread.currentThread().setContextClassLoader(loader);
                try {
                    task.run();
                } finally {
                    Capture.CURRENT.remove();
                    Thread.currentThread().setContextClassLoader(null);
                }
            }
        });
    }

    /**
     * An executor thread's whole life: its Linux task is known while it lives, so
     * the processes it starts (a child's parent is the thread that forked it) are
     * the component's, and end with it ({@link #unload}).
     */
    private void runTracked(Runnable r) {
        String task = Children.self();
        if (task != null) tasks.add(task);
        try {
            r.run();
        } finally {
            Children.record(task, children);
            if (task != null) tasks.remove(task);
        }
    }

    /** The refusals its loader recorded since the last report, as EVENTs (before the reply they explain). */
    void reportRefusals() {
        Isolation l = loader;
        if (l == null) return;
        for (String n : l.takeFresh()) {
            Map<String, Object> ev = new LinkedHashMap<String, Object>();
            ev.put("instance", name);
            ev.put("class", n);
            ev.put("parent", l.parentName());
            host.event("visibility_refused", ev);
        }
    }

    // ------------------------------------------------------------------ liveness

    /**
     * Called on every heartbeat (never on a component's thread). A component is
     * frozen when its executor no longer runs what it is given: the probe queued on
     * an earlier beat has not run within {@code bound} (and over as many beats, so
     * that a pause of the whole JVM, which stops the heartbeat too, does not count),
     * or one of its calls has not been taken by any thread (the executor never
     * queues), or a thread running one of its calls is suspended (Thread.suspend by
     * a neighbour), deadlocked, or blocked on a lock whose owner is suspended or
     * another component's thread, for as long. Its calls in flight then fail at once, and so does
     * every later one, until the hub reloads it.
     */
    void checkLive(long now, long beat, long bound, long beats, java.lang.management.ThreadMXBean mx,
                   java.util.Set<Long> deadlocked, Map<Long, java.lang.management.ThreadInfo> infos) {
        if (unloaded || frozen != null) return;
        long since = probeSince;
        if (since == 0L) {
            probeSince = now;
            probeBeat = beat;
            try {
                executor.execute(probe);
            } catch (java.util.concurrent.RejectedExecutionException shutDown) {
                probeSince = 0L;
            }
        } else if (now - since > bound && beat - probeBeat >= beats) {
            freeze("a liveness probe given to its executor has not run for " + (now - since) / 1000000L + " ms");
            return;
        }
        for (Call c : host.calls.values()) {
            if (c.component != this) continue;
            Thread t = c.thread();
            // The executor never queues (a thread per call): a call no thread took is a frozen executor.
            String why = t != null ? stuck(t, mx, deadlocked, infos, loader)
                    : c.waiting() ? "has not been taken by any of its executor's threads" : null;
            if (why == null) {
                c.stuckSince = 0L;
            } else if (c.stuckSince == 0L) {
                c.stuckSince = now;
                c.stuckBeat = beat;
            } else if (now - c.stuckSince > bound && beat - c.stuckBeat >= beats) {
                freeze((t == null ? "the call " : "the thread running ") + label() + "." + c.operation + " " + why + " for "
                        + (now - c.stuckSince) / 1000000L + " ms");
                return;
            }
        }
    }

    private static String stuck(Thread t, java.lang.management.ThreadMXBean mx, java.util.Set<Long> deadlocked,
                                Map<Long, java.lang.management.ThreadInfo> infos, ClassLoader own) {
        long tid = t.getId();
        if (deadlocked.contains(tid)) return "is deadlocked";
        java.lang.management.ThreadInfo info = infos.get(tid);
        if (info == null) return null;
        if (info.isSuspended()) return "is suspended";
        long owner = info.getLockOwnerId();
        if (owner != -1L) {
            java.lang.management.ThreadInfo o = mx.getThreadInfo(owner);
            if (o != null && o.isSuspended()) return "waits for a lock held by a suspended thread";
            // A JVM-wide lock (System.out's, a class's monitor) held by code of another
            // component: that neighbour, not this component, decides when it runs again.
            Thread holder = threadById(owner);
            ClassLoader l = holder == null ? null : holder.getContextClassLoader();
            if (l instanceof Isolation && l != own) return "waits for a lock held by another component's thread";
        }
        return null;
    }

    static Thread threadById(long id) {
        ThreadGroup root = Thread.currentThread().getThreadGroup();
        while (root.getParent() != null) root = root.getParent();
        Thread[] all = new Thread[root.activeCount() + 16];
        int n = root.enumerate(all, true);
        for (int i = 0; i < n; i++) {
            if (all[i].getId() == id) return all[i];
        }
        return null;
    }

    /** Fail the calls in flight (worker_crashed, attributes.frozen) and tell the hub, which reloads it. */
    void freeze(String reason) {
        synchronized (this) {
            if (frozen != null || unloaded) return;
            frozen = reason;
        }
        Map<String, Object> ev = new LinkedHashMap<String, Object>();
        ev.put("instance", name);
        ev.put("reason", reason);
        host.event("component_frozen", ev);
        for (Call c : host.calls.values()) {
            if (c.component == this) failFrozen(c);
        }
    }

    /** A call to a frozen component: answered now; its thread, if it ever runs again, answers nothing. */
    void failFrozen(Call c) {
        if (!c.settle()) return;
        host.calls.remove(c.id);
        host.fail(c.id, Failures.record("worker_crashed", label() + "." + c.operation
                + " cannot finish: the component's executor threads are frozen (" + frozen + ")", null,
                attrs("frozen", frozen)));
    }

    int threads() {
        return executor.getActiveCount();
    }

    // ------------------------------------------------------------------ LOAD

    void load(long id) {
        Capture.Sink sink = new Capture.Sink(spill);
        Capture.CURRENT.set(sink);
        try {
            Map<String, Object> reply = resolve();
            sink.close();
            Map<String, Object> body = new LinkedHashMap<String, Object>();
            body.put("id", id);
            body.put("ok", Boolean.TRUE);
            body.putAll(reply);
            String out = sink.takeOut(), err = sink.takeErr();
            if (out.length() > 0) body.put("stdout", out);
            if (err.length() > 0) body.put("stderr", err);
            reportRefusals();
            host.send(Host.LOADED, body);
        } catch (Refusal r) {
            sink.close();
            reportRefusals();
            discard();
            host.reply(Host.LOADED, id, r.record, sink);
        } catch (Throwable t) {
            sink.close();
            reportRefusals();
            discard();
            host.reply(Host.LOADED, id, Failures.classify(t, Failures.LOAD, "loading " + describeEntry()), sink);
        }
    }

    private String describeEntry() {
        return requestedEntry != null ? requestedEntry : jar.getName();
    }

    /** A failed load leaves nothing behind in the host. */
    private void discard() {
        Isolation l = loader;
        host.components.remove(name, this);
        release();
        endChildren(threadsOf(l));
    }

    private Map<String, Object> resolve() throws Throwable {
        if (!jar.exists()) {
            throw Refusal.of("artifact_not_found", "the jar " + jar + " does not exist", attrs("path", jar.getPath()));
        }
        Scan.Result scan;
        try {
            scan = Scan.of(host.scans, jar);
        } catch (ZipException | FileNotFoundException e) {
            throw new Refusal(Failures.record("invalid_archive", jar + " is not a readable jar: " + e.getMessage(),
                    e, attrs("path", jar.getPath())));
        }
        for (File f : paths) {
            if (!f.exists()) {
                throw Refusal.of("artifact_not_found", "the class path entry " + f + " does not exist",
                        attrs("path", f.getPath()));
            }
        }
        URL[] urls = new URL[paths.size() + 2];
        urls[0] = jar.toURI().toURL();
        for (int i = 0; i < paths.size(); i++) urls[i + 1] = paths.get(i).toURI().toURL();
        urls[urls.length - 1] = host.apiJar.toURI().toURL();
        Isolation l = new Isolation(name, urls);
        loader = l;
        Thread.currentThread().setContextClassLoader(l);
        host.track(l);
        Map<String, Object> ev = new LinkedHashMap<String, Object>();
        ev.put("instance", name);
        ev.put("loader", l.toString());
        ev.put("parent", l.parentName());
        List<Object> u = new ArrayList<Object>();
        for (URL x : urls) u.add(x.toString());
        ev.put("urls", u);
        host.event("loader", ev);

        String entry = requestedEntry;
        if (entry != null) {
            entrySource = "entry";
        } else if (scan.collaboratorFile != null) {
            entry = scan.collaboratorFile;
            entrySource = COLLABORATOR_FILE;
        } else {
            List<String> found = scan.collaborators();
            if (found.size() == 1) {
                entry = found.get(0);
                entrySource = "scan";
            } else if (found.isEmpty()) {
                Map<String, Object> a = attrs("candidates", new ArrayList<Object>(scan.publicClasses(20)));
                a.put("path", jar.getPath());
                throw Refusal.of("entry_not_found", jar.getName() + " names no entry and contains no "
                        + COLLABORATOR + " implementation; name the class to call with entry = \"...\" "
                        + "(manifest) or --entry (CLI)", a);
            } else {
                throw Refusal.of("entry_ambiguous", jar.getName() + " contains " + found.size()
                        + " Collaborator implementations; choose one with entry = \"...\" or "
                        + COLLABORATOR_FILE + ": " + found, attrs("candidates", new ArrayList<Object>(found)));
            }
        }
        // "pkg.Class#MEMBER": the component is what a public static field holds (an enum
        // constant: CaseFormat#LOWER_CAMEL) or a public static no-argument method returns
        // (a fluent start: Hashing#sha256); its operations are that object's public methods.
        String member = null;
        int hash = entry.indexOf('#');
        if (hash > 0) {
            member = entry.substring(hash + 1).trim();
            entry = entry.substring(0, hash).trim();
        }
        Class<?> cls = find(entry, scan);
        Class<?> collaborator = l.probe(COLLABORATOR);
        // A Scala `object X extends Collaborator` is class X$ (X holds static forwarders).
        if (collaborator != null && !collaborator.isAssignableFrom(cls) && !cls.getName().endsWith("$")) {
            Class<?> module = l.probe(cls.getName() + "$");
            if (module != null && collaborator.isAssignableFrom(module)) cls = module;
        }
        // Run static initialisers now: their failure is a load failure.
        cls = Class.forName(cls.getName(), true, l);
        Values values = new Values(l);
        Facade f;
        if (member != null) {
            Object target = member(cls, member);
            f = new Adapter(target.getClass(), values, target);
        } else if (collaborator != null && collaborator.isAssignableFrom(cls)) {
            f = new CollaboratorFacade(cls, l, values);
        } else {
            f = new Adapter(cls, values, !initArgs.isEmpty() || !initKwargs.isEmpty());
        }
        List<Object> ops = f.operations();
        if (ops.isEmpty() && !(f instanceof CollaboratorFacade)) {
            throw Refusal.of("entry_not_found", cls.getName() + " has no public methods to call",
                    attrs("entry", entry));
        }
        facade = f;
        Map<String, Object> reply = new LinkedHashMap<String, Object>();
        reply.put("operations", ops);
        reply.put("entry", member == null ? cls.getName() : cls.getName() + "#" + member);
        reply.put("entry_source", entrySource);
        reply.put("facade", f instanceof CollaboratorFacade ? "collaborator" : "adapter");
        reply.put("scala", values.scala());
        return reply;
    }

    /** The object a static field holds or a static no-argument method returns (entry "Class#member"). */
    private static Object member(Class<?> cls, String member) throws Throwable {
        Object value = null;
        boolean found = false;
        try {
            java.lang.reflect.Field f = cls.getField(member);
            if (Modifier.isStatic(f.getModifiers())) {
                value = f.get(null);
                found = true;
            }
        } catch (NoSuchFieldException notAField) {
            // a method, then
        }
        if (!found) {
            try {
                java.lang.reflect.Method m = cls.getMethod(member);
                if (Modifier.isStatic(m.getModifiers())) {
                    m.setAccessible(true);
                    value = m.invoke(null);
                    found = true;
                }
            } catch (NoSuchMethodException notAMethod) {
                // neither
            }
        }
        if (!found) {
            List<Object> names = new ArrayList<Object>();
            for (java.lang.reflect.Field f : cls.getFields()) {
                if (Modifier.isStatic(f.getModifiers())) names.add(f.getName());
            }
            for (java.lang.reflect.Method m : cls.getMethods()) {
                if (Modifier.isStatic(m.getModifiers()) && m.getParameterTypes().length == 0) names.add(m.getName() + "()");
            }
            Map<String, Object> a = attrs("entry", cls.getName() + "#" + member);
            a.put("candidates", names);
            throw Refusal.of("entry_not_found", cls.getName() + " has no public static field or no-argument static "
                    + "method " + member + " (entry = \"Class#member\")", a);
        }
        if (value == null) {
            throw Refusal.of("entry_not_found", cls.getName() + "#" + member + " is null: nothing to call",
                    attrs("entry", cls.getName() + "#" + member));
        }
        return value;
    }

    private Class<?> find(String entry, Scan.Result scan) throws Throwable {
        String n = entry.replace('/', '.');
        if (n.endsWith(".class")) n = n.substring(0, n.length() - 6);
        Throwable first = null;
        for (String candidate : new String[] {n, n + "$"}) {
            try {
                return Class.forName(candidate, false, loader);
            } catch (ClassNotFoundException e) {
                if (first == null) first = e;
            } catch (NoClassDefFoundError e) {
                // The entry exists but a class it extends or implements is missing.
                if (scan.contains(candidate)) throw e;
                if (first == null) first = e;
            }
        }
        if (scan.contains(n) || scan.contains(n + "$")) {
            // The jar lists the class, yet its loader cannot define it: signature files left
            // over from a signed dependency, or a corrupt entry.
            throw new Refusal(Failures.record("invalid_archive", jar.getName() + " contains " + n
                    + " but it cannot be loaded from it (stale META-INF/*.SF signature files of a signed "
                    + "dependency, or a corrupt entry?)", first, attrs("entry", entry)));
        }
        Map<String, Object> a = attrs("entry", entry);
        a.put("candidates", new ArrayList<Object>(scan.similar(n, 10)));
        a.put("source", entrySource);
        throw new Refusal(Failures.record("entry_not_found", "the entry class " + n + " is not in "
                + jar.getName() + (entrySource.equals("entry") ? "" : " (named by " + entrySource + ")"), first, a));
    }

    // ------------------------------------------------------------------ NEW

    void instantiate(long id) {
        Capture.Sink sink = new Capture.Sink(spill);
        Capture.CURRENT.set(sink);
        try {
            Facade f = facade;
            if (f == null) {
                host.fail(id, Failures.record("internal_error", "instance " + name + " was not loaded", null), sink);
                return;
            }
            try {
                f.instantiate(initArgs, initKwargs);
            } catch (Refusal r) {
                sink.close();
                reportRefusals();
                host.fail(id, r.record, sink);
                return;
            } catch (Throwable t) {
                sink.close();
                reportRefusals();
                host.fail(id, Failures.classify(t, Failures.INSTANTIATE, "creating " + label()), sink);
                return;
            }
            sink.close();
            reportRefusals();
            host.ok(id, null, sink);
        } finally {
            sink.close();
        }
    }

    // ------------------------------------------------------------------ INVOKE

    void invoke(Call call) {
        Capture.Sink sink = new Capture.Sink(spill);
        Capture.CURRENT.set(sink);
        Object value;
        call.start();
        try {
            Facade f = facade;
            if (f == null || unloaded) throw Refusal.of("internal_error", "instance " + name + " is not loaded", null);
            value = f.invoke(call);
        } catch (Throwable t) {
            boolean cancelled = call.cancelled();
            call.finish();
            sink.close();
            if (!call.settle()) return; // answered already (its component was found frozen)
            host.calls.remove(call.id);
            reportRefusals();
            Map<String, Object> record;
            if (t instanceof Refusal) {
                record = ((Refusal) t).record;
            } else if (t instanceof Json.NotJson) {
                record = Failures.record("result_not_serialisable", label() + "." + call.operation
                        + " returned a value that cannot cross as JSON: " + t.getMessage(), null,
                        t instanceof Results.Unfaithful ? ((Results.Unfaithful) t).attributes
                                : new LinkedHashMap<String, Object>());
            } else if (cancelled) {
                Throwable u = Failures.unwrap(t);
                record = Failures.record("cancelled", label() + "." + call.operation
                        + " stopped after Thread.interrupt(): " + u, u, attrs("tier", "cooperative"));
            } else {
                record = Failures.classify(t, Failures.EXECUTE, label() + "." + call.operation);
            }
            host.fail(call.id, record, sink);
            return;
        }
        call.finish();
        sink.close();
        if (!call.settle()) return;
        host.calls.remove(call.id);
        reportRefusals();
        host.ok(call.id, value, sink);
    }

    // ------------------------------------------------------------------ UNLOAD

    void unload(final long id) {
        unloaded = true;
        for (Call c : host.calls.values()) {
            if (c.component == this) c.cancel();
        }
        final Facade f = facade;
        final Object target = f == null ? null : f.target();
        if (target instanceof AutoCloseable) {
            // Give the component a chance to release what it holds, on its own thread.
            Thread t = new Thread(new Runnable() {
                public void run() {
                    final Capture.Sink sink = new Capture.Sink(spill);
                    final Object[] error = new Object[1];
                    try {
                        java.util.concurrent.Future<?> done = executor.submit(new Runnable() {
                            public void run() {
                                Capture.CURRENT.set(sink);
                                Thread.currentThread().setContextClassLoader(loader);
                                try {
                                    ((AutoCloseable) target).close();
                                } catch (Throwable e) {
                                    error[0] = e;
                                } finally {
                                    Capture.CURRENT.remove();
                                    Thread.currentThread().setContextClassLoader(null);
                                }
                            }
                        });
                        done.get(2, TimeUnit.SECONDS);
                    } catch (Throwable ignored) {
                        // a close() that hangs or fails does not stop the unload
                    }
                    sink.close();
                    finishUnload(id, sink);
                }
            }, "cncf-unload");
            t.setDaemon(true);
            t.start();
        } else {
            finishUnload(id, null);
        }
    }

    private void finishUnload(long id, Capture.Sink sink) {
        Isolation l = loader;
        release();
        List<Thread> left = threadsOf(l);
        int ended = endChildren(left);
        Map<String, Object> v = new LinkedHashMap<String, Object>();
        v.put("threads_still_running", left.size());
        v.put("processes_ended", ended);
        host.ok(id, v, sink);
        if (!left.isEmpty()) reap(l);
    }

    /** Live threads running for a loader: its executor's, and those its code started. */
    static List<Thread> threadsOf(ClassLoader l) {
        List<Thread> out = new ArrayList<Thread>();
        if (l == null) return out;
        ThreadGroup root = Thread.currentThread().getThreadGroup();
        while (root.getParent() != null) root = root.getParent();
        Thread[] all = new Thread[root.activeCount() + 16];
        int n = root.enumerate(all, true);
        for (int i = 0; i < n; i++) {
            Thread t = all[i];
            if (t.isAlive() && t.getContextClassLoader() == l && t != Thread.currentThread()) out.add(t);
        }
        return out;
    }

    /**
     * Threads of an unloaded component that outlive the interrupt (a timer it never
     * cancelled, a loop that swallows interrupts) would keep its loader, and all its
     * classes, alive for the life of the host. After a grace period they are stopped
     * with Thread.stop(): unsafe for a live component's invariants, harmless for an
     * unloaded one. (Thread.stop is gone from JDK 20+: there the threads stay, and
     * the diagnostics show the loader as live.)
     */
    private void reap(final Isolation l) {
        Thread reaper = new Thread(new Runnable() {
            public void run() {
                long deadline = System.currentTimeMillis() + 2000;
                List<Thread> left = threadsOf(l);
                while (!left.isEmpty() && System.currentTimeMillis() < deadline) {
                    for (Thread t : left) t.interrupt();
                    try {
                        Thread.sleep(50);
                    } catch (InterruptedException e) {
                        return;
                    }
                    left = threadsOf(l);
                }
                List<Object> names = new ArrayList<Object>();
                for (Thread t : left) {
                    names.add(t.getName());
                    try {
                        Thread.class.getMethod("stop").invoke(t);
                    } catch (Throwable unsupported) {
                        // JDK 20+: UnsupportedOperationException
                    }
                    t.setContextClassLoader(null);
                }
                if (!names.isEmpty()) {
                    Map<String, Object> ev = new LinkedHashMap<String, Object>();
                    ev.put("instance", name);
                    ev.put("threads", names);
                    host.event("threads_stopped", ev);
                }
            }
        }, "cncf-reaper");
        reaper.setDaemon(true);
        reaper.start();
    }

    /**
     * The processes the component's threads started, with their descendants, are
     * killed (SIGKILL); a neighbour's live on. Returns how many were ended.
     */
    private int endChildren(List<Thread> own) {
        // Live threads first, then what exited threads recorded: a thread records its
        // children before it leaves the live set, so none falls between the two.
        String[] live;
        synchronized (tasks) {
            live = tasks.toArray(new String[0]);
        }
        Map<Long, Long> roots = new LinkedHashMap<Long, Long>();
        for (String t : live) Children.record(t, roots);
        Children.recordThreads(own, roots); // threads the component started itself
        roots.putAll(children);
        children.clear();
        int n = Children.end(roots);
        if (n > 0) {
            Map<String, Object> ev = new LinkedHashMap<String, Object>();
            ev.put("instance", name);
            ev.put("processes", n);
            host.event("processes_ended", ev);
        }
        return n;
    }

    private void release() {
        executor.shutdownNow();
        Isolation l = loader;
        facade = null;
        loader = null;
        if (l != null) {
            try {
                l.close();
            } catch (IOException ignored) {
                // the jar stays open until the loader is collected
            }
        }
    }

    Map<String, Object> describe() {
        Map<String, Object> m = new LinkedHashMap<String, Object>();
        m.put("instance", name);
        Isolation l = loader;
        m.put("parent", l == null ? null : l.parentName());
        m.put("entry_source", entrySource);
        m.put("refused", l == null ? Collections.emptyList() : l.refusedNames());
        m.put("refused_count", l == null ? 0 : l.refusedCount());
        m.put("threads", executor.getPoolSize());
        return m;
    }

    static Map<String, Object> attrs(String k, Object v) {
        Map<String, Object> m = new LinkedHashMap<String, Object>();
        m.put(k, v);
        return m;
    }

    /** The live object of a class: a Scala object's MODULE$, else the no-arg constructor. */
    static Object construct(Class<?> cls) throws Throwable {
        return construct(cls, null, Collections.<Object>emptyList(), Collections.<String, Object>emptyMap());
    }

    /**
     * The live object of a class. With {@code init} arguments, the public constructor
     * javac would choose for them ({@link Overloads}); without, a Scala object's
     * MODULE$, the no-argument constructor, or a Scala constructor whose parameters
     * all have defaults.
     */
    static Object construct(Class<?> cls, Values values, List<Object> args, Map<String, Object> kwargs)
            throws Throwable {
        boolean init = !args.isEmpty() || !kwargs.isEmpty();
        Object module = module(cls);
        if (module != null) {
            if (init) {
                throw Refusal.of("constructor_failed", cls.getName() + " is a Scala object: it takes no init arguments",
                        attrs("entry", cls.getName()));
            }
            return module;
        }
        if (Modifier.isAbstract(cls.getModifiers()) || cls.isInterface()) {
            throw Refusal.of("constructor_failed", cls.getName() + " is abstract", attrs("entry", cls.getName()));
        }
        if (init && values != null) {
            List<Overloads.Candidate> cands = new ArrayList<Overloads.Candidate>();
            for (Constructor<?> c : cls.getConstructors()) {
                // a Scala class compiled without -parameters: the names from its Scala signature
                cands.add(new Overloads.Candidate(c, null, values.scalaConstructor(c)));
            }
            if (cands.isEmpty()) {
                throw Refusal.of("constructor_failed", cls.getName() + " has no public constructor for init",
                        attrs("entry", cls.getName()));
            }
            Overloads o = new Overloads(values, new Overloads.Signatures() {
                public String of(Overloads.Candidate c) {
                    return c.exe.toGenericString().replace("java.lang.", "").replace("java.util.", "");
                }
            });
            Overloads.Choice choice;
            try {
                choice = o.choose("new " + cls.getSimpleName(), cands, args, kwargs);
            } catch (Refusal r) {
                // The init arguments are the manifest's: a mismatch fails the instance's creation.
                Map<String, Object> a = new LinkedHashMap<String, Object>();
                Object at = r.record.get("attributes");
                if (at instanceof Map) for (Map.Entry<?, ?> e : ((Map<?, ?>) at).entrySet()) a.put(String.valueOf(e.getKey()), e.getValue());
                a.put("refusal", r.record.get("code"));
                throw Refusal.of("constructor_failed", "init: " + r.record.get("message"), a);
            }
            try {
                return ((Constructor<?>) choice.candidate.exe).newInstance(choice.args);
            } catch (java.lang.reflect.InvocationTargetException e) {
                throw e.getCause();
            }
        }
        try {
            return cls.getConstructor().newInstance();
        } catch (NoSuchMethodException e) {
            // maybe a Scala class whose constructor parameters all have defaults
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw e.getCause();
        }
        for (Constructor<?> c : cls.getConstructors()) {
            Object[] defaults = scalaConstructorDefaults(cls, c.getParameterTypes().length);
            if (defaults != null) return c.newInstance(defaults);
        }
        throw Refusal.of("constructor_failed", cls.getName() + " has no public no-argument constructor"
                + " (nor one whose parameters all have Scala defaults); give its arguments with init",
                attrs("entry", cls.getName()));
    }

    /**
     * {@code class Counter(start: Int = 10)} has no no-argument constructor, but the
     * Scala compiler generates {@code $lessinit$greater$default$1} (on the companion
     * object, with a static forwarder on the class) for each default: all of them
     * present means the class can be created without arguments.
     */
    static Object[] scalaConstructorDefaults(Class<?> cls, int n) {
        Object[] out = new Object[n];
        for (int i = 0; i < n; i++) {
            Object[] one = scalaConstructorDefault(cls, i);
            if (one == null) return null;
            out[i] = one[0];
        }
        return out;
    }

    /** The default of constructor parameter i as a one-element array, or null when it has none. */
    static Object[] scalaConstructorDefault(Class<?> cls, int i) {
        String getter = "$lessinit$greater$default$" + (i + 1);
        try {
            Method m = cls.getMethod(getter);
            if (Modifier.isStatic(m.getModifiers())) return new Object[] {m.invoke(null)};
        } catch (Exception ignored) {
            // try the companion object
        }
        ClassLoader l = cls.getClassLoader();
        Class<?> companionClass = l instanceof Isolation ? ((Isolation) l).probe(cls.getName() + "$") : null;
        Object companion = companionClass == null ? null : module(companionClass);
        if (companion == null) return null;
        try {
            return new Object[] {companion.getClass().getMethod(getter).invoke(companion)};
        } catch (Exception e) {
            return null;
        }
    }

    static Object module(Class<?> cls) {
        try {
            Field f = cls.getField("MODULE$");
            if (Modifier.isStatic(f.getModifiers()) && f.getType() == cls) return f.get(null);
        } catch (Exception ignored) {
            // not a Scala object
        }
        return null;
    }
}
