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
