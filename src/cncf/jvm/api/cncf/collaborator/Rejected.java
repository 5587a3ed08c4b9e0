package cncf.collaborator;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Thrown by an operation whose arguments are wrong: the caller's fault, not the
 * component's.
 *
 * <p>The call ends with the Observation code {@code rejected} (stage
 * {@code execute}, category {@code argument}, not retryable; HTTP 400) whose
 * message is this exception's message and whose attributes are
 * {@link #attributes()} (JSON-shaped values, see {@link ActionCall}). Any other
 * throwable of an operation is the component's own failure: {@code raised}
 * (HTTP 500). It works from any component the hub runs (a {@link Collaborator},
 * a plain class, a Scala class or object), also when it reaches the hub wrapped
 * by reflection; thrown by a constructor it is a {@code constructor_failed} like
 * any other throwable.
 *
 * <pre>
 *   if (quantity &lt;= 0) throw new Rejected("quantity must be positive, got " + quantity);
 * </pre>
 */
public class Rejected extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final Map<String, Object> attributes;

    /** A rejection with the message the caller will read. */
    public Rejected(String message) {
        this(message, null);
    }

    /** A rejection with attributes (JSON-shaped values) the caller can branch on, e.g. the field at fault. */
    public Rejected(String message, Map<String, ?> attributes) {
        super(message);
        Map<String, Object> copy = new LinkedHashMap<String, Object>();
        if (attributes != null) copy.putAll(attributes);
        this.attributes = Collections.unmodifiableMap(copy);
    }

    /** The attributes given at construction (never null). */
    public Map<String, Object> attributes() {
        return attributes;
    }
}
