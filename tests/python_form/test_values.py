"""Values across the python boundary: objects with an exact JSON form cross as
that form, everything else is an Observation naming the type and the way out;
a module's callables that are not plain functions (numpy's ufuncs and
array-function dispatchers, builtins, partials) are operations.  Real numpy,
in a private environment built by uv."""

from __future__ import annotations

import pytest

import cncf
from tests.python_form.conftest import FIXTURES

NUMPY = ["numpy"]


@pytest.fixture
def npv(pyhub: cncf.Hub) -> cncf.Hub:
    h = pyhub.load(FIXTURES / "npvalues", name="npv", entry="npvalues", requirements=NUMPY)
    assert h.state == "ready", h.observation
    return pyhub


@pytest.mark.parametrize(
    ("op", "args", "value"),
    [
        ("matrix", [], [[0, 1, 2], [3, 4, 5]]),  # ndarray.tolist()
        ("scalar", [], 7),  # numpy.int64.item()
        ("mean", [[1, 2, 4]], 7 / 3),  # numpy.float64 is a float
        ("reading", [], {"sensor": "t1", "values": [1.5, 2.5], "at": "2024-01-31T12:00:00+00:00"}),  # a dataclass
        ("color", [], "GREEN"),  # an Enum member by name
        ("moments", [], {"date": "2024-02-29", "time": "08:30:00", "set": [1, 2, 3]}),
        ("double", [[1, 2]], [2, 4]),  # a functools.partial of a ufunc
    ],
)
def test_exact_json_forms(npv: cncf.Hub, op: str, args: list, value: object) -> None:
    out = npv.call(f"npv.{op}", args)
    assert out.ok, out.observation
    assert out.value == value


@pytest.mark.parametrize(
    ("op", "type_name"), [("price", "decimal.Decimal"), ("opaque", "object"), ("interval", "datetime.timedelta")]
)
def test_no_exact_form_names_the_type_and_the_way_out(npv: cncf.Hub, op: str, type_name: str) -> None:
    out = npv.call(f"npv.{op}", [])
    assert out.observation is not None
    assert out.observation.code.value == "result_not_serialisable"
    assert out.observation.attributes["type"] == type_name
    assert out.observation.attributes["hint"]


def test_numpy_callables_are_module_operations(pyhub: cncf.Hub) -> None:
    h = pyhub.load(FIXTURES / "npvalues", name="np", entry="numpy", requirements=NUMPY)
    assert h.state == "ready", h.observation
    names = {op.rpartition(".")[2] for op in h.operations}
    assert {"mean", "sum", "arange", "add", "sqrt"} <= names  # dispatchers, builtins, ufuncs
    assert pyhub.call("np.mean", [[1, 2, 3, 6]]).value == 3.0
    assert pyhub.call("np.sum", [[1, 2, 3]]).value == 6
    assert pyhub.call("np.arange", [3]).value == [0, 1, 2]
    assert pyhub.call("np.add", [2, 3]).value == 5


def test_an_entry_naming_one_callable(pyhub: cncf.Hub) -> None:
    h = pyhub.load(FIXTURES / "npvalues", name="mean", entry="numpy:mean", requirements=NUMPY)
    assert h.state == "ready", h.observation
    assert [op.rpartition(".")[2] for op in h.operations] == ["mean"]
    assert pyhub.call("mean.mean", [[2, 4]]).value == 3.0


def test_an_entry_with_no_operation_fails_at_load(pyhub: cncf.Hub) -> None:
    h = pyhub.load(FIXTURES / "npvalues", name="empty", entry="nothing", requirements=NUMPY)
    assert h.state == "failed"
    assert h.observation is not None
    assert h.observation.code.value == "entry_not_found"
    assert h.observation.stage.value == "load"


@pytest.mark.parametrize(("init", "after"), [([10], 11), ({"start": 10, "step": 5}, 15), (None, 1)])
def test_init_gives_the_constructor_its_arguments(pyhub: cncf.Hub, init: object, after: int) -> None:
    h = pyhub.load(FIXTURES / "npvalues", name="c", entry="npvalues:Counter", requirements=NUMPY, init=init)
    assert h.state == "ready", h.observation
    assert pyhub.call("c.increment", []).value == after


def test_init_that_the_constructor_refuses(pyhub: cncf.Hub) -> None:
    h = pyhub.load(FIXTURES / "npvalues", name="c", entry="npvalues:Counter", requirements=NUMPY, init={"nope": 1})
    assert h.state == "failed"
    assert h.observation is not None
    assert h.observation.code.value == "constructor_failed"
    assert h.observation.stage.value == "instantiate"


# ---------------------------------------------------------------------------
# An old sdist: uv's output once and trimmed; build constraints
# ---------------------------------------------------------------------------


def _yaml_component(tmp_path, constraints: list[str] | None):  # noqa: ANN001, ANN202
    folder = tmp_path / "yamlc"
    folder.mkdir()
    (folder / "yamlc.py").write_text("import yaml\n\n\ndef dump(value):\n    return yaml.safe_dump(value)\n")
    toml = '[component]\nname = "yamlc"\nentry = "yamlc"\nrequirements = ["PyYAML==5.4.1"]\n'
    if constraints is not None:
        toml += f"build_constraints = {constraints!r}\n".replace("'", '"')
    (folder / "cncf.toml").write_text(toml)
    return folder


@pytest.mark.skipif(__import__("sys").version_info < (3, 11), reason="PyYAML 5.4.1 builds from its sdist on 3.11+")
def test_old_sdist_failure_is_trimmed_and_kept_whole_in_a_log(
    pyhub: cncf.Hub,
    tmp_path,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pathlib import Path

    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))  # no wheel built by an earlier run
    h = pyhub.load(_yaml_component(tmp_path, None))
    assert h.state == "failed"
    obs = h.observation
    assert obs is not None and obs.code.value == "environment_failed" and obs.stage.value == "load"
    excerpt = obs.attributes["resolver_output"]
    log = Path(obs.attributes["log"])
    whole = log.read_text().splitlines()
    assert obs.attributes["dropped_lines"] > 0
    assert len(excerpt.splitlines()) <= 45 < len(whole)
    assert whole[-2].strip() in excerpt  # the cause at the end of the backend's output is kept
    assert excerpt not in obs.message  # shown once: the message names the failure, the excerpt follows


@pytest.mark.skipif(__import__("sys").version_info < (3, 11), reason="PyYAML 5.4.1 builds from its sdist on 3.11+")
def test_build_constraints_let_an_old_sdist_build(pyhub: cncf.Hub, tmp_path) -> None:  # noqa: ANN001
    h = pyhub.load(_yaml_component(tmp_path, ["cython<3"]))
    assert h.state == "ready", h.observation
    assert pyhub.call("yamlc.dump", [{"a": [1, 2]}]).value == "a:\n- 1\n- 2\n"


@pytest.mark.parametrize("form", ["python", "inline"])
def test_init_reaches_a_collaborator_created_early(pyhub: cncf.Hub, form: str) -> None:
    from tests.python_form.conftest import FIXTURES as PY

    h = pyhub.load(PY / "echo", name="listed", entry="echo:Listed", form=form, init={"names": ["ping", "pong"]})
    assert h.state == "ready", h.observation
    assert pyhub.call("listed.pong", []).value == "pong!"
