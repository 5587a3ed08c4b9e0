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


def test_the_worker_runtimes_face_to_the_hub_is_pinned():
    """The hub (the inline form) uses the stdlib worker runtime through its
    declared face only: ``HUB_API`` and the component API, each name defined in
    the runtime and typed in runtime.pyi, and nothing private reached."""
    import ast
    from pathlib import Path

    from cncf.worker import runtime

    assert sorted(runtime.HUB_API) == [
        "CallState",
        "Failure",
        "LoadFailed",
        "NotExact",
        "Slot",
        "classify",
        "exact_json",
        "failure_record",
        "instantiate",
        "load_entry",
        "misfit",
        "parameters",
        "use_call_lookup",
    ]
    face = set(runtime.HUB_API) | set(runtime._API)
    for name in face:
        assert hasattr(runtime, name), name
    stub = ast.parse(Path(runtime.__file__).with_suffix(".pyi").read_text())
    declared = {n.name for n in stub.body if isinstance(n, ast.FunctionDef | ast.ClassDef)} | {
        t.id for n in stub.body if isinstance(n, ast.AnnAssign) for t in [n.target] if isinstance(t, ast.Name)
    }
    assert face <= declared, face - declared
    assert not {n for n in declared if n.startswith("_")}, "runtime.pyi declares private names"
    src = Path(cncf.__file__).parent
    for path in (src / "boundaries" / "inline.py", src / "failures.py", src / "collaborator.py"):
        tree = ast.parse(path.read_text())
        used = {
            n.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in ("_rt", "_api")
        }
        assert used and used <= face, (path.name, used - face)
        assert not [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Assign)
            and any(
                isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in ("_rt", "_api")
                for t in n.targets
            )
        ], f"{path.name} rebinds a name of the runtime"


def test_the_inline_form_finds_the_running_call_through_the_runtimes_hook():
    """``use_call_lookup`` sets how ``current_call()`` finds the call, and returns the lookup it replaced."""
    import cncf.boundaries.inline as inline
    from cncf.worker import runtime

    state = runtime.CallState(None, "c-1", "op")
    token = inline._CALL.set(state)
    try:
        assert cncf.collaborator.current_call() is state
        assert not cncf.collaborator.cancelled()
        state.cancelled = True
        assert cncf.collaborator.cancelled()
    finally:
        inline._CALL.reset(token)
    assert cncf.collaborator.current_call() is None
    previous = runtime.use_call_lookup(lambda: state)
    try:
        assert runtime.current_call() is state
    finally:
        assert runtime.use_call_lookup(previous)() is state
    assert runtime.current_call() is None
