"""The queue policy: durable jobs (see ``docs/jobs.md``).

``JobSystem`` is where the hub routes queue-policy calls;
``Job``/``JobState`` are what ``hub.job()`` and ``hub.jobs()`` return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cncf.jobs.model import Attempt, Job, JobNotFound, JobState, JobStoreCorrupt, JobStoreError, JobStoreUnavailable

if TYPE_CHECKING:
    from cncf.jobs.system import JobSystem

__all__ = [
    "Attempt",
    "Job",
    "JobNotFound",
    "JobState",
    "JobStoreCorrupt",
    "JobStoreError",
    "JobStoreUnavailable",
    "JobSystem",
]


def __getattr__(name: str) -> Any:
    # JobSystem (SQLite, the engine) is imported when first used, so that
    # ``cncf.Job`` and ``cncf.JobNotFound`` cost a plain hub nothing.
    if name == "JobSystem":
        from cncf.jobs.system import JobSystem

        return JobSystem
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
