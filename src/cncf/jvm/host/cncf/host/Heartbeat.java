package cncf.host;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The host's heartbeat: an EVENT every {@code CNCF_HEARTBEAT_MS} (default 500)
 * from a thread of its own — never the main loop, never a thread running an
 * operation — so the hub can tell a live host from a frozen one.
 *
 * A beat says whether the main loop is making progress. The main loop only
 * reads and dispatches frames, so it is "stalled" when it has been busy with
 * one frame, or has left a frame unread on the requests pipe, for longer than
 * {@code CNCF_HEARTBEAT_STALL_MS} (default 5000): a component that suspended
 * or blocked the host's main thread, or holds a lock it needs. The hub then
 * ends the host with the reason (worker_crashed) and restarts its components;
 * a host whose beats stop altogether (the whole JVM stopped) is ended the same
 * way by the hub's own clock. Beats travel on the replies pipe, so a blocked
 * writer stops them too.
 *
 * Each beat also checks every component's executor (Host.checkLiveness,
 * Component.checkLive): a probe task queued on the executor must run within
 * {@code CNCF_FROZEN_MS} (default 5000), and no thread running a call may stay
 * suspended, deadlocked, or blocked on a suspended thread's lock that long. A
 * component whose executor is frozen (a neighbour in the same JVM called
 * Thread.suspend on its threads) has its calls answered with worker_crashed at
 * once and is reported as an EVENT "component_frozen"; the hub reloads it. The
 * host and its other components go on.
 */
final class Heartbeat implements Runnable {
    static long envMillis(String name, long dflt) {
        try {
            String v = System.getenv(name);
            return v == null ? dflt : Math.max(10L, Long.parseLong(v.trim()));
        } catch (NumberFormatException e) {
            return dflt;
        }
    }

    private final Host host;

    private Heartbeat(Host host) {
        this.host = host;
    }

    static void start(Host host) {
        Thread t = new Thread(new Heartbeat(host), "cncf-heartbeat");
        t.setDaemon(true);
        t.setPriority(Thread.MAX_PRIORITY);
        t.start();
    }

    public void run() {
        long every = envMillis("CNCF_HEARTBEAT_MS", 500L);
        long stall = envMillis("CNCF_HEARTBEAT_STALL_MS", 5000L) * 1000000L;
        long frozen = envMillis("CNCF_FROZEN_MS", 5000L) * 1000000L;
        long seq = 0;
        long waitingSince = 0L, waitingProgress = 0L;
        while (true) {
            try {
                Thread.sleep(every);
            } catch (InterruptedException e) {
                return;
            }
            long now = System.nanoTime();
            long busy = host.busySince;
            String stalled = null;
            if (busy != 0L && now - busy > stall) {
                stalled = "the host's main thread has been handling one frame for "
                        + (now - busy) / 1000000L + " ms";
            } else if (busy == 0L && pending() > 0) {
                long p = host.progress;
                if (waitingSince == 0L || p != waitingProgress) {
                    waitingSince = now; // a request is waiting: see whether the main loop takes it
                    waitingProgress = p;
                } else if (now - waitingSince > stall) {
                    stalled = "the host's main thread has left a request unread for "
                            + (now - waitingSince) / 1000000L + " ms";
                }
            } else {
                waitingSince = 0L;
            }
            Map<String, Object> beat = new LinkedHashMap<String, Object>();
            beat.put("seq", ++seq);
            if (stalled != null) {
                beat.put("stalled", stalled + " (" + mainState() + ")");
            }
            host.event("heartbeat", beat);
            try {
                host.checkLiveness(now, seq, frozen, Math.max(2L, frozen / (every * 1000000L)));
            } catch (Throwable t) {
                log("liveness check failed: " + t);
            }
        }
    }

    int pending() {
        try {
            java.io.InputStream in = host.requestStream;
            return in == null ? 0 : in.available();
        } catch (java.io.IOException e) {
            return 0;
        }
    }

    private static void log(String text) {
        if (Host.log != null) Host.log.println("cncf-host: " + text);
    }

    static String mainState() {
        for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
            if ("main".equals(e.getKey().getName())) {
                StackTraceElement[] st = e.getValue();
                return "main is " + e.getKey().getState() + (st.length > 0 ? " at " + st[0] : "");
            }
        }
        return "main thread not found";
    }
}
