"""The queue policy: durable jobs (see ``docs/jobs.md``).

``JobSystem`` is where the hub routes queue-policy calls;
``Job``/``JobState`` are what ``hub.job()`` and ``hub.jobs()`` return.
"""

from cncf.jobs.model import Attempt, Job, JobNotFound, JobState, JobStoreCorrupt
from cncf.jobs.system import JobSystem

__all__ = ["Attempt", "Job", "JobNotFound", "JobState", "JobStoreCorrupt", "JobSystem"]
