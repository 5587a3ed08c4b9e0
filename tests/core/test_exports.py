import cncf
import cncf.collaborator


def test_public_names_are_pinned():
    assert sorted(cncf.__all__) == sorted(
        [
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
    )
    for name in cncf.__all__:
        assert hasattr(cncf, name)


def test_collaborator_api_names_are_pinned():
    assert sorted(cncf.collaborator.__all__) == [
        "Cancelled",
        "Collaborator",
        "Failure",
        "Rejected",
        "cancelled",
        "check_cancelled",
        "current_call",
    ]


def test_job_names_are_the_ones_the_hub_returns():
    from cncf.jobs import Job, JobNotFound
    from cncf.outcome import ObservationError

    assert cncf.Job is Job and cncf.JobNotFound is JobNotFound
    assert issubclass(cncf.JobNotFound, ObservationError)


def test_the_package_says_it_is_typed():
    from importlib import resources

    assert resources.files("cncf").joinpath("py.typed").is_file()


def test_the_sync_hub_has_the_async_hubs_subscribe(tmp_path):
    from tests.conftest import INLINE

    events = []
    with cncf.Hub(tmp_path) as hub:
        assert hub.load(INLINE / "counter").state == "ready"
        unsubscribe = hub.subscribe(events.append)
        first = hub.call("counter.increment")
        unsubscribe()
        hub.call("counter.increment")
    assert [e.call.id for e in events] == [first.call_id]
    assert events[0].outcome.value == first.value
