package cncf.collaborator;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a {@link Collaborator} answers: a success value, or a failure carrying an
 * Observation code of the component's own, a message and attributes.
 *
 * <p>A failure becomes an Observation with code {@code operation_failed} at the
 * {@code execute} stage; the component's code is kept in
 * {@code attributes.component_code} and its attributes beside it, so callers can
 * branch on them. Attribute values must be JSON-shaped (see {@link ActionCall}).
 */
public final class Result {
    private final boolean success;
    private final Object value;
    private final String code;
    private final String message;
    private final Map<String, Object> attributes;

    private Result(boolean success, Object value, String code, String message,
                   Map<String, Object> attributes) {
        this.success = success;
        this.value = value;
        this.code = code;
        this.message = message;
        this.attributes = attributes;
    }

    /** A success whose value crosses to the caller as JSON. */
    public static Result success(Object value) {
        return new Result(true, value, null, null, Collections.<String, Object>emptyMap());
    }

    /** A failure with the component's own code (e.g. {@code "insufficient_funds"}). */
    public static Result failure(String code, String message) {
        return failure(code, message, null);
    }

    /** A failure with attributes (JSON-shaped values) the caller can branch on. */
    public static Result failure(String code, String message, Map<String, ?> attributes) {
        Map<String, Object> attrs = new LinkedHashMap<String, Object>();
        if (attributes != null) attrs.putAll(attributes);
        return new Result(false, null, code == null ? "operation_failed" : code,
                message == null ? "" : message, Collections.unmodifiableMap(attrs));
    }

    public boolean isSuccess() { return success; }

    public Object value() { return value; }

    public String code() { return code; }

    public String message() { return message; }

    public Map<String, Object> attributes() { return attributes; }

    @Override
    public String toString() {
        return success ? "Success(" + value + ")" : "Failure(" + code + ": " + message + ", " + attributes + ")";
    }
}
