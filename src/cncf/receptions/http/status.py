"""The one table from an Observation to an HTTP status.

As the original CNCF's ``webCodeOf``: the symptom first, then the category
(brief section 11: not-found 404, argument / operation 400, a timeout 504,
an unavailable or crashed component 503, anything else 500), with the
refused-request rows of the reception itself (401, 403, 413, 415) on top.
The rows are data, tried in order; the first whose fields all match wins.
Nothing else in the reception decides a status for an Observation, and no
row looks at a message or a code name: a new code gets its status from its
registry classification.  That is how the status says whose fault it is: a
component that rejects its arguments (``rejected``) is category argument,
400; an exception of the component's own (``raised``, ``exit_requested``,
``result_not_serialisable``) is category component, which no row claims, 500.
"""

from __future__ import annotations

from cncf.observation import Observation

# (field -> accepted values, status).  Fields are Observation attributes.
_Row = tuple[dict[str, frozenset[str]], int]


def _row(status: int, **fields: str | tuple[str, ...]) -> _Row:
    return ({k: frozenset((v,) if isinstance(v, str) else v) for k, v in fields.items()}, status)


STATUS_TABLE: tuple[_Row, ...] = (
    _row(401, category="security", symptom="missing"),  # no token, or a wrong one
    _row(403, category="security"),  # Host header, unrequested inline
    _row(404, symptom="not-found"),  # route, component, operation, job, entry
    _row(413, category="request", cause_kind="limit"),  # body over the limit
    _row(415, symptom="unsupported"),  # body that is not JSON
    _row(504, cause_kind="timeout"),  # wait_timeout, timed_out
    _row(503, symptom="unavailable", category=("component", "system")),  # crashed, unloaded, closing
    _row(503, cause_kind=("crash", "shutdown")),
    _row(400, category=("argument", "operation", "request")),  # the caller's request does not fit, or was rejected
    _row(400, stage="dispatch", category="configuration"),  # a call-supplied policy (bad timeout)
)
DEFAULT_STATUS = 500


def status_of(obs: Observation) -> int:
    """The HTTP status of a response carrying ``obs``."""
    for fields, status in STATUS_TABLE:
        if all(str(getattr(obs, name)) in values for name, values in fields.items()):
            return status
    return DEFAULT_STATUS


__all__ = ["DEFAULT_STATUS", "STATUS_TABLE", "status_of"]
