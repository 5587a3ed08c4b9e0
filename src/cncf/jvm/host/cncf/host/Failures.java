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
        Map<String, Object> f = new LinkedHashMap<String, Object>();
        f.put("code", code);
        f.put("message", message);
        f.put("cause", cause == null ? null : cause(cause, 0, new IdentityHashMap<Throwable, Boolean>()));
        f.put("attributes", new LinkedHashMap<String, Object>());
        return f;
    }

    static Map<String, Object> record(String code, String message, Throwable cause, Map<String, Object> attributes) {
        Map<String, Object> f = record(code, message, cause);
        f.put("attributes", attributes);
        return f;
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
                    + "); bundle the missing dependency in the fat jar";
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
