"""Over HTTP the status says whose fault it is (brief sections 11 and 14):
a component that rejects its arguments answers 400 with the code
``rejected`` and its own message; an exception of its own answers 500 with
``raised``.  One real ``cncf serve`` hosting the contract suite's ``Picky``
in every form: python, inline (asked for in the hub file), command (the
bundled Node worker) and jar (its Java twin, compiled here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, require_tool
from tests.http.conftest import Served, start
from tests.jar.conftest import fat_jar, javac

pytestmark = pytest.mark.slow  # a JVM host and a Node worker start

PYTHON = FIXTURES / "contract" / "python"
COMMAND = FIXTURES / "contract" / "command"
PICKY_JAVA = FIXTURES / "contract" / "jar-picky" / "src"
NODE_WORKER = Path(__file__).resolve().parents[2] / "examples" / "node-counter" / "worker.js"
FORMS = ("python", "inline", "command", "jar")


def _hubfile(folder: Path, jar: Path) -> Path:
    entries = {
        "python": f'target = "{PYTHON}"\nform = "python"\nentry = "contract_picky:Picky"',
        "inline": f'target = "{PYTHON}"\nform = "inline"\nentry = "contract_picky:Picky"',
        "command": (
            f'target = "{COMMAND}"\nform = "command"\ncommand = ["node", "{NODE_WORKER}"]\n'
            f'entry = "{COMMAND / "picky.js"}:Picky"'
        ),
        "jar": f'target = "{jar}"\nform = "jar"\nentry = "contract.Picky"',
    }
    text = "".join(f'[[component]]\nname = "picky-{form}"\n{body}\n\n' for form, body in entries.items())
    path = folder / "hub.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def served(jvm: Any, jvm_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_tool("node")
    build = tmp_path_factory.mktemp("picky")
    classes = javac(sorted(PICKY_JAVA.rglob("*.java")), build / "classes", [jvm.api_jar], parameters=True)
    jar = fat_jar(build / "picky.jar", [classes])
    s = start(_hubfile(build, jar), build / "home", env={"CNCF_CACHE": str(jvm_cache)})
    yield s
    code, err = s.stop()
    assert code == 0, err


def _post(served: Served) -> Callable[..., Any]:
    return lambda path, body: served.http.post(path, json=body)


@pytest.mark.parametrize("form", FORMS)
def test_a_rejection_answers_400_with_the_components_message(served: Served, form: str) -> None:
    assert served.count == len(FORMS)
    post = _post(served)
    assert post(f"/rest/v1/picky-{form}/take", [2]).json() == {"ok": True, "value": 2}
    r = post(f"/rest/v1/picky-{form}/take", {"qty": -1} if form != "command" else [-1])
    assert r.status_code == 400, r.text
    assert r.headers["x-cncf-observation-code"] == "rejected"
    obs = r.json()["observation"]
    assert (obs["code"], obs["stage"], obs["category"], obs["retryable"]) == ("rejected", "execute", "argument", False)
    assert obs["message"] == "qty must be a positive whole number, got -1"
    assert obs["attributes"]["field"] == "qty"
    assert post(f"/rest/v1/picky-{form}/taken", None).json()["value"] == 2  # served on, nothing taken


@pytest.mark.parametrize("form", FORMS)
def test_an_exception_of_the_components_own_answers_500(served: Served, form: str) -> None:
    r = _post(served)(f"/rest/v1/picky-{form}/fail", ["a bug"])
    assert r.status_code == 500, r.text
    assert r.headers["x-cncf-observation-code"] == "raised"
    obs = r.json()["observation"]
    assert (obs["code"], obs["category"]) == ("raised", "component")
