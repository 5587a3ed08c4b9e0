"""cncf: an execution hub for components built in any form.

Public names are listed in ``__all__`` (pinned by ``tests/core/test_exports.py``);
the component-facing API is :mod:`cncf.collaborator`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cncf.hub import AsyncHub, ComponentHandle, Hub
from cncf.jobs.model import Job, JobNotFound
from cncf.observation import Cause, Code, Observation, Stage
from cncf.outcome import ObservationError, Outcome

if TYPE_CHECKING:
    from cncf.client import RemoteHub

__version__ = "0.1.0"


def connect(url: str, token: str | None = None, *, timeout: float | None = None) -> RemoteHub:
    """A client of the hub that ``cncf serve`` runs at ``url`` (see :mod:`cncf.client`);
    its ``call()``, ``components()``, ``job()`` and ``wait()`` behave as ``Hub``'s."""
    from cncf.client import connect as _connect  # lazy: httpx only when a client is made

    return _connect(url, token, timeout=timeout)


__all__ = [
    "AsyncHub",
    "Cause",
    "Code",
    "ComponentHandle",
    "Hub",
    "Job",
    "JobNotFound",
    "Observation",
    "ObservationError",
    "Outcome",
    "Stage",
    "__version__",
    "connect",
]
