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
    /** Per-call (or per-component) buffers for stdout and stderr. */
    static final class Sink {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();
        private final ByteArrayOutputStream err = new ByteArrayOutputStream();
        private final Sink spill;
        private volatile boolean closed;

        Sink(Sink spill) { this.spill = spill; }

        void write(boolean isErr, byte[] b, int off, int len) {
            if (closed && spill != null) {
                spill.write(isErr, b, off, len);
                return;
            }
            ByteArrayOutputStream target = isErr ? err : out;
            synchronized (target) {
                if (target.size() < 16 * 1024 * 1024) target.write(b, off, len);
            }
        }

        String takeOut() { return take(out, spill == null ? null : spill.out); }

        String takeErr() { return take(err, spill == null ? null : spill.err); }

        private static String take(ByteArrayOutputStream mine, ByteArrayOutputStream spilled) {
            StringBuilder sb = new StringBuilder();
            if (spilled != null) {
                synchronized (spilled) {
                    if (spilled.size() > 0) {
                        sb.append(Host.text(spilled));
                        spilled.reset();
                    }
                }
            }
            synchronized (mine) {
                if (mine.size() > 0) {
                    sb.append(Host.text(mine));
                    mine.reset();
                }
            }
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
