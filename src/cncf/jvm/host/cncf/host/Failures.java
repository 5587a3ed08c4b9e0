package cncf.host;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.InvocationTargetException;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Java throwables become failure records once, here: a code from the hub's
 * Observation registry, a message, and a cause record (type, message, full stack
 * text, nested cause). The code depends on the throwable and on the stage:
 *
 * <pre>
 *   ClassNotFoundException, NoClassDefFoundError   class_not_found
 *   ExceptionInInitializerError                    initializer_failed
 *   NoSuchMethodError, NoSuchFieldError, other LinkageError   linkage_error
 *   StackOverflowError                             stack_overflow
 *   OutOfMemoryError                               out_of_memory
 *   SecurityException, IOException at load         invalid_archive (e.g. stale signature files)
 *   cncf.collaborator.Rejected at execute          rejected (the caller's arguments are wrong)
 *   anything else: at load                         internal_error (a host defect)
 *                  at instantiate                  constructor_failed
 *                  at execute                      raised
 * </pre>
 */
final class Failures {
    private Failures() {}

    static final int LOAD = 0, INSTANTIATE = 1, EXECUTE = 2;

    /** The API's rejection, known by name: every component loader has its own copy of the class. */
    static final String REJECTED = "cncf.collaborator.Rejected";

    static Map<String, Object> record(String code, String message, Throwable cause) {
        return record(code, message, cause, new LinkedHashMap<String, Object>());
    }

    /**
     * A failure record. Its cause's stacks are the component's frames: reflection's
     * and the host's own ({@code cncf.host}, its executor) are left out; the whole
     * trace, as the JVM printed it, is kept in the attribute {@code java_stack}.
     */
    static Map<String, Object> record(String code, String message, Throwable cause, Map<String, Object> attributes) {
        Map<String, Object> f = new LinkedHashMap<String, Object>();
        f.put("code", code);
        f.put("message", message);
        Map<String, Object> c = cause == null ? null : cause(cause, 0, new IdentityHashMap<Throwable, Boolean>());
        f.put("cause", c);
        if (c != null && !"rejected".equals(code) && !attributes.containsKey("java_stack")) {
            String full = String.valueOf(c.get("stack"));
            String trimmed = trim(full);
            if (!trimmed.equals(full)) {
                attributes.put("java_stack", full);
                for (Map<String, Object> k = c; k != null; k = castMap(k.get("cause"))) {
                    k.put("stack", trim(String.valueOf(k.get("stack"))));
                }
            }
        }
        if (cause != null && "class_not_found".equals(code)) {
            String missing = cause.getMessage();
            if (missing != null) attributes.put("missing_class", missing.replace('/', '.'));
        }
        f.put("attributes", attributes);
        return f;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> castMap(Object o) {
        return o instanceof Map ? (Map<String, Object>) o : null;
    }

    private static final String[] PLUMBING = {
        "jdk.internal.reflect.", "sun.reflect.", "java.lang.reflect.", "java.lang.invoke.", "cncf.host.",
        "java.util.concurrent.ThreadPoolExecutor", "java.util.concurrent.FutureTask", "java.lang.Thread.run",
    };

    /** A printed stack without the frames of reflection and of the host ("\tat m.Class.method(...)"). */
    static String trim(String stack) {
        StringBuilder out = new StringBuilder(stack.length());
        int dropped = 0;
        for (String line : stack.split("\n", -1)) {
            String l = line.trim();
            if (l.startsWith("at ")) {
                String frame = l.substring(3);
                int slash = frame.indexOf('/'), paren = frame.indexOf('(');
                if (slash >= 0 && (paren < 0 || slash < paren)) frame = frame.substring(slash + 1); // java.base/...
                boolean plumbing = false;
                for (String p : PLUMBING) if (frame.startsWith(p)) plumbing = true;
                if (plumbing) {
                    dropped++;
                    continue;
                }
            }
            if (out.length() > 0) out.append('\n');
            out.append(line);
        }
        return dropped == 0 ? stack : out.toString();
    }

    /** Strip reflection's wrapper: the component's own throwable is what matters. */
    static Throwable unwrap(Throwable t) {
        while (t instanceof InvocationTargetException && t.getCause() != null) t = t.getCause();
        return t;
    }

    static boolean rejected(Throwable t) {
        for (Class<?> c = t.getClass(); c != null; c = c.getSuperclass()) {
            if (REJECTED.equals(c.getName())) return true;
        }
        return false;
    }

    static String code(Throwable t, int stage) {
        if (stage == EXECUTE && rejected(t)) return "rejected";
        if (t instanceof ClassNotFoundException || t instanceof NoClassDefFoundError) return "class_not_found";
        if (t instanceof ExceptionInInitializerError) return "initializer_failed";
        if (t instanceof LinkageError) return "linkage_error";
        if (t instanceof StackOverflowError) return "stack_overflow";
        if (t instanceof OutOfMemoryError) return "out_of_memory";
        if (stage == LOAD) {
            // Not a throwable of the component's code (that comes wrapped in an
            // ExceptionInInitializerError): the jar itself, or the host.
            if (t instanceof SecurityException || t instanceof java.io.IOException) return "invalid_archive";
            return "internal_error";
        }
        return stage == INSTANTIATE ? "constructor_failed" : "raised";
    }

    static Map<String, Object> classify(Throwable thrown, int stage, String context) {
        Throwable t = unwrap(thrown);
        String code = code(t, stage);
        if ("rejected".equals(code)) return rejection(t, context);
        String what = t.getClass().getName() + (t.getMessage() == null ? "" : ": " + t.getMessage());
        String message;
        if ("class_not_found".equals(code)) {
            message = context + " needs a class its jar does not contain (" + what
                    + "); put the jar that has it on the component's classpath (classpath = [\"lib/*.jar\"] "
                    + "in its cncf.toml, or --classpath JAR), or bundle it in a fat jar";
        } else if ("linkage_error".equals(code)) {
            message = context + " was built against another version of a dependency (" + what + ")";
        } else if ("initializer_failed".equals(code)) {
            Throwable inner = t.getCause() != null ? t.getCause() : t;
            message = context + ": a static initialiser threw " + inner.getClass().getName()
                    + (inner.getMessage() == null ? "" : ": " + inner.getMessage());
        } else if ("invalid_archive".equals(code)) {
            message = context + ": the jar cannot be read (" + what + ")"
                    + (t instanceof SecurityException ? "; a fat jar must not keep its dependencies' "
                    + "META-INF/*.SF/*.RSA/*.DSA signature files" : "");
        } else if ("stack_overflow".equals(code)) {
            message = context + " overflowed its thread stack (unbounded recursion?)";
        } else if ("out_of_memory".equals(code)) {
            message = context + " exhausted the JVM host's memory (" + what
                    + "); raise memory_limit or use isolation = \"process\"";
        } else {
            message = context + " threw " + what;
        }
        return record(code, message, t);
    }

    /** A Rejected: the component's own message, and its attributes (a value that is not JSON as text). */
    static Map<String, Object> rejection(Throwable t, String context) {
        String message = t.getMessage();
        if (message == null || message.isEmpty()) message = context + " rejected its arguments";
        Map<String, Object> attributes = new LinkedHashMap<String, Object>();
        try {
            Object own = t.getClass().getMethod("attributes").invoke(t);
            if (own instanceof Map) {
                for (Map.Entry<?, ?> e : ((Map<?, ?>) own).entrySet()) {
                    Object v = e.getValue();
                    try {
                        Json.write(v);
                    } catch (Json.NotJson | RuntimeException notJson) {
                        v = String.valueOf(v);
                    }
                    attributes.put(String.valueOf(e.getKey()), v);
                }
            }
        } catch (Exception | LinkageError none) {
            // a subclass without attributes(): the message alone
        }
        return record("rejected", message, t, attributes);
    }

    static Map<String, Object> cause(Throwable t, int depth, IdentityHashMap<Throwable, Boolean> seen) {
        seen.put(t, Boolean.TRUE);
        Map<String, Object> c = new LinkedHashMap<String, Object>();
        c.put("type", t.getClass().getName());
        c.put("message", t.getMessage() == null ? "" : t.getMessage());
        String stack;
        if (t instanceof StackOverflowError) {
            stack = shortStack(t, 64); // thousands of identical frames help nobody
        } else {
            StringWriter sw = new StringWriter();
            try {
                t.printStackTrace(new PrintWriter(sw));
                stack = sw.toString();
            } catch (Throwable e) {
                stack = shortStack(t, 256);
            }
        }
        if (stack.length() > 64 * 1024) stack = stack.substring(0, 64 * 1024) + "\n\t... (truncated)";
        c.put("stack", stack);
        Throwable next = t.getCause();
        c.put("cause", next != null && depth < 8 && !seen.containsKey(next) ? cause(next, depth + 1, seen) : null);
        return c;
    }

    private static String shortStack(Throwable t, int frames) {
        StringBuilder sb = new StringBuilder(t.toString()).append('\n');
        StackTraceElement[] st = t.getStackTrace();
        for (int i = 0; i < st.length && i < frames; i++) sb.append("\tat ").append(st[i]).append('\n');
        if (st.length > frames) sb.append("\t... ").append(st.length - frames).append(" more\n");
        return sb.toString();
    }
}
