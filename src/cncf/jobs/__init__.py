"""The queue policy: durable jobs (see ``docs/jobs.md``).

``JobSystem`` is what the hub plugs into the ActionEngine as its queue sink;
``Job``/``JobState`` are what ``hub.job()`` and ``hub.jobs()`` return.
"""

from cncf.jobs.model import Attempt, Job, JobNotFound, JobState
from cncf.jobs.pump import LoopPump
from cncf.jobs.system import JobSystem

__all__ = ["Attempt", "Job", "JobNotFound", "JobState", "JobSystem", "LoopPump"]
