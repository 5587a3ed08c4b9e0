package cncf.collaborator;

import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * One execution request as a Collaborator sees it: the operation name and the
 * arguments. Arguments are JSON-shaped: {@code null}, {@link Boolean},
 * {@link Long} (or {@link java.math.BigInteger} beyond 64 bits), {@link Double},
 * {@link String}, {@link List} and {@link Map} with String keys.
 *
 * <p>A Collaborator never sees the policy the call runs under (serialize,
 * concurrent, queue, timeouts): those belong to the hub.
 */
public final class ActionCall {
    private final String id;
    private final String operation;
    private final List<Object> arguments;
    private final Map<String, Object> namedArguments;

    public ActionCall(String id, String operation, List<Object> arguments,
                      Map<String, Object> namedArguments) {
        this.id = id == null ? "" : id;
        this.operation = operation;
        this.arguments = arguments == null ? Collections.<Object>emptyList()
                : Collections.unmodifiableList(arguments);
        this.namedArguments = namedArguments == null ? Collections.<String, Object>emptyMap()
                : Collections.unmodifiableMap(namedArguments);
    }

    /** The hub's call id (for logs and correlation). */
    public String id() { return id; }

    /** The operation name exactly as the component declared it. */
    public String operation() { return operation; }

    /** Positional arguments (a JSON list on the wire). */
    public List<Object> arguments() { return arguments; }

    /** Named arguments (a JSON object on the wire). */
    public Map<String, Object> namedArguments() { return namedArguments; }

    /** Positional argument {@code index}, or {@code null} when absent. */
    public Object argument(int index) {
        return index < arguments.size() ? arguments.get(index) : null;
    }

    /** Named argument {@code name}, or {@code null} when absent. */
    public Object argument(String name) { return namedArguments.get(name); }

    /** Positional argument {@code index} as an int (JSON numbers arrive as Long or Double). */
    public int intArgument(int index) { return number(argument(index), "argument " + index).intValue(); }

    /** Named argument {@code name} as an int. */
    public int intArgument(String name) { return number(argument(name), "argument " + name).intValue(); }

    /** Positional argument {@code index} as a long. */
    public long longArgument(int index) { return number(argument(index), "argument " + index).longValue(); }

    /** Named argument {@code name} as a long. */
    public long longArgument(String name) { return number(argument(name), "argument " + name).longValue(); }

    /** Positional argument {@code index} as a double. */
    public double doubleArgument(int index) { return number(argument(index), "argument " + index).doubleValue(); }

    /** Named argument {@code name} as a double. */
    public double doubleArgument(String name) { return number(argument(name), "argument " + name).doubleValue(); }

    /** Positional argument {@code index} as a String ({@code null} stays null; other values by toString). */
    public String stringArgument(int index) { return string(argument(index)); }

    /** Named argument {@code name} as a String. */
    public String stringArgument(String name) { return string(argument(name)); }

    /** Positional argument {@code index}, else named argument {@code name}: for calls made either way. */
    public Object argument(int index, String name) {
        return index < arguments.size() ? arguments.get(index) : namedArguments.get(name);
    }

    private static Number number(Object v, String what) {
        if (v instanceof Number) return (Number) v;
        if (v instanceof String) {
            try {
                return Double.valueOf((String) v);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(what + " is not a number: " + v);
            }
        }
        throw new IllegalArgumentException(what + " is " + (v == null ? "missing" : "not a number: " + v));
    }

    private static String string(Object v) { return v == null ? null : v.toString(); }

    /**
     * Whether the hub asked to cancel this call (cooperative tier). Equivalent to
     * {@code Thread.currentThread().isInterrupted()} on the calling thread; blocking
     * JDK methods throw {@link InterruptedException} instead.
     */
    public boolean isCancelled() { return Thread.currentThread().isInterrupted(); }

    @Override
    public String toString() {
        return "ActionCall(" + id + ", " + operation + ", " + arguments + ", " + namedArguments + ")";
    }
}
