package cncf.host;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UnsupportedEncodingException;

/**
 * System.out / System.err for components: each write goes to the {@link Sink} of
 * the call running on the writing thread (inherited by threads the call starts),
 * so output is attributed to its call and component and shipped in the RESULT.
 * Writes from threads with no sink (the host's own) go to the real fd 1 / fd 2.
 * A sink whose call has ended forwards to its component's spill sink, drained into
 * the component's next reply.
 */
final class Capture extends OutputStream {
    /** Bytes kept per call and stream (CNCF_MAX_OUTPUT, as the hub's bound): half head, half tail. */
    static final int LIMIT = limit();

    static int limit() {
        try {
            String v = System.getenv("CNCF_MAX_OUTPUT");
            if (v != null) {
                long n = Long.parseLong(v.trim());
                if (n > 0) return (int) Math.min(n, 32L * 1024 * 1024);
            }
        } catch (NumberFormatException ignored) {
            // the default
        }
        return 1024 * 1024;
    }

    /** One stream of one call: the head and a ring of the tail, and how much was dropped. */
    static final class Bounded {
        private final ByteArrayOutputStream head = new ByteArrayOutputStream();
        private static final int HALF = Math.max(LIMIT / 2, 1);
        private byte[] ring; // allocated only when the head is full
        private int ringLen, ringPos;
        private long dropped;

        synchronized void write(byte[] b, int off, int len) {
            int room = HALF - head.size();
            if (room > 0 && ringLen == 0) {
                int n = Math.min(room, len);
                head.write(b, off, n);
                off += n;
                len -= n;
            }
            if (len > 0 && ring == null) ring = new byte[HALF];
            for (int i = 0; i < len; i++) {
                if (ringLen == ring.length) dropped++;
                else ringLen++;
                ring[ringPos] = b[off + i];
                ringPos = (ringPos + 1) % ring.length;
            }
        }

        synchronized int size() { return head.size() + ringLen; }

        synchronized String take() {
            StringBuilder sb = new StringBuilder(Host.text(head));
            if (dropped > 0) {
                sb.append("\n[cncf: ").append(dropped).append(" bytes of output dropped here; the first and last ")
                        .append(HALF).append(" bytes are kept (CNCF_MAX_OUTPUT=").append(LIMIT).append(")]\n");
            }
            if (ringLen > 0) {
                byte[] t = new byte[ringLen];
                int start = (ringPos - ringLen + ring.length) % ring.length;
                for (int i = 0; i < ringLen; i++) t[i] = ring[(start + i) % ring.length];
                sb.append(new String(t, Host.UTF8));
            }
            head.reset();
            ringLen = ringPos = 0;
            dropped = 0;
            return sb.toString();
        }
    }

    /** Per-call (or per-component) buffers for stdout and stderr. */
    static final class Sink {
        private final Bounded out = new Bounded();
        private final Bounded err = new Bounded();
        private final Sink spill;
        private volatile boolean closed;

        Sink(Sink spill) { this.spill = spill; }

        void write(boolean isErr, byte[] b, int off, int len) {
            if (closed && spill != null) {
                spill.write(isErr, b, off, len);
                return;
            }
            (isErr ? err : out).write(b, off, len);
        }

        String takeOut() { return take(out, spill == null ? null : spill.out); }

        String takeErr() { return take(err, spill == null ? null : spill.err); }

        private static String take(Bounded mine, Bounded spilled) {
            StringBuilder sb = new StringBuilder();
            if (spilled != null && spilled.size() > 0) sb.append(spilled.take());
            if (mine.size() > 0) sb.append(mine.take());
            return sb.toString();
        }

        /** The call ended: later writes by threads it started go to the component. */
        void close() { closed = true; }
    }

    static final InheritableThreadLocal<Sink> CURRENT = new InheritableThreadLocal<Sink>();

    private final boolean isErr;
    private final OutputStream real;

    private Capture(boolean isErr, OutputStream real) {
        this.isErr = isErr;
        this.real = real;
    }

    static void install() {
        try {
            System.setOut(new PrintStream(new Capture(false, System.out), true, "UTF-8"));
            System.setErr(new PrintStream(new Capture(true, Host.log), true, "UTF-8"));
        } catch (UnsupportedEncodingException impossible) {
            throw new IllegalStateException(impossible);
        }
    }

    @Override
    public void write(int b) {
        write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) {
        Sink s = CURRENT.get();
        if (s != null) {
            s.write(isErr, b, off, len);
        } else {
            synchronized (real) {
                try {
                    real.write(b, off, len);
                } catch (java.io.IOException ignored) {
                    // fd 1/2 is the hub's capture file; nothing better to do
                }
            }
        }
    }

    @Override
    public void flush() {
        if (CURRENT.get() == null) {
            try {
                real.flush();
            } catch (java.io.IOException ignored) {
                // as above
            }
        }
    }
}
