package cncf.collaborator;

/**
 * The component-facing SPI of the cncf hub: a class that implements it receives
 * every ActionCall addressed to its component and answers with a {@link Result}.
 *
 * <p>The hub finds the Collaborator of a jar in this order: the manifest's
 * {@code entry}; the first non-comment line of {@code META-INF/cncf/collaborator};
 * the single implementation found by scanning the jar. It creates one instance
 * with the public no-argument constructor (or uses a Scala {@code object}'s
 * {@code MODULE$}) and keeps it for the component's lifetime.
 *
 * <p>Declare the operation names with {@link Operations} on the class (or in the
 * manifest's {@code [services]} tables) so that the hub can resolve selectors
 * such as {@code counter.increment} before the first call.
 *
 * <p>Calls may arrive on different threads; with the {@code concurrent} policy
 * they may overlap. Cancellation is delivered as {@link Thread#interrupt()} on
 * the calling thread ({@link ActionCall#isCancelled()}).
 */
public interface Collaborator {

    /**
     * Run one operation.
     *
     * @param call the operation name and its arguments, as JSON-shaped Java values
     * @return {@link Result#success(Object)} or {@link Result#failure(String, String)}
     * @throws Exception a {@link Rejected} becomes the Observation {@code rejected} (the
     *     caller's arguments are wrong, HTTP 400); any other throwable becomes an Observation
     *     ({@code raised}, HTTP 500, or a more specific code such as {@code linkage_error})
     *     with the Java stack trace as its cause
     */
    Result call(ActionCall call) throws Exception;
}
