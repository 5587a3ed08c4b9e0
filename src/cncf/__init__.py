"""cncf: an execution hub for components built in any form.

Public names are listed in ``__all__`` (pinned by ``tests/core/test_exports.py``);
the component-facing API is :mod:`cncf.collaborator`.
"""

from cncf.hub import AsyncHub, ComponentHandle, Hub
from cncf.observation import Cause, Code, Observation, Stage
from cncf.outcome import ObservationError, Outcome

__version__ = "0.1.0"

__all__ = [
    "AsyncHub",
    "Cause",
    "Code",
    "ComponentHandle",
    "Hub",
    "Observation",
    "ObservationError",
    "Outcome",
    "Stage",
    "__version__",
]
