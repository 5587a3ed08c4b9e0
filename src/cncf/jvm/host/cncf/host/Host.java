package cncf.host;

/*
 * The cncf JVM host: one process hosting many components, each in its own
 * isolated class loader, driven by the hub over the cncf wire protocol
 * (docs/wire-protocol.md).
 *
 * Design. The protocol's three descriptors (requests, replies, control) are
 * named by environment variables and opened through /proc/self/fd (or
 * /dev/fd); fd 0/1/2 never carry frames, so nothing a component prints can
 * corrupt them. System.out/System.err are replaced by streams that attribute
 * each write to the call running on the writing thread (an inheritable thread
 * local), and the text travels back in that call's RESULT.
 *
 * The main thread only reads and dispatches frames; component code never runs
 * on it. Each component gets its own executor (threads whose context class
 * loader is the component's loader), so a component stuck in an endless loop
 * holds its own threads and nobody else's. CANCEL arrives on a separate pipe,
 * read by a separate thread, and becomes Thread.interrupt() of the call's
 * thread: cooperative, as Java's cancellation is. When that is not enough the
 * hub kills the whole host and restarts its components; this host deliberately
 * installs no SecurityManager trap for System.exit (deprecated, and a trap a
 * component can work around), so System.exit ends the host the same way.
 *
 * Alternatives considered: one JVM per component (available as the
 * "process" isolation; costs a JVM start and ~30 MB per component); Thread.stop
 * for forced cancellation (removed from recent JDKs and unsafe for the
 * component's invariants anyway).
 */

import cncf.launch.Isolation;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.ref.WeakReference;
import java.nio.charset.Charset;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

public final class Host {
    // Frame kinds: the same table as cncf/wire/frames.py.
    static final int HELLO = 1, LOAD = 2, LOADED = 3, NEW = 4, INVOKE = 5, CANCEL = 6,
            UNLOAD = 7, RESULT = 8, PING = 9, SHUTDOWN = 10, EVENT = 11;
    static final int MAX_BODY = 64 * 1024 * 1024;
    static final int PROTOCOL = 1;
    static final Charset UTF8 = Charset.forName("UTF-8");

    /** The host's own stderr (fd 2, the hub's capture file): host diagnostics only. */
    static PrintStream log;

    /*
     * Everything else is instance state, reachable only from the main thread's
     * frame and the host's own threads: no static field of a host class leads
     * to a component, a call or the replies pipe. A component can obtain host
     * classes (a StackWalker over its own thread shows the host's frames below
     * its own), and setAccessible works on them (the host is classpath code in
     * an unnamed module), so static state would be a registry open to every
     * component; instance state is not reachable from a Class.
     */
    final OutputStream replies;
    final File apiJar;

    final Map<String, Component> components = new ConcurrentHashMap<String, Component>();
    /** Running (or queued) calls by request id, for CANCEL. */
    final Map<Long, Call> calls = new ConcurrentHashMap<Long, Call>();
    /**
     * CANCELs that overtook their INVOKE (the control pipe is read on its own
     * thread, so a cancel sent right after an INVOKE can be read first); the
     * INVOKE applies it when it arrives.  Bounded: ids are never reused.
     */
    final Map<Long, Boolean> earlyCancels = new ConcurrentHashMap<Long, Boolean>();
    /** Every isolated loader ever created, weakly: how many are still alive. */
    final List<WeakReference<ClassLoader>> loaders = new ArrayList<WeakReference<ClassLoader>>();
    int loadersCreated;
    /** Jar scans by path, size and time (a reload of the same jar does not read it again). */
    final Map<String, Scan.Result> scans = Scan.cache();
    /** Numbers the components' executors (thread names carry no instance name). */
    final java.util.concurrent.atomic.AtomicInteger componentSeq = new java.util.concurrent.atomic.AtomicInteger();

    Host(File apiJar, OutputStream replies) {
        this.apiJar = apiJar;
        this.replies = replies;
    }

    public static void main(String[] args) throws Exception {
        log = System.err;
        File apiJar = null;
        boolean warmup = false;
        for (int i = 0; i < args.length; i++) {
            if ("--api".equals(args[i]) && i + 1 < args.length) apiJar = new File(args[++i]);
            else if ("--warmup".equals(args[i])) warmup = true;
        }
        if (apiJar == null || !apiJar.isFile()) {
            log.println("cncf-host: --api <cncf-collaborator-api.jar> is required");
            System.exit(2);
        }
        if (warmup) {
            new Host(apiJar, new ByteArrayOutputStream()).warmup();
            return;
        }
        InputStream requests = open(env("CNCF_FD_REQUESTS"), false);
        Host host = new Host(apiJar, openOut(env("CNCF_FD_REPLIES")));
        InputStream control = open(env("CNCF_FD_CONTROL"), true);
        host.serve(requests, control);
    }

    void serve(InputStream requests, final InputStream control) throws Exception {

        // Jar URL connections must not be cached: a cached JarFile would keep an
        // unloaded component's jar open (and its loader reachable through it).
        try {
            new File(".").toURI().toURL().openConnection().setDefaultUseCaches(false);
        } catch (IOException ignored) {
            // only a file: URL; cannot fail in practice
        }
        Capture.install();

        Map<String, Object> hello = new LinkedHashMap<String, Object>();
        hello.put("protocol", PROTOCOL);
        hello.put("runtime", "java-" + System.getProperty("java.version"));
        hello.put("pid", pid());
        hello.put("vm", System.getProperty("java.vm.name"));
        hello.put("api", apiJar.getPath());
        send(HELLO, hello);

        if (control != null) {
            Thread t = new Thread(new Runnable() {
                public void run() { readControl(control); }
            }, "cncf-control");
            t.setDaemon(true);
            t.start();
        }
        requestStream = requests;
        Heartbeat.start(this);
        DataInputStream in = new DataInputStream(requests);
        byte[] header = new byte[5];
        while (true) {
            int kind;
            Map<String, Object> body;
            try {
                progress = System.nanoTime();
                busySince = 0L;
                in.readFully(header);
                busySince = System.nanoTime();
                int length = ((header[0] & 0xff) << 24) | ((header[1] & 0xff) << 16)
                        | ((header[2] & 0xff) << 8) | (header[3] & 0xff);
                kind = header[4] & 0xff;
                if (length < 0 || length > MAX_BODY) {
                    // Too large to hold: skip it and refuse that one request (never exit for it).
                    long id = skipFrame(in, length & 0xffffffffL);
                    refuse(kind, id, "the request is " + (length & 0xffffffffL)
                            + " bytes, over the host's " + MAX_BODY + "-byte frame limit");
                    continue;
                }
                byte[] data = new byte[length];
                in.readFully(data);
                body = object(Json.parse(new String(data, UTF8)));
            } catch (EOFException eof) {
                halt(0); // the hub closed the pipe: it is gone or wants us gone
                return;
            } catch (Json.TooDeep deep) {
                long id = deep.partial instanceof Map ? number(((Map<?, ?>) deep.partial).get("id")) : 0L;
                refuse(header[4] & 0xff, id, "the arguments nest deeper than " + Json.MAX_DEPTH
                        + " levels, the host's bound");
                continue;
            } catch (Json.NotJson bad) {
                log.println("cncf-host: protocol error: " + bad.getMessage());
                halt(3);
                return;
            }
            try {
                dispatch(kind, body);
            } catch (Throwable t) {
                long id = number(body.get("id"));
                fail(id, Failures.record("internal_error", "host failed to dispatch a frame: " + t, t));
            }
        }
    }

    /** When the main loop last finished a read or a dispatch, and since when it is busy (0: reading). */
    volatile long progress, busySince;
    volatile InputStream requestStream;

    /** A request the host refuses without reading it into memory: a failure for its id. */
    void refuse(int kind, long id, String why) {
        Map<String, Object> f = Failures.record("arguments_too_large", why, null);
        reply(kind == LOAD ? LOADED : RESULT, id, f);
    }

    /** Read and drop a frame body; returns the request id found near its end ("id" is written last). */
    static long skipFrame(DataInputStream in, long length) throws IOException {
        byte[] buf = new byte[64 * 1024];
        byte[] tail = new byte[256];
        int tailLen = 0;
        long left = length;
        while (left > 0) {
            int n = in.read(buf, 0, (int) Math.min(buf.length, left));
            if (n < 0) throw new EOFException();
            left -= n;
            if (n >= tail.length) {
                System.arraycopy(buf, n - tail.length, tail, 0, tail.length);
                tailLen = tail.length;
            } else {
                int keep = Math.min(tailLen, tail.length - n);
                System.arraycopy(tail, tailLen - keep, tail, 0, keep);
                System.arraycopy(buf, 0, tail, keep, n);
                tailLen = keep + n;
            }
        }
        String t = new String(tail, 0, tailLen, UTF8);
        int at = t.lastIndexOf("\"id\":");
        if (at < 0) return 0L;
        int i = at + 5, j = i;
        while (j < t.length() && Character.isDigit(t.charAt(j))) j++;
        try {
            return j > i ? Long.parseLong(t.substring(i, j)) : 0L;
        } catch (NumberFormatException e) {
            return 0L;
        }
    }

    /**
     * Exercise the startup path once without a hub, so that the build can record
     * the classes it loads in a class-data-sharing archive (faster host starts).
     */
    void warmup() throws Exception {
        Map<String, Object> body = object(Json.parse(
                "{\"id\":1,\"instance\":\"warmup\",\"args\":[1,2.5,\"x\",[true,null],{\"k\":\"v\"}],\"kwargs\":{}}"));
        Json.write(body);
        Failures.record("raised", "warmup", new IllegalStateException("warmup"));
        final Component c = new Component(this, "warmup", body);
        final Isolation l = new Isolation("warmup", new java.net.URL[] {apiJar.toURI().toURL()});
        c.loader = l;
        final Object[] seen = new Object[1];
        final java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
        c.submit(new Runnable() {
            public void run() {
                Capture.Sink sink = new Capture.Sink(c.spill);
                Capture.CURRENT.set(sink);
                seen[0] = l.probe(Component.COLLABORATOR);
                new Values(l);
                sink.close();
                sink.takeOut();
                done.countDown();
            }
        });
        done.await();
        Call call = new Call(1, c, body);
        call.start();
        call.finish();
        Diagnostics.stats(this, false);
        l.close();
        System.exit(seen[0] != null ? 0 : 1);
    }

    void dispatch(int kind, Map<String, Object> body) throws Exception {
        final long id = number(body.get("id"));
        switch (kind) {
            case LOAD: {
                String name = string(body.get("instance"));
                if (components.containsKey(name)) {
                    reply(LOADED, id, Failures.record("internal_error", "instance " + name + " is already loaded", null));
                    return;
                }
                final Component c = new Component(this, name, body);
                components.put(name, c);
                c.submit(new Runnable() {
                    public void run() { c.load(id); }
                });
                return;
            }
            case NEW: {
                final Component c = component(id, body);
                if (c != null) c.submit(new Runnable() {
                    public void run() { c.instantiate(id); }
                });
                return;
            }
            case INVOKE: {
                final Component c = component(id, body);
                if (c == null) return;
                final Call call = new Call(id, c, body);
                calls.put(id, call);
                if (earlyCancels.remove(id) != null) call.cancel();
                if (c.frozen != null) {
                    c.failFrozen(call);
                    return;
                }
                c.submit(new Runnable() {
                    public void run() { c.invoke(call); }
                });
                return;
            }
            case UNLOAD: {
                String name = string(body.get("instance"));
                Component c = components.remove(name);
                if (c == null) {
                    ok(id, null, null);
                    return;
                }
                c.unload(id);
                return;
            }
            case PING: {
                final boolean gc = Boolean.TRUE.equals(body.get("gc"));
                Thread t = new Thread(new Runnable() {
                    public void run() {
                        try {
                            ok(id, Diagnostics.stats(Host.this, gc), null);
                        } catch (Throwable e) {
                            fail(id, Failures.record("internal_error", "PING failed: " + e, e));
                        }
                    }
                }, "cncf-ping");
                t.setDaemon(true);
                t.start();
                return;
            }
            case SHUTDOWN:
                halt(0);
                return;
            default:
                fail(id, Failures.record("internal_error", "unexpected frame kind " + kind + " for a worker", null));
        }
    }

    /** The heartbeat's liveness check of every component's executor (see Component.checkLive). */
    void checkLiveness(long now, long beat, long bound, long beats) {
        if (components.isEmpty()) return;
        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
        java.util.Set<Long> deadlocked = new java.util.HashSet<Long>();
        Map<Long, java.lang.management.ThreadInfo> infos = new java.util.HashMap<Long, java.lang.management.ThreadInfo>();
        if (!calls.isEmpty()) {
            long[] d = mx.findDeadlockedThreads();
            if (d != null) for (long t : d) deadlocked.add(t);
            // One VM operation for every call's thread, not one per call.
            List<Long> ids = new ArrayList<Long>();
            for (Call c : calls.values()) {
                Thread t = c.thread();
                if (t != null) ids.add(t.getId());
            }
            long[] arr = new long[ids.size()];
            for (int i = 0; i < arr.length; i++) arr[i] = ids.get(i);
            for (java.lang.management.ThreadInfo info : mx.getThreadInfo(arr)) {
                if (info != null) infos.put(info.getThreadId(), info);
            }
        }
        for (Component c : components.values()) c.checkLive(now, beat, bound, beats, mx, deadlocked, infos);
    }

    Component component(long id, Map<String, Object> body) {
        String name = string(body.get("instance"));
        Component c = components.get(name);
        if (c == null) {
            fail(id, Failures.record("internal_error", "no instance " + name + " in this host", null));
        }
        return c;
    }

    void readControl(InputStream control) {
        DataInputStream in = new DataInputStream(control);
        byte[] header = new byte[5];
        try {
            while (true) {
                in.readFully(header);
                int length = ((header[0] & 0xff) << 24) | ((header[1] & 0xff) << 16)
                        | ((header[2] & 0xff) << 8) | (header[3] & 0xff);
                if (length < 0 || length > MAX_BODY) return;
                byte[] data = new byte[length];
                in.readFully(data);
                if ((header[4] & 0xff) != CANCEL) continue;
                Map<String, Object> body = object(Json.parse(new String(data, UTF8)));
                long rid = number(body.get("id"));
                Call call = calls.get(rid);
                if (call == null) {
                    if (earlyCancels.size() > 1024) earlyCancels.clear();
                    earlyCancels.put(rid, Boolean.TRUE);
                    call = calls.get(rid); // its INVOKE may have arrived meanwhile
                    if (call != null && earlyCancels.remove(rid) != null) call.cancel();
                } else {
                    call.cancel();
                }
            }
        } catch (Exception e) {
            // control pipe closed: the hub is going away; the request pipe's EOF ends us
        }
    }

    // ------------------------------------------------------------------ frames out

    void ok(long id, Object value, Capture.Sink output) {
        Map<String, Object> body = new LinkedHashMap<String, Object>();
        body.put("id", id);
        body.put("ok", Boolean.TRUE);
        body.put("value", value);
        output(body, output);
        String text;
        try {
            text = Json.write(body);
        } catch (Json.NotJson e) {
            Map<String, Object> f = Failures.record("result_not_serialisable",
                    "the result cannot cross as JSON: " + e.getMessage(), null);
            fail(id, f, output);
            return;
        }
        write(RESULT, text);
    }

    void fail(long id, Map<String, Object> failure) {
        fail(id, failure, null);
    }

    void fail(long id, Map<String, Object> failure, Capture.Sink output) {
        reply(RESULT, id, failure, output);
    }

    void reply(int kind, long id, Map<String, Object> failure) {
        reply(kind, id, failure, null);
    }

    void reply(int kind, long id, Map<String, Object> failure, Capture.Sink output) {
        Map<String, Object> body = new LinkedHashMap<String, Object>();
        body.put("id", id);
        body.put("ok", Boolean.FALSE);
        body.put("failure", failure);
        output(body, output);
        send(kind, body);
    }

    private static void output(Map<String, Object> body, Capture.Sink output) {
        if (output == null) return;
        String out = output.takeOut();
        String err = output.takeErr();
        if (out.length() > 0) body.put("stdout", out);
        if (err.length() > 0) body.put("stderr", err);
    }

    void event(String event, Map<String, Object> fields) {
        Map<String, Object> body = new LinkedHashMap<String, Object>();
        body.put("event", event);
        body.putAll(fields);
        send(EVENT, body);
    }

    void send(int kind, Map<String, Object> body) {
        String text;
        try {
            text = Json.write(body);
        } catch (Json.NotJson e) {
            // Only failure records reach here (values were checked in ok()):
            // drop what cannot be encoded rather than leave the hub waiting.
            Map<String, Object> safe = new LinkedHashMap<String, Object>();
            safe.put("id", body.get("id"));
            safe.put("ok", Boolean.FALSE);
            safe.put("failure", Failures.record("internal_error", "unencodable reply: " + e.getMessage(), null));
            try {
                text = Json.write(safe);
            } catch (Json.NotJson impossible) {
                return;
            }
        }
        write(kind, text);
    }

    void write(int kind, String text) {
        byte[] data = text.getBytes(UTF8);
        if (data.length > MAX_BODY) {
            // refuse to send: tell the hub instead
            Object id = null;
            try {
                id = object(Json.parse(text)).get("id");
            } catch (Json.NotJson e) {
                // cannot happen: we wrote it
            }
            Map<String, Object> f = Failures.record("result_not_serialisable",
                    "the reply is " + data.length + " bytes, over the 64 MiB frame limit", null);
            reply(kind == LOADED ? LOADED : RESULT, number(id), f);
            return;
        }
        byte[] frame = new byte[5 + data.length];
        frame[0] = (byte) (data.length >>> 24);
        frame[1] = (byte) (data.length >>> 16);
        frame[2] = (byte) (data.length >>> 8);
        frame[3] = (byte) data.length;
        frame[4] = (byte) kind;
        System.arraycopy(data, 0, frame, 5, data.length);
        synchronized (this) {
            try {
                replies.write(frame);
                replies.flush();
            } catch (IOException e) {
                halt(0); // the hub is gone
            }
        }
    }

    // ------------------------------------------------------------------ helpers

    static void halt(int status) {
        try {
            log.flush();
        } finally {
            Runtime.getRuntime().halt(status);
        }
    }

    static String env(String name) {
        String v = System.getenv(name);
        return v == null || v.length() == 0 ? null : v;
    }

    static InputStream open(String fd, boolean optional) throws IOException {
        if (fd == null) {
            if (optional) return null;
            throw new IOException("environment variable naming a protocol descriptor is missing");
        }
        return new FileInputStream(fdPath(fd));
    }

    static OutputStream openOut(String fd) throws IOException {
        if (fd == null) throw new IOException("CNCF_FD_REPLIES is missing");
        return new FileOutputStream(fdPath(fd));
    }

    static File fdPath(String fd) {
        File f = new File("/proc/self/fd/" + fd);
        return f.exists() ? f : new File("/dev/fd/" + fd);
    }

    static long pid() {
        try {
            return Long.parseLong(new File("/proc/self").getCanonicalFile().getName());
        } catch (Exception e) {
            String n = java.lang.management.ManagementFactory.getRuntimeMXBean().getName();
            return Long.parseLong(n.substring(0, n.indexOf('@')));
        }
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> object(Object v) throws Json.NotJson {
        if (!(v instanceof Map)) throw new Json.NotJson("frame body is not a JSON object");
        return (Map<String, Object>) v;
    }

    static long number(Object v) {
        return v instanceof Number ? ((Number) v).longValue() : 0L;
    }

    static String string(Object v) {
        return v == null ? "" : v.toString();
    }

    synchronized void track(ClassLoader loader) {
        loadersCreated++;
        for (Iterator<WeakReference<ClassLoader>> it = loaders.iterator(); it.hasNext(); ) {
            if (it.next().get() == null) it.remove();
        }
        loaders.add(new WeakReference<ClassLoader>(loader));
    }

    synchronized int liveLoaders() {
        int n = 0;
        for (Iterator<WeakReference<ClassLoader>> it = loaders.iterator(); it.hasNext(); ) {
            if (it.next().get() == null) it.remove();
            else n++;
        }
        return n;
    }

    /** Bytes printed by a component, per call; see {@link Capture}. */
    static String text(ByteArrayOutputStream b) {
        return new String(b.toByteArray(), UTF8);
    }
}
