"""Operation parameters as JSON Schema: one source for the OpenAPI document and the argument check.

A boundary describes an operation's parameters (``Parameter``: name, kind,
required, and where the form knows it the JSON Schema of the values it
admits: from Python annotations in the worker runtime, from Java / Scala
signatures in the JVM host).  From that one description this module makes

- :func:`body_schema`: the request body the OpenAPI document publishes (a JSON
  object of named arguments, or an array of positional ones, or nothing when
  no parameter is required), and
- :func:`checker`: the check the engine runs on every call's arguments before
  it runs or is queued (``invalid_arguments``, HTTP 400), which admits exactly
  the bodies :func:`body_schema` admits: a body the document admits is never
  refused here, and one it refuses never reaches a component or the job store.

:func:`validate` is the JSON Schema (2020-12) subset the descriptions use:
``type``, ``enum``, ``const``, ``anyOf`` / ``oneOf`` / ``allOf`` / ``not``,
``properties`` / ``required`` / ``additionalProperties``, ``items`` /
``prefixItems`` / ``minItems`` / ``maxItems`` / ``uniqueItems``, the string and
number bounds and ``pattern``.  Any other keyword (``format``, ``$ref``) is an
annotation: it admits every value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

Check = Callable[[tuple[Any, ...], Mapping[str, Any]], str | None]

_NAMED = ("named", "any")
_POSITIONAL = ("positional", "any")


def _dicts(params: Iterable[Any]) -> list[dict[str, Any]]:
    return [p if isinstance(p, dict) else p.to_dict() for p in params]


def _untyped(p: dict[str, Any]) -> dict[str, Any]:
    return p.get("schema") or {}


def _union(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    if not schemas or any(not s for s in schemas):
        return {}
    out: list[dict[str, Any]] = []
    for s in schemas:
        if s not in out:
            out.append(s)
    return out[0] if len(out) == 1 else {"anyOf": out}


def object_schema(params: Iterable[Any]) -> dict[str, Any] | None:
    """Named arguments as a JSON object, or None when a required parameter cannot be named."""
    ps = _dicts(params)
    if any(p["required"] and p["kind"] == "positional" for p in ps):
        return None
    named = [p for p in ps if p["kind"] in _NAMED]
    obj: dict[str, Any] = {"type": "object", "properties": {p["name"]: _untyped(p) for p in named}}
    required = [p["name"] for p in named if p["required"]]
    if required:
        obj["required"] = required
    varkw = next((p for p in ps if p["kind"] == "varkw"), None)
    obj["additionalProperties"] = _untyped(varkw) if varkw is not None else False
    return obj


def array_schema(params: Iterable[Any], min_varargs: int = 0) -> dict[str, Any] | None:
    """Positional arguments as a JSON array, or None when a required parameter cannot be positional."""
    ps = _dicts(params)
    if any(p["required"] and p["kind"] == "named" for p in ps):
        return None
    positional = [p for p in ps if p["kind"] in _POSITIONAL]
    varargs = next((p for p in ps if p["kind"] == "varargs"), None)
    items = [_untyped(p) for p in positional]
    arr: dict[str, Any] = {"type": "array"}
    if items:
        arr["prefixItems"] = items
    if varargs is not None:
        arr["items"] = _untyped(varargs)
    else:
        arr["items"] = _union(items) if items else {}
        arr["maxItems"] = len(items)
    least = max((i + 1 for i, p in enumerate(positional) if p["required"]), default=0)
    if varargs is not None and min_varargs:
        least = len(positional) + min_varargs
    if least:
        arr["minItems"] = least
    return arr


def _varargs(params: Iterable[Any]) -> bool:
    return any(p["kind"] == "varargs" for p in _dicts(params))


def _not_null(p: dict[str, Any]) -> dict[str, Any]:
    """An overload's parameter without its null: a null fits every reference type equally
    (the JVM host's ambiguous_operation), so an overloaded method takes values only."""
    s = p.get("schema")
    if not isinstance(s, dict) or list(s) != ["anyOf"]:
        return p
    return {**p, "schema": _strip_null(s)}


def _strip_null(s: dict[str, Any]) -> dict[str, Any]:
    if list(s) != ["anyOf"]:
        return s
    rest: list[dict[str, Any]] = []
    for a in s["anyOf"]:
        a = _strip_null(a) if isinstance(a, dict) else a
        for b in a["anyOf"] if isinstance(a, dict) and list(a) == ["anyOf"] else [a]:
            if b != {"type": "null"} and b not in rest:
                rest.append(b)
    if not rest:
        return s
    return rest[0] if len(rest) == 1 else {"anyOf": rest}


def _overloads(overloads: Iterable[Iterable[Any]]) -> list[tuple[list[dict[str, Any]], int]]:
    """Each overload with the varargs values it needs: with several varargs overloads, at least
    one (no value at all would fit them all equally: the JVM host's ambiguous_operation)."""
    each = [[_not_null(p) for p in _dicts(o)] for o in overloads]
    several = sum(1 for o in each if _varargs(o)) > 1
    return [(o, 1 if several and _varargs(o) else 0) for o in each]


def body_schema(
    params: Iterable[Any] | None, overloads: Iterable[Iterable[Any]] | None = None, min_varargs: int = 0
) -> tuple[dict[str, Any], bool]:
    """The request body's schema and whether a body is required (no parameter known: any
    object or array).  ``overloads``: an operation with several signatures (params None):
    a body fits one of them."""
    if params is None and overloads:
        forms: list[dict[str, Any]] = []
        needed = True
        for o, least in _overloads(overloads):
            body, required = body_schema(o, min_varargs=least)
            needed = needed and required
            for f in body.get("anyOf", [body]):
                f = {k: v for k, v in f.items() if k != "description"}
                if f not in forms:
                    forms.append(f)
        return ({"anyOf": forms, "description": "the arguments of one of its overloads"}, needed)
    if params is None:
        return {
            "description": "named arguments (an object) or positional ones (an array); this form does not say which",
            "anyOf": [{"type": "object"}, {"type": "array", "items": {}}],
        }, False
    ps = _dicts(params)
    named = object_schema(ps) if not min_varargs else None  # (varargs values are positional)
    forms = [s for s in (named, array_schema(ps, min_varargs)) if s is not None]
    if not forms:  # a required positional-only and a required named-only parameter: no JSON body fits
        names = [p["name"] for p in ps if p["required"] and p["kind"] not in ("varargs", "varkw")]
        forms = [{"type": "object", "properties": {}, "required": names, "additionalProperties": False}]
    forms[0]["description"] = "named arguments" if forms[0]["type"] == "object" else "positional arguments"
    if len(forms) > 1:
        forms[1]["description"] = "positional arguments"
    required = bool(min_varargs) or any(p["required"] and p["kind"] not in ("varargs", "varkw") for p in ps)
    return (forms[0] if len(forms) == 1 else {"anyOf": forms}), required


# ---------------------------------------------------------------------------
# The argument check
# ---------------------------------------------------------------------------


def checker(
    params: Iterable[Any] | None, overloads: Iterable[Iterable[Any]] | None = None, min_varargs: int = 0
) -> Check | None:
    """The check of ``(args, kwargs)`` for these parameters (None: nothing can be checked);
    for an overloaded operation, arguments that fit one of the overloads pass."""
    if params is None and overloads:
        checks = [c for c in (checker(o, min_varargs=least) for o, least in _overloads(overloads)) if c is not None]

        def check_any(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
            whys = [c(args, kwargs) for c in checks]
            if any(w is None for w in whys):
                return None
            return "fits none of its overloads: " + "; ".join(dict.fromkeys(w for w in whys if w))

        return check_any
    if params is None:
        return None
    ps = _dicts(params)
    positional = [(p["name"], _compile(p.get("schema"))) for p in ps if p["kind"] in _POSITIONAL]
    named = {p["name"]: _compile(p.get("schema")) for p in ps if p["kind"] in _NAMED}
    varargs = next((p for p in ps if p["kind"] == "varargs"), None)
    varkw = next((p for p in ps if p["kind"] == "varkw"), None)
    vararg_check = _compile(varargs.get("schema")) if varargs else None
    varkw_check = _compile(varkw.get("schema")) if varkw else None
    required = [p["name"] for p in ps if p["required"] and p["kind"] not in ("varargs", "varkw")]
    npos = len(positional)
    # the fast path (positional arguments only): which must be there, what each one's check is
    req_positions = [i for i, (n, _) in enumerate(positional) if n in required]
    least = max(req_positions, default=-1) + 1
    named_only_required = [n for n in required if n not in {m for m, _ in positional}]
    pos_checks = [(i, n, c) for i, (n, c) in enumerate(positional) if c is not None]
    typed_varargs = vararg_check is not None

    def general(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
        filled = set()
        for i, value in enumerate(args):
            if i < npos:
                name, fn = positional[i]
                filled.add(name)
            else:
                name, fn = f"*{varargs['name'] if varargs else 'args'}[{i - npos}]", vararg_check
            if fn is not None:
                why = fn(value)
                if why is not None:
                    return f"argument {name!r} (position {i + 1}): {why}"
        for key, value in kwargs.items():
            if key in filled:
                return f"got multiple values for argument {key!r}"
            if key in named:
                fn = named[key]
            elif varkw is not None:
                fn = varkw_check
            else:
                return f"got an unexpected keyword argument {key!r}"
            if fn is not None:
                why = fn(value)
                if why is not None:
                    return f"argument {key!r}: {why}"
        missing = [n for n in required if n not in filled and not (n in kwargs and n in named)]
        if missing:
            return f"missing required argument{'' if len(missing) == 1 else 's'}: {', '.join(missing)}"
        return None

    named_checks = [(k, fn) for k, fn in named.items() if fn is not None]
    required_set = frozenset(required)

    def by_name(kwargs: Mapping[str, Any]) -> bool:
        """The named-arguments fast path (an HTTP body is a dict): True when every
        key is a known parameter, every required one is there and each typed value
        passes; anything else is :func:`general`'s to phrase."""
        if not (required_set <= kwargs.keys() and kwargs.keys() <= named.keys()):
            return False
        for key, fn in named_checks:  # noqa: SIM110 - a loop: no generator on the hot path
            if key in kwargs and fn(kwargs[key]) is not None:
                return False
        return True

    def check(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
        n = len(args)
        if not n and kwargs and not min_varargs and by_name(kwargs):
            return None
        if n > npos and varargs is None:
            return f"takes {npos} positional argument{'' if npos == 1 else 's'} but {n} were given"
        if min_varargs and (kwargs or n < npos + min_varargs):
            return f"takes {npos} positional argument{'' if npos == 1 else 's'} and at least {min_varargs} more"
        if kwargs or n < least or named_only_required or (typed_varargs and n > npos):
            return general(args, kwargs)
        for i, name, fn in pos_checks:
            if i >= n:
                break
            why = fn(args[i])
            if why is not None:
                return f"argument {name!r} (position {i + 1}): {why}"
        return None

    return check


# ---------------------------------------------------------------------------
# JSON Schema, the subset above
# ---------------------------------------------------------------------------

Validator = Callable[[Any], str | None]
_EXACT: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "integer": frozenset({int}),
    "number": frozenset({int, float}),
    "boolean": frozenset({bool}),
    "array": frozenset({list, tuple}),
    "object": frozenset({dict}),
}


def _compile(s: Any) -> Validator | None:
    """A value's check for schema ``s`` (None: any value). A plain type (with bounds) is one
    set lookup for a value of exactly that type; anything else, and every refusal (its
    message), is :func:`validate`'s."""
    if not isinstance(s, dict) or not s:
        return None
    t = s.get("type")
    if isinstance(t, str) and t in _EXACT and set(s) <= {"type", "minimum", "maximum", "description", "format"}:
        exact = _EXACT[t]
        lo, hi = s.get("minimum"), s.get("maximum")
        if lo is None and hi is None:

            def plain(v: Any) -> str | None:
                return None if type(v) in exact else validate(s, v)

            return plain

        def bounded(v: Any) -> str | None:
            if type(v) in exact and (lo is None or v >= lo) and (hi is None or v <= hi):
                return None
            return validate(s, v)

        return bounded
    return lambda v: validate(s, v)


def _is(kind: str, v: Any) -> bool:
    if kind == "string":
        return isinstance(v, str)
    if kind == "integer":
        if isinstance(v, bool):
            return False
        return isinstance(v, int) or (isinstance(v, float) and v.is_integer())  # JSON: 2.0 is the integer 2
    if kind == "number":
        return isinstance(v, int | float) and not isinstance(v, bool)
    if kind == "boolean":
        return isinstance(v, bool)
    if kind == "null":
        return v is None
    if kind == "array":
        return isinstance(v, list | tuple)
    if kind == "object":
        return isinstance(v, dict)
    return True


def _kind(v: Any) -> str:
    for k in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is(k, v):
            return k
    return type(v).__name__


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


@lru_cache(maxsize=256)
def _pattern(p: str) -> re.Pattern[str] | None:
    try:
        return re.compile(p)
    except re.error:
        return None


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def validate(schema: Any, value: Any, where: str = "") -> str | None:  # noqa: C901 - one keyword a branch
    """Why ``value`` does not fit ``schema`` (None when it does)."""
    if schema is True or schema is None or schema == {}:
        return None
    if schema is False:
        return f"{where or 'the value'} is not allowed"
    if not isinstance(schema, dict):
        return None
    at = f"{where}: " if where else ""
    t = schema.get("type")
    if t is not None:
        kinds = t if isinstance(t, list) else [t]
        if not any(_is(k, value) for k in kinds):
            return f"{at}expected {' or '.join(map(str, kinds))}, got {_kind(value)}"
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        return f"{at}{_show(value)} is not one of {', '.join(map(_show, schema['enum']))}"
    if "const" in schema and not _same(value, schema["const"]):
        return f"{at}expected {_show(schema['const'])}"
    if "anyOf" in schema:
        whys = [validate(s, value, where) for s in schema["anyOf"]]
        if all(w is not None for w in whys):
            # the first alternative's reason names what was expected (an enum's constants, a type)
            shown = [w for s, w in zip(schema["anyOf"], whys, strict=True) if s != {"type": "null"}]
            return (shown or whys)[0] if len(whys) <= 2 else f"{at}{_show(value)} fits none of the admitted shapes"
    if "oneOf" in schema and sum(validate(s, value) is None for s in schema["oneOf"]) != 1:
        return f"{at}{_show(value)} does not fit exactly one of the admitted shapes"
    for s in schema.get("allOf", ()):
        why = validate(s, value, where)
        if why is not None:
            return why
    if "not" in schema and validate(schema["not"], value) is None:
        return f"{at}{_show(value)} is not allowed"
    if isinstance(value, str):
        n = len(value)
        if "minLength" in schema and n < schema["minLength"]:
            return f"{at}shorter than {schema['minLength']} characters"
        if "maxLength" in schema and n > schema["maxLength"]:
            return f"{at}longer than {schema['maxLength']} characters"
        if "pattern" in schema:
            rx = _pattern(str(schema["pattern"]))
            if rx is not None and rx.search(value) is None:
                return f"{at}does not match {schema['pattern']!r}"
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{at}less than {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{at}more than {schema['maximum']}"
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            return f"{at}not more than {schema['exclusiveMinimum']}"
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            return f"{at}not less than {schema['exclusiveMaximum']}"
        m = schema.get("multipleOf")
        if isinstance(m, int | float) and m > 0:
            q = value / m
            if not (math.isfinite(q) and abs(q - round(q)) < 1e-9):
                return f"{at}not a multiple of {m}"
    elif isinstance(value, list | tuple):
        return _array(schema, value, where, at)
    elif isinstance(value, dict):
        return _object(schema, value, where, at)
    return None


def _array(schema: dict[str, Any], value: list[Any] | tuple[Any, ...], where: str, at: str) -> str | None:
    n = len(value)
    if "minItems" in schema and n < schema["minItems"]:
        return f"{at}fewer than {schema['minItems']} items"
    if "maxItems" in schema and n > schema["maxItems"]:
        return f"{at}more than {schema['maxItems']} items"
    prefix = schema.get("prefixItems") or []
    items = schema.get("items")
    for i, v in enumerate(value):
        s = prefix[i] if i < len(prefix) else items
        if s is not None:
            why = validate(s, v, f"{where}[{i}]")
            if why is not None:
                return why
    if schema.get("uniqueItems"):
        for i in range(n):
            for j in range(i):
                if _same(value[i], value[j]):
                    return f"{at}items {j} and {i} are equal"
    return None


def _object(schema: dict[str, Any], value: dict[Any, Any], where: str, at: str) -> str | None:
    for name in schema.get("required", ()):
        if name not in value:
            return f"{at}missing property {name!r}"
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for k, v in value.items():
        if k in props:
            s = props[k]
        elif extra is False:
            return f"{at}unexpected property {_show(k)}"
        else:
            s = extra
        if s is not None:
            why = validate(s, v, f"{where}.{k}" if where else str(k))
            if why is not None:
                return why
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        return f"{at}fewer than {schema['minProperties']} properties"
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        return f"{at}more than {schema['maxProperties']} properties"
    return None


__all__ = ["Check", "array_schema", "body_schema", "checker", "object_schema", "validate"]
