"""One source of truth: the body schema the OpenAPI document publishes and the
engine's argument check admit exactly the same calls; the check's JSON Schema
subset agrees with a reference validator; Python annotations become schemas in
the worker runtime (stdlib only)."""

from __future__ import annotations

import dataclasses
import enum
import itertools
from typing import Any, Literal, Optional, TypedDict, Union

import jsonschema
import pytest

from cncf import schema
from cncf.worker import runtime
from tests.http.conftest import Served

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -7,
    2.0,
    2.5,
    2**40,
    "",
    "a",
    "abc",
    "2",
    [],
    [1],
    [1, "a"],
    ["a", "b"],
    [[1], [2]],
    {},
    {"x": 1},
    {"x": 1, "y": 2.5},
    {"x": "1"},
    {"x": 1, "extra": True},
]

SCHEMAS: list[dict[str, Any]] = [
    {},
    {"type": "integer"},
    {"type": "number", "minimum": 0, "maximum": 3},
    {"type": "string", "minLength": 1, "maxLength": 2},
    {"type": "string", "pattern": "^[a-z]+$"},
    {"type": "boolean"},
    {"type": "null"},
    {"type": ["string", "null"]},
    {"enum": ["a", 1, None]},
    {"const": 1},
    {"anyOf": [{"type": "integer"}, {"type": "null"}]},
    {"oneOf": [{"type": "integer"}, {"type": "number"}]},
    {"type": "array", "items": {"type": "integer"}},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
    {"type": "array", "items": {}, "minItems": 1, "maxItems": 1},
    {"type": "array", "uniqueItems": True},
    {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"], "additionalProperties": False},
    {"type": "object", "additionalProperties": {"type": "number"}},
    {"type": "object", "maxProperties": 1},
    {"not": {"type": "string"}},
    {"allOf": [{"type": "number"}, {"exclusiveMinimum": 1}]},
    {"type": "number", "multipleOf": 0.5},
]


@pytest.mark.parametrize("s", SCHEMAS, ids=range(len(SCHEMAS)))
def test_the_check_agrees_with_a_reference_validator(s: dict[str, Any]) -> None:
    ref = jsonschema.Draft202012Validator(s)
    for v in VALUES:
        assert (schema.validate(s, v) is None) == ref.is_valid(v), (s, v, schema.validate(s, v))


def P(name: str, kind: str = "any", required: bool = True, s: dict[str, Any] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": kind, "required": required}
    if s is not None:
        d["schema"] = s
    return d


INT, STR = {"type": "integer"}, {"type": "string"}
SIGNATURES: list[list[dict[str, Any]]] = [
    [],
    [P("x", s=INT)],
    [P("x", s=INT), P("y", required=False, s=STR)],
    [P("x"), P("y", "named", s=INT)],
    [P("x", "positional", s=INT), P("y", "named", False)],
    [P("x", s=INT), P("rest", "varargs", False, STR)],
    [P("x", required=False), P("kw", "varkw", False, INT)],
    [P("arg0", "positional", s=STR), P("arg1", "positional", s=INT)],
    [P("a", "positional", s=INT), P("b", "named", s=INT)],  # no JSON body fits both
]
BODIES: list[Any] = [
    None,
    {},
    [],
    {"x": 1},
    {"x": "1"},
    {"x": 1, "y": "a"},
    {"x": 1, "y": 2},
    {"x": 1, "z": 3},
    {"y": 1},
    [1],
    ["1"],
    [1, "a"],
    [1, 2],
    [1, "a", "b"],
    ["a", 1],
    {"x": 1, "kw": 2},
    {"kw": "no"},
    {"a": 1, "b": 2},
    [2.0],
]


def _split(body: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if body is None:
        return (), {}
    return (tuple(body), {}) if isinstance(body, list) else ((), body)


@pytest.mark.parametrize("sig", SIGNATURES, ids=range(len(SIGNATURES)))
def test_the_published_body_and_the_check_admit_the_same_calls(sig: list[dict[str, Any]]) -> None:
    body, required = schema.body_schema(sig)
    ref = jsonschema.Draft202012Validator(body)
    jsonschema.Draft202012Validator.check_schema(body)
    check = schema.checker(sig)
    assert check is not None
    for b in BODIES:
        admitted = (not required) if b is None else ref.is_valid(b)
        assert admitted == (check(*_split(b)) is None), (sig, b, check(*_split(b)))
    for arr in (s for s in body.get("anyOf", [body]) if s.get("type") == "array"):
        assert "items" in arr  # generators need items on every array


def test_overloads_fit_one_of_them_and_say_so() -> None:
    overloads = [
        [P("arg0", "positional", s=STR), P("arg1", "positional", s=INT)],
        [P("arg0", "positional", s=STR), P("arg1", "positional", s=STR), P("arg2", "positional", s=INT)],
        [P("a", "positional", s=STR), P("more", "varargs", False, STR)],
        [P("a", "positional", s=STR), P("more", "varargs", False, INT)],
    ]
    body, required = schema.body_schema(None, overloads)
    check = schema.checker(None, overloads)
    assert check is not None and required
    ref = jsonschema.Draft202012Validator(body)
    for b in [["a", 1], ["a", "b", 2], ["a", "b"], ["a", 1, 2], ["a"], [1], ["a", 1.5], ["a", "b", "c"], {}]:
        assert ref.is_valid(b) == (check(*_split(b)) is None), b
    # ["a"] would fit both varargs overloads with no value: ambiguous for the JVM, refused by both
    assert check(("a",), {}) is not None


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    y: float = 0.0
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Tree:
    name: str
    children: list[Tree]


class Options(TypedDict, total=False):
    depth: int


def annotated(
    a: int,
    b: str = "x",
    c: Optional[float] = None,  # noqa: UP045 - the typing spelling, as older components write it
    d: list[int] | None = None,
    *rest: bool,
    color: Color,
    point: Point,
    mode: Literal["fast", "slow"] = "fast",
    tree: Tree | None = None,
    pair: tuple[int, str] = (1, ""),
    flags: dict[str, bool] | None = None,
    opts: Options | None = None,
    either: Union[int, str] = 0,  # noqa: UP007
    legacy: int = None,  # type: ignore[assignment]  # PEP 484's implicit Optional
    **extra: float,
) -> None:
    pass


def test_python_annotations_become_the_schemas_of_their_values() -> None:
    params = runtime.parameters(annotated, 0)
    assert params is not None
    got = {p["name"]: p.get("schema") for p in params}
    assert got["a"] == {"type": "integer"} and got["b"] == {"type": "string"}
    assert got["c"] == {"anyOf": [{"type": "number"}, {"type": "null"}]}
    assert got["d"] == {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]}
    assert got["rest"] == {"type": "boolean"} and got["extra"] == {"type": "number"}  # each value
    assert got["color"] == {"enum": ["red", "blue"]}
    assert got["point"]["required"] == ["x"] and got["point"]["properties"]["tags"] == {
        "type": "array",
        "items": {"type": "string"},
    }
    assert got["mode"] == {"enum": ["fast", "slow"]}
    tree = got["tree"]["anyOf"][0]
    assert tree["properties"]["children"] == {"type": "array", "items": {}}  # recursion: any value below
    assert got["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}] and got["pair"]["maxItems"] == 2
    assert got["flags"]["anyOf"][0] == {"type": "object", "additionalProperties": {"type": "boolean"}}
    assert got["opts"]["anyOf"][0]["properties"] == {"depth": {"type": "integer"}}
    assert got["either"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert got["legacy"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    for p in params:  # every schema is a valid one
        jsonschema.Draft202012Validator.check_schema(p["schema"])
    check = schema.checker(params)
    assert check is not None
    assert check((1,), {"color": "red", "point": {"x": 1}}) is None
    assert check((1,), {"color": "green", "point": {"x": 1}}) is not None
    assert check(("1",), {"color": "red", "point": {"x": 1}}) is not None
    assert check((1, "b", None, [1], True, False), {"color": "red", "point": {"x": 1}, "z": 1.5}) is None
    assert check((1, "b", None, [1], "no"), {"color": "red", "point": {"x": 1}}) is not None


def test_unannotated_and_unknowable_types_admit_any_value() -> None:
    class Own:
        pass

    def f(a, b: Own, c: bytes, d: Any) -> None:  # type: ignore[no-untyped-def]
        pass

    params = runtime.parameters(f, 0)
    assert params is not None
    assert not any(p.get("schema") for p in params)  # no schema, or {}: any value
    check = schema.checker(params)
    assert check is not None and check(([1], {"x": 1}, "x", None), {}) is None


def test_all_combinations_of_two_kinds_keep_the_one_source(subtests: Any = None) -> None:
    kinds = ["positional", "any", "named", "varargs", "varkw"]
    for k1, k2, r1, r2 in itertools.product(kinds, kinds, (True, False), (True, False)):
        if k1 in ("varargs", "varkw") and r1 or k2 in ("varargs", "varkw") and r2:
            continue
        sig = [P("x", k1, r1, INT), P("y", k2, r2, STR)]
        test_the_published_body_and_the_check_admit_the_same_calls(sig)


def test_a_queued_call_that_does_not_fit_is_refused_before_a_job_is_stored(hub_server: Served) -> None:
    h = hub_server.http
    before = len(h.get("/hub/v1/jobs").json()["jobs"])
    for body in ({"nonsense": 1}, [1, 2, 3], {"a": 1}):
        r = h.post("/rest/v1/jobs/add", json=body)
        assert r.status_code == 400, r.text
        obs = r.json()["observation"]
        assert (obs["code"], obs["stage"]) == ("invalid_arguments", "dispatch")
    r = h.post("/rest/v1/jobs/add", content=b"null")  # JSON null is not "no arguments"
    assert (r.status_code, r.json()["observation"]["code"]) == (400, "invalid_arguments")
    assert len(h.get("/hub/v1/jobs").json()["jobs"]) == before  # nothing was stored
    ok = h.post("/rest/v1/jobs/add", json={"a": 1, "b": 2})
    assert ok.status_code == 202
    assert h.get(ok.headers["location"], params={"wait": "20"}).json()["outcome"]["value"] == 3
    # the document says the same: a, b required, nothing else
    body = h.get("/rest/v1/openapi.json").json()["paths"]["/rest/v1/jobs/default/add"]["post"]["requestBody"]
    named = body["content"]["application/json"]["schema"]["anyOf"][0]
    assert (named["required"], named["additionalProperties"], body["required"]) == (["a", "b"], False, True)
