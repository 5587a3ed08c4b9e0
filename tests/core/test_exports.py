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
