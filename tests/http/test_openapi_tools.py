"""The OpenAPI document as its users' own tools read it, against a real
``cncf serve examples/hub.toml``: ``openapi-python-client`` generates a client
that calls the examples with typed parameters, and schemathesis (``--checks
all``) finds nothing: no undeclared status, no response outside its schema, no
body the schema admits refused, none it refuses accepted, 405 with ``Allow``
for every undeclared method, and no failure of the reception itself."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_tool
from tests.http.conftest import Served, start
from tests.test_main_job import ROOT, build_examples

pytestmark = pytest.mark.slow


def _tool(name: str) -> str:
    """The tool installed beside this interpreter (the ``test`` extra), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else require_tool(name)


def _generator() -> list[str]:
    """openapi-python-client in an environment of its own (``uv tool run``): it pins
    typer and httpx below what the hub uses, so it is not in the ``test`` extra."""
    beside = Path(sys.executable).parent / "openapi-python-client"
    if beside.is_file():
        return [str(beside)]
    return [require_tool("uv"), "tool", "run", "--from", "openapi-python-client>=0.29", "openapi-python-client"]


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_tool("node")
    require_tool("java")
    build_examples()
    s = start(ROOT / "examples" / "hub.toml", tmp_path_factory.mktemp("openapi") / "home", timeout=600)
    try:
        yield s
    finally:
        code, err = s.stop()
    assert code == 0, err
    assert "Traceback" not in err, err  # no request made the reception fail outside its guard


def _operations(doc: dict[str, Any]) -> list[str]:
    return [op["operationId"] for item in doc["paths"].values() for op in item.values()]


def test_a_generated_client_calls_the_examples_with_typed_parameters(examples: Served, tmp_path: Path) -> None:
    doc = examples.http.get("/rest/v1/openapi.json").json()
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(doc))
    r = subprocess.run(
        [*_generator(), "generate", "--path", str(spec), "--output-path", str(tmp_path / "hub_client")]
        + ["--meta", "none"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Warning" not in out and "Unable" not in out, out  # it skipped nothing
    generated = [p for p in (tmp_path / "hub_client" / "api").glob("*/*.py") if p.name != "__init__.py"]
    assert len(generated) == len(_operations(doc)), out

    sys.path.insert(0, str(tmp_path))
    try:
        client_mod = importlib.import_module("hub_client")
        increment = importlib.import_module("hub_client.api.counter.counter_default_increment")
        body_mod = importlib.import_module("hub_client.models.counter_default_increment_body_type_0")
        abbreviate = importlib.import_module("hub_client.api.strings.strings_default_abbreviate")
        parse = importlib.import_module("hub_client.api.packaging24.packaging24_default_parse")
        parse_body = importlib.import_module("hub_client.models.packaging_24_default_parse_body_type_0")
        components = importlib.import_module("hub_client.api.hub.hub_components")
        Body = body_mod.CounterDefaultIncrementBodyType0
        # typed from the example's annotation (by: int = 1)
        assert "int" in str(Body.__init__.__annotations__["by"])
        with client_mod.Client(base_url=examples.url, timeout=60) as client:
            first = increment.sync_detailed(client=client, body=Body(by=2))
            assert first.status_code == 200, first.content
            second = increment.sync(client=client, body=Body(by=3))
            assert second.ok is True and second.value == first.parsed.value + 3
            # a value the schema refuses: 400 invalid_arguments, before the component runs
            wrong = increment.sync_detailed(client=client, body=Body(by="three"))
            assert wrong.status_code == 400
            assert wrong.parsed.observation.code.value == "invalid_arguments"
            assert increment.sync(client=client, body=Body(by=0)).value == second.value
            # a Java method's parameters (String, int), positional
            short = abbreviate.sync(client=client, body=["an execution hub for components", 10])
            assert short.value == "an exec..."
            # named, typed from `text: str`
            parsed = parse.sync(client=client, body=parse_body.Packaging24DefaultParseBodyType0(text="1.0.post1"))
            assert parsed.value["ok"] is True
            # the hub's own routes are in the document too
            listed = components.sync(client=client)
            assert {"counter", "strings", "inventory"} <= {c.name for c in listed.components}
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "hub_client" or m.startswith("hub_client.")]:
            del sys.modules[name]


def test_a_wrong_method_is_405_with_allow(examples: Served) -> None:
    h = examples.http
    r = h.put("/rest/v1/counter/default/increment", json={"by": 1})
    assert (r.status_code, r.json()["observation"]["code"], r.headers["allow"]) == (405, "route_not_found", "POST")
    r = h.delete("/healthz")
    assert (r.status_code, r.headers["allow"]) == (405, "GET, HEAD")
    r = h.request("TRACE", "/hub/v1/components/counter")
    assert (r.status_code, r.headers["allow"]) == (405, "DELETE, GET, HEAD")
    assert h.get("/rest/v1/nowhere/at/all/really").status_code == 404


def test_schemathesis_runs_clean_against_the_served_examples(examples: Served, tmp_path: Path) -> None:
    # One worker: two threads of the tool's own generator can trip a CPython AST race
    # (a "Runtime Error" of schemathesis itself, not a finding).
    # A component's own failure is 500 (raised), a crashed one 503, a call past its
    # timeout 504 (docs/http.md): those are declared answers, not the reception's
    # failures, which the Observations below must not show.
    # An operation whose parameters the hub cannot know (a Collaborator, the command
    # form) has a body schema that admits any arguments: there the component alone
    # judges them, and its refusal (400: rejected, operation_failed) is its answer.
    doc = examples.http.get("/rest/v1/openapi.json").json()
    unknown = [
        op["operationId"]
        for item in doc["paths"].values()
        for op in item.values()
        if op["operationId"].count(".") == 2 and "x-cncf-params" not in op and "x-cncf-overloads" not in op
    ]
    assert {"inventory.stock.add", "node-counter.default.increment"} <= set(unknown)
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        '[checks.not_a_server_error]\nexpected-statuses = ["2xx", "3xx", "4xx", "500", "503", "504"]\n\n'
        "[[operations]]\n"
        f"include-operation-id-regex = {json.dumps('^(' + '|'.join(re.escape(u) for u in unknown) + ')$')}\n"
        '[operations.checks.positive_data_acceptance]\nexpected-statuses = ["2xx", "400", "401", "403", "404", "5xx"]\n'
    )
    r = subprocess.run(
        [_tool("schemathesis"), "--config-file", str(config), "run", f"{examples.url}/rest/v1/openapi.json"]
        + ["--checks", "all", "--max-examples", "2", "--no-shrink", "--workers", "1", "--max-time", "110"]
        + ["--seed", "20261203", "--output-truncate", "true"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    tail = r.stdout[-12000:] + r.stderr[-4000:]
    assert r.returncode == 0, tail
    assert " passed" in r.stdout and "Tested:" in r.stdout, tail
    groups = examples.http.get("/hub/v1/observations").json()["groups"]
    assert "internal_error" not in {g["code"] for g in groups}, groups
