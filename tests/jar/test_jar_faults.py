"""The fault matrix, jar column: every failure is an Observation of the right
code and stage, the hub stays up, and a neighbour component in the same JVM
host keeps answering (after a restart when the host itself died)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import cncf
from cncf import Code, Stage
from tests.jar.conftest import jar_home

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, collab_jar: Path, jvm_cache: Path) -> Iterator[cncf.Hub]:
    with cncf.Hub(home=jar_home(tmp_path_factory.mktemp("faults-home"), jvm_cache)) as h:
        n = h.load(collab_jar, name="neighbour")
        assert n.state == "ready", n.observation
        yield h


def neighbour_answers(hub: cncf.Hub) -> None:
    out = hub.call("neighbour.capitalize", ["still here"], timeout=30)
    assert out.ok, out.observation
    assert out.value == "Still here"


@pytest.fixture(scope="module")
def faults(hub: cncf.Hub, faults_jar: Path) -> str:
    h = hub.load(faults_jar, name="faults", entry="faults.Faults")
    assert h.state == "ready", h.observation
    return "faults"


# --------------------------------------------------------------------- load


def _load_failure(hub: cncf.Hub, target: Path, code: Code, stage: Stage, **overrides: object) -> cncf.Observation:
    h = hub.load(target, **overrides)
    try:
        assert h.state == "failed"
        obs = h.observation
        assert obs is not None
        assert (obs.code, obs.stage) == (code, stage), obs
        out = hub.call(f"{h.name}.anything")
        assert not out.ok and out.observation.code == code
        neighbour_answers(hub)
        return obs
    finally:
        hub.unload(h.name)


def test_jar_missing(hub: cncf.Hub, tmp_path: Path) -> None:
    _load_failure(hub, tmp_path / "nothing.jar", Code.ARTIFACT_NOT_FOUND, Stage.LOAD, name="missing")


def test_corrupt_jar(hub: cncf.Hub, corrupt_jar: Path) -> None:
    _load_failure(hub, corrupt_jar, Code.INVALID_ARCHIVE, Stage.LOAD, name="corrupt")


def test_facade_class_not_found(hub: cncf.Hub, faults_jar: Path) -> None:
    obs = _load_failure(hub, faults_jar, Code.ENTRY_NOT_FOUND, Stage.LOAD, name="nofacade", entry="faults.Fautls")
    assert obs.attributes["entry"] == "faults.Fautls"


def test_no_entry_and_no_collaborator(hub: cncf.Hub, faults_jar: Path) -> None:
    obs = _load_failure(hub, faults_jar, Code.ENTRY_NOT_FOUND, Stage.LOAD, name="noentry")
    assert "faults.Faults" in obs.attributes["candidates"]


def test_several_collaborators_are_ambiguous(hub: cncf.Hub, ambiguous_jar: Path) -> None:
    obs = _load_failure(hub, ambiguous_jar, Code.ENTRY_AMBIGUOUS, Stage.LOAD, name="amb")
    assert sorted(obs.attributes["candidates"]) == ["amb.First", "amb.Second"]


def test_ambiguity_resolved_by_entry(hub: cncf.Hub, ambiguous_jar: Path) -> None:
    h = hub.load(ambiguous_jar, name="amb2", entry="amb.Second")
    assert h.state == "ready", h.observation
    assert hub.call("amb2.which").value == "second"
    hub.unload("amb2")


def test_missing_dependency_at_load(hub: cncf.Hub, faults_jar: Path) -> None:
    obs = _load_failure(hub, faults_jar, Code.CLASS_NOT_FOUND, Stage.LOAD, name="needsgone", entry="faults.NeedsGone")
    assert obs.cause is not None and obs.cause.type == "java.lang.NoClassDefFoundError"


def test_incompatible_class_change_at_load(hub: cncf.Hub, faults_jar: Path) -> None:
    obs = _load_failure(hub, faults_jar, Code.LINKAGE_ERROR, Stage.LOAD, name="badlink", entry="faults.BadLink")
    assert obs.cause is not None and obs.cause.type == "java.lang.IncompatibleClassChangeError"


def test_static_initialiser_throws(hub: cncf.Hub, faults_jar: Path) -> None:
    obs = _load_failure(
        hub, faults_jar, Code.INITIALIZER_FAILED, Stage.LOAD, name="staticboom", entry="faults.StaticBoom"
    )
    assert obs.cause is not None and obs.cause.type == "java.lang.ExceptionInInitializerError"
    assert obs.cause.cause is not None and obs.cause.cause.type == "java.lang.NumberFormatException"


def test_constructor_throws(hub: cncf.Hub, faults_jar: Path) -> None:
    obs = _load_failure(
        hub, faults_jar, Code.CONSTRUCTOR_FAILED, Stage.INSTANTIATE, name="ctorboom", entry="faults.CtorBoom"
    )
    assert obs.cause is not None and obs.cause.type == "java.lang.IllegalArgumentException"


# ------------------------------------------------------------------ execute


@pytest.mark.parametrize(
    ("operation", "args", "code", "cause_type"),
    [
        ("raise", ["boom"], Code.RAISED, "java.lang.IllegalStateException"),
        ("missing-dependency", [], Code.CLASS_NOT_FOUND, "java.lang.NoClassDefFoundError"),
        ("linkage", [], Code.LINKAGE_ERROR, "java.lang.NoSuchMethodError"),
        ("overflow", [0], Code.STACK_OVERFLOW, "java.lang.StackOverflowError"),
        ("not-serialisable", [], Code.RESULT_NOT_SERIALISABLE, None),
        ("nan", [], Code.RESULT_NOT_SERIALISABLE, None),
        ("cycle", [], Code.RESULT_NOT_SERIALISABLE, None),
        ("jdk-object", [], Code.RESULT_NOT_SERIALISABLE, None),
        ("add", [True, False], Code.INVALID_ARGUMENTS, None),
    ],
)
def test_execute_faults(
    hub: cncf.Hub, faults: str, operation: str, args: list, code: Code, cause_type: str | None
) -> None:
    out = hub.call(f"{faults}.{operation}", args, timeout=30)
    assert not out.ok
    assert out.observation.code == code, out.observation
    assert out.observation.stage in code.stages
    if code is not Code.INVALID_ARGUMENTS:
        assert out.observation.stage == Stage.EXECUTE
    if cause_type:
        assert out.observation.cause is not None and out.observation.cause.type == cause_type
        assert "faults.Faults" in out.observation.cause.stack
    assert hub.call(f"{faults}.count").ok  # the instance lives on
    neighbour_answers(hub)


def test_raised_keeps_nested_causes(hub: cncf.Hub, faults: str) -> None:
    out = hub.call(f"{faults}.raise", ["with a cause"])
    cause = out.observation.cause
    assert cause is not None and cause.message == "with a cause"
    assert cause.cause is not None and cause.cause.type == "java.lang.RuntimeException"
    assert cause.cause.message == "root cause"


def test_unknown_operation_is_a_dispatch_observation(hub: cncf.Hub, faults: str) -> None:
    out = hub.call(f"{faults}.no-such-operation")
    assert (out.observation.code, out.observation.stage) == (Code.UNKNOWN_OPERATION, Stage.DISPATCH)


def test_out_of_memory_in_a_heap_limited_host(hub: cncf.Hub, faults_jar: Path, collab_jar: Path) -> None:
    hog = hub.load(faults_jar, name="hog", entry="faults.Faults", memory_limit="96MB")
    small = hub.load(collab_jar, name="small-neighbour", memory_limit="96MB")  # same host (same options)
    assert hog.state == small.state == "ready"
    assert hub.call("small-neighbour.increment", [1]).value == 1
    out = hub.call("hog.oom", timeout=60)
    assert (out.observation.code, out.observation.stage) == (Code.OUT_OF_MEMORY, Stage.EXECUTE)
    assert hub.call("hog.count").ok  # the host survived the OutOfMemoryError
    assert hub.call("small-neighbour.increment", [1]).value == 2  # its state too
    neighbour_answers(hub)
    hub.unload("hog")
    hub.unload("small-neighbour")


def test_cooperative_timeout_interrupts_the_thread(hub: cncf.Hub, faults: str) -> None:
    pid_before = hub.inspect(faults)["health"]["pid"]
    out = hub.call(f"{faults}.patient", [60_000], timeout=0.5)
    assert (out.observation.code, out.observation.stage) == (Code.TIMED_OUT, Stage.EXECUTE)
    assert out.observation.attributes.get("tier") == "cooperative"
    assert hub.inspect(faults)["health"]["pid"] == pid_before  # no host restart was needed
    assert hub.call(f"{faults}.count").ok
    neighbour_answers(hub)


# ------------------------------------------------------- the host dies


def test_endless_loop_is_killed_with_the_host(hub: cncf.Hub, faults_jar: Path) -> None:
    h = hub.load(faults_jar, name="spinner", entry="faults.Faults", cancel_grace=0.3)
    assert h.state == "ready"
    pid_before = hub.inspect("spinner")["health"]["pid"]
    out = hub.call("spinner.spin", timeout=0.5)
    assert (out.observation.code, out.observation.stage) == (Code.TIMED_OUT, Stage.EXECUTE)
    assert out.observation.attributes.get("tier") == "cooperative"  # answered at the deadline
    assert hub.call("spinner.count").value == 1  # waits for the escalation: a fresh instance
    assert hub.inspect("spinner")["cancellations"] == {"killed": 1}
    # The shared host was restarted: the neighbour was reported and re-instantiated.
    neighbour_answers(hub)
    assert hub.inspect("spinner")["health"]["pid"] != pid_before
    hub.unload("spinner")


def test_system_exit_kills_the_host_and_neighbours_are_restarted(hub: cncf.Hub, faults_jar: Path) -> None:
    h = hub.load(faults_jar, name="quitter", entry="faults.Faults")
    assert h.state == "ready"
    hub.call("neighbour.increment", [10])
    out = hub.call("quitter.exit", [3], timeout=30)
    assert (out.observation.code, out.observation.stage) == (Code.WORKER_CRASHED, Stage.EXECUTE)
    assert out.observation.attributes.get("exit_code") == 3
    neighbour_answers(hub)
    assert hub.component("neighbour").restarts >= 1
    assert hub.call("neighbour.get").value == 0  # a fresh instance
    assert hub.call("quitter.count").value == 1
    hub.unload("quitter")


def test_restart_never_leaves_the_component_unavailable(hub: cncf.Hub, faults_jar: Path) -> None:
    h = hub.load(faults_jar, name="fragile", entry="faults.Faults", restart="never", isolation="process")
    assert h.state == "ready"
    out = hub.call("fragile.exit", [1])
    assert out.observation.code == Code.WORKER_CRASHED
    again = hub.call("fragile.count")
    assert (again.observation.code, again.observation.stage) == (Code.COMPONENT_UNAVAILABLE, Stage.DISPATCH)
    neighbour_answers(hub)
    hub.unload("fragile")


def test_bad_jvm_option_fails_the_host_start(hub: cncf.Hub, faults_jar: Path) -> None:
    obs = _load_failure(
        hub,
        faults_jar,
        Code.WORKER_START_FAILED,
        Stage.LOAD,
        name="badjvm",
        entry="faults.Faults",
        jvm_options=["-XX:+NoSuchJvmOption"],
    )
    assert obs.attributes.get("exit_code") == 1


def test_no_jdk_is_a_load_observation(tmp_path: Path, faults_jar: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cncf.jvm import build

    monkeypatch.setattr(build, "_MEMO", {})
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with cncf.Hub(home=tmp_path / "home") as h:
        handle = h.load(faults_jar, entry="faults.Faults")
        assert handle.state == "failed"
        assert (handle.observation.code, handle.observation.stage) == (Code.WORKER_START_FAILED, Stage.LOAD)
        assert handle.observation.attributes["tool"] == "javac"


def test_fat_jar_with_stale_signature_files(hub: cncf.Hub, plain_jar: Path, tmp_path: Path) -> None:
    """A "fat jar" that kept a signed dependency's signature files but rewrote its
    manifest (what a naive shading does): the JVM refuses every signed class."""
    import subprocess
    import zipfile

    from tests.conftest import require_tool

    signed = tmp_path / "signed.jar"
    signed.write_bytes(plain_jar.read_bytes())
    keystore = tmp_path / "keys.p12"
    subprocess.run(
        [
            require_tool("keytool"),
            "-genkeypair",
            "-keystore",
            str(keystore),
            "-storepass",
            "secret",
            "-keypass",
            "secret",
            "-alias",
            "dep",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-dname",
            "CN=dependency",
            "-validity",
            "2",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [require_tool("jarsigner"), "-keystore", str(keystore), "-storepass", "secret", str(signed), "dep"],
        check=True,
        capture_output=True,
    )
    jar = tmp_path / "merged.jar"
    with zipfile.ZipFile(signed) as src, zipfile.ZipFile(jar, "w", zipfile.ZIP_DEFLATED) as out:
        manifest = src.read("META-INF/MANIFEST.MF").decode()
        assert any(n.endswith(".SF") for n in src.namelist())
        out.writestr("META-INF/MANIFEST.MF", manifest.replace("\r\n", "\r\nX-Shaded: yes\r\n", 1))
        for name in src.namelist():
            if name != "META-INF/MANIFEST.MF" and not name.endswith("/"):
                out.writestr(name, src.read(name))
    h = hub.load(jar, name="signed", entry="plain.Geometry")
    try:
        assert h.state == "failed"
        assert (h.observation.code, h.observation.stage) == (Code.INVALID_ARCHIVE, Stage.LOAD)
        assert h.observation.cause is not None and h.observation.cause.type == "java.lang.SecurityException"
        neighbour_answers(hub)
    finally:
        hub.unload("signed")
