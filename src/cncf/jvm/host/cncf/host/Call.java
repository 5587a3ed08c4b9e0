package cncf.host;

import java.util.Collections;
import java.util.List;
import java.util.Map;

/** One INVOKE in flight: its arguments and the thread running it (for CANCEL). */
final class Call {
    final long id;
    final Component component;
    final String operation;
    final String callId;
    final List<Object> args;
    final Map<String, Object> kwargs;
    private Thread thread;
    private boolean cancelled;
    private boolean finished;
    private boolean settled;
    private boolean started;
    /** Since when (nanoTime, and at which beat) the liveness check has seen it stuck; 0: not stuck. Heartbeat only. */
    long stuckSince, stuckBeat;

    @SuppressWarnings("unchecked")
    Call(long id, Component component, Map<String, Object> body) {
        this.id = id;
        this.component = component;
        this.operation = Host.string(body.get("operation"));
        this.callId = Host.string(body.get("call"));
        Object a = body.get("args");
        Object k = body.get("kwargs");
        this.args = a instanceof List ? (List<Object>) a : Collections.emptyList();
        this.kwargs = k instanceof Map ? (Map<String, Object>) k : Collections.<String, Object>emptyMap();
    }

    /** Called on the thread that runs the call, before component code. */
    synchronized void start() {
        thread = Thread.currentThread();
        started = true;
        if (cancelled) thread.interrupt();
    }

    /** After the call: no interrupt may reach the pooled thread any more. */
    synchronized void finish() {
        finished = true;
        thread = null;
        Thread.interrupted(); // clear a late interrupt for the next call on this thread
    }

    /** The thread running it (null before it starts and after it ends). */
    synchronized Thread thread() {
        return thread;
    }

    /** Given to the executor, and no thread has taken it yet. */
    synchronized boolean waiting() {
        return !started && !finished;
    }

    /** Claims the call's one reply: true once, for whoever answers it first. */
    synchronized boolean settle() {
        if (settled) return false;
        settled = true;
        return true;
    }

    synchronized void cancel() {
        if (finished) return;
        cancelled = true;
        if (thread != null) thread.interrupt();
    }

    synchronized boolean cancelled() {
        return cancelled;
    }
}
