"""cncf worker runtime: hosts one Python component behind the wire protocol.

Run as a script by the hub (``<interpreter> -I -S -u runtime.py``) with the
protocol pipes named in the environment (``docs/wire-protocol.md``).  It must
stay **standard library only and self-contained** (it imports nothing from
the hub) and valid on CPython >= 3.8 and PyPy 3.9: it runs inside the
component's own interpreter and environment and must never add a dependency
to it.

Design notes
------------
* Start-up cost is part of every component's start, so the module imports
  only ``os`` and ``sys`` (both already loaded by the interpreter) and the C
  JSON accelerator ``_json`` directly: ``import json`` drags in ``re`` and
  costs as much as the rest of the start.  Where ``_json`` is missing (PyPy)
  a small pure-Python codec is used instead.  ``traceback`` is imported only
  on a failure path; no ``inspect``: operation parameters come straight from
  code objects.
* The hot path is one blocking ``os.read`` on the requests pipe, one decode,
  a direct call on the main thread, one encode and one ``os.write``: the same
  number of thread hops as a raw pipe ping-pong.  Only ``concurrent`` calls
  run on threads.
* A daemon thread reads the control pipe: ``CANCEL`` sets the running call's
  cooperative flag; EOF there means the hub is gone, and the worker exits
  even if a call never returns (no orphans).
* Failures are converted once, here, into failure records (code, message,
  cause chain with the Python traceback).  What the component prints goes to
  fd 1/2, which the hub captures; frames travel on private duplicates of the
  protocol descriptors, so prints cannot corrupt them.

The component-facing API (``cncf.collaborator``: ``Collaborator``,
``Failure``, ``Rejected``, ``Cancelled``, ``cancelled``, ``check_cancelled``,
``current_call``) is defined here and registered as synthetic modules
``cncf`` / ``cncf.collaborator`` when the component's environment has no
``cncf`` package of its own; it is always reachable as ``_cncf_worker``.
"""

import _thread
import os
import sys

PROTOCOL = 1
MAX_BODY = 64 * 1024 * 1024
# Frame kinds (twin of cncf.wire.frames.Kind).
HELLO, LOAD, LOADED, NEW, INVOKE, CANCEL, UNLOAD, RESULT, PING, SHUTDOWN, EVENT = range(1, 12)
_HERE = os.path.abspath(__file__) if "__file__" in globals() else ""

# The runtime's face to the hub, which imports it as a library for the inline
# form (one implementation of discovery, argument checking and failure
# records: a component behaves the same inline and in a worker).  The hub
# uses these names and the component API (``_API``) only; they are typed in
# runtime.pyi and pinned by tests/core/test_exports.py.  Everything else here
# is private to the worker.
HUB_API = (
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
)


# ---------------------------------------------------------------------------
# JSON codec: the C accelerator when present, else a small pure-Python codec
# ---------------------------------------------------------------------------


def _no_default(o):
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def _bad_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def _py_encoder():
    escapes = dict((i, "\\u%04x" % i) for i in range(0x20))
    escapes.update({0x22: '\\"', 0x5C: "\\\\", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x08: "\\b", 0x0C: "\\f"})
    inf = float("inf")
    float_repr = float.__repr__
    int_repr = int.__repr__

    def key(k):
        if isinstance(k, str):
            return k
        if k is True:
            return "true"
        if k is False:
            return "false"
        if k is None:
            return "null"
        if isinstance(k, int):
            return int_repr(k)
        if isinstance(k, float):
            return flt(k)
        raise TypeError("keys must be str, int, float, bool or None, not %s" % type(k).__name__)

    def flt(o):
        if o != o or o == inf or o == -inf:
            raise ValueError("Out of range float values are not JSON compliant")
        return float_repr(o)

    def enc(o, out, seen):
        if isinstance(o, str):
            out.append('"' + o.translate(escapes) + '"')
        elif o is None:
            out.append("null")
        elif o is True:
            out.append("true")
        elif o is False:
            out.append("false")
        elif isinstance(o, int):
            out.append(int_repr(o))
        elif isinstance(o, float):
            out.append(flt(o))
        elif isinstance(o, (list, tuple, dict)):
            i = id(o)
            if i in seen:
                raise ValueError("Circular reference detected")
            seen.add(i)
            if isinstance(o, dict):
                out.append("{")
                first = True
                for k, v in o.items():
                    if not first:
                        out.append(",")
                    first = False
                    out.append('"' + key(k).translate(escapes) + '":')
                    enc(v, out, seen)
                out.append("}")
            else:
                out.append("[")
                first = True
                for v in o:
                    if not first:
                        out.append(",")
                    first = False
                    enc(v, out, seen)
                out.append("]")
            seen.discard(i)
        else:
            _no_default(o)

    def dumps(o):
        out = []
        enc(o, out, set())
        return "".join(out)

    return dumps


def _make_codec():
    try:
        import _json

        class _Context:
            strict = True
            object_hook = None
            object_pairs_hook = None
            parse_float = float
            parse_int = int
            parse_constant = staticmethod(_bad_constant)
            memo = {}

        scan = _json.make_scanner(_Context())
        c_encode = _json.make_encoder({}, _no_default, _json.encode_basestring, None, ":", ",", False, False, False)

        def loads(text):
            obj, end = scan(text, 0)
            if end != len(text) and text[end:].strip():
                raise ValueError("extra data after the JSON value")
            return obj

        def dumps(obj):
            return "".join(c_encode(obj, 0))

        return dumps, loads
    except Exception:  # PyPy, or an interpreter whose _json differs
        pass
    try:
        from _pypyjson import loads as pypy_loads
    except ImportError:
        from json import loads as pypy_loads
    return _py_encoder(), pypy_loads


_dumps, _loads = _make_codec()


# ---------------------------------------------------------------------------
# Values: exact JSON forms of objects that are not JSON themselves
# ---------------------------------------------------------------------------
#
# A result crosses as JSON only in a form that keeps it.  The common case costs
# nothing: the encoder is tried first, and only a value it refuses is walked.
# Then objects with an exact JSON form take it (numpy arrays and scalars by
# ``tolist()`` / ``item()``, dataclasses as objects of their fields, Enum
# members by name, date/time values as ISO-8601 text, UUIDs and paths as text,
# sets as lists, bytes as lists of ints); anything else is refused with its
# type and the way out, never converted by a guess (``str(obj)``, ``vars``).

_EXACT_DEPTH = 200


class NotExact(TypeError):
    """A value without an exact JSON form; ``type`` names it, ``hint`` the way out."""

    def __init__(self, message, type_name, hint):
        TypeError.__init__(self, message)
        self.type_name = type_name
        self.hint = hint


def exact_json(value, depth=0):
    """``value`` with every object that has an exact JSON form replaced by it.

    Raises ``NotExact`` for an object that has none.
    """
    if value is None or value is True or value is False:
        return value
    t = type(value)
    if t is str or t is int or t is float:
        return value
    if depth > _EXACT_DEPTH:
        raise NotExact(
            "the result is nested deeper than %d levels (a cycle?)" % _EXACT_DEPTH,
            _type_name(t),
            "return a shallower value",
        )
    if isinstance(value, (list, tuple)):
        return [exact_json(v, depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out[_exact_key(k)] = exact_json(v, depth + 1)
        return out
    if isinstance(value, (str, int, float)):  # subclasses: IntEnum, str-based enums, numpy.float64
        base = (
            str
            if isinstance(value, str)
            else (bool if isinstance(value, bool) else (int if isinstance(value, int) else float))
        )
        if not _is_enum(value):
            return base(value)
    if _is_enum(value):
        return value.name
    if isinstance(value, (set, frozenset)):
        items = [exact_json(v, depth + 1) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, (bytes, bytearray)):
        return list(bytearray(value))
    fields = getattr(t, "__dataclass_fields__", None)
    if isinstance(fields, dict) and not isinstance(value, type):
        import dataclasses

        return dict((f.name, exact_json(getattr(value, f.name), depth + 1)) for f in dataclasses.fields(value))
    import datetime

    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    mod = getattr(t, "__module__", "") or ""
    if mod == "uuid" and t.__name__ == "UUID":
        return str(value)
    if mod.startswith("pathlib"):
        return str(value)
    for name in ("tolist", "item"):  # numpy arrays and scalars, array.array, memoryview
        method = getattr(value, name, None)
        if callable(method) and not isinstance(value, type):
            try:
                converted = method()
            except Exception:
                continue
            if converted is not value:
                return exact_json(converted, depth + 1)
    raise NotExact("a %s has no exact JSON form" % _type_name(t), _type_name(t), _hint(value, t))


def _is_enum(value):
    for klass in type(value).__mro__:
        if klass.__name__ == "Enum" and klass.__module__ == "enum":
            return True
    return False


def _exact_key(k):
    if isinstance(k, str) and not _is_enum(k):
        return str(k)
    if k is None or isinstance(k, (bool, int, float)) and not _is_enum(k):
        return k
    if _is_enum(k):
        return k.name
    converted = exact_json(k)
    if isinstance(converted, (str, int, float, bool)) or converted is None:
        return converted
    raise NotExact(
        "a dict key of type %s has no exact JSON form" % _type_name(type(k)),
        _type_name(type(k)),
        "use str, int, float or bool keys",
    )


def _hint(value, t):
    import datetime

    if isinstance(value, datetime.timedelta):
        return "return value.total_seconds() (a number of seconds)"
    if t.__name__ == "Decimal":
        return "return str(value) to keep every digit, or float(value)"
    if t.__name__ == "complex":
        return "return [value.real, value.imag]"
    if hasattr(value, "__iter__") or hasattr(value, "__next__"):
        return "return list(value) if its items are the value"
    if hasattr(value, "__dict__"):
        return "return a dict of the fields that are its value (a dataclass crosses as one)"
    return "return a str, number, bool, None, list or dict that keeps the value"


# ---------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------


class _Refused(Exception):
    """A well-formed frame this worker will not read (too large, nested too deep):
    refused for its request id alone, never a reason to exit."""

    def __init__(self, kind, rid, why):
        Exception.__init__(self, why)
        self.kind, self.rid, self.why = kind, rid, why


def _last_id(text):
    """The request id of a frame we cannot decode: the hub writes "id" last."""
    at = text.rfind('"id":')
    if at < 0:
        return None
    digits = ""
    for ch in text[at + 5 : at + 30]:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None


class _Reader:
    """Reads whole frames from one descriptor (one os.read per frame when small)."""

    __slots__ = ("fd", "buf")

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""

    def read(self):
        """(kind, body) or None at EOF.  Raises ValueError on a malformed frame."""
        buf = self.buf
        fd = self.fd
        while True:
            n = len(buf)
            if n >= 5:
                length = int.from_bytes(buf[0:4], "big")
                if length > MAX_BODY:
                    raise self._skip(buf, length)
                end = 5 + length
                if n >= end:
                    kind = buf[4]
                    try:
                        body = _loads(buf[5:end].decode("utf-8"))
                    except RecursionError:
                        self.buf = buf[end:]
                        raise _Refused(
                            kind,
                            _last_id(buf[max(5, end - 64) : end].decode("utf-8", "replace")),
                            "the arguments nest too deeply for this worker to read",
                        )
                    self.buf = buf[end:]
                    if not isinstance(body, dict):
                        raise ValueError("frame body is not a JSON object")
                    return kind, body
                # A large frame: gather its pieces and join once (no quadratic copying).
                parts = [buf]
                while n < end:
                    chunk = os.read(fd, end - n)
                    if not chunk:
                        raise ValueError("EOF in the middle of a frame")
                    parts.append(chunk)
                    n += len(chunk)
                buf = b"".join(parts)
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                if buf:
                    raise ValueError("EOF in the middle of a frame")
                return None
            buf = buf + chunk if buf else chunk

    def _skip(self, buf, length):
        """Drop an oversized frame's body as it arrives; the refusal for its id."""
        kind = buf[4]
        body = buf[5 : 5 + length]
        left = length - len(body)
        tail = body[-64:]
        self.buf = buf[5 + length :]
        while left > 0:
            chunk = os.read(self.fd, min(left, 1 << 16))
            if not chunk:
                raise ValueError("EOF in the middle of a frame")
            left -= len(chunk)
            tail = (tail + chunk)[-64:]
        return _Refused(
            kind,
            _last_id(tail.decode("utf-8", "replace")),
            "the request is %d bytes, over the worker's %d-byte frame limit" % (length, MAX_BODY),
        )


_write_lock = _thread.allocate_lock()
_reply_fd = -1


_KIND_BYTES = [bytes((k,)) for k in range(256)]


def _send(kind, data):
    """Write one frame whose body is ``data``, UTF-8 JSON bytes."""
    frame = len(data).to_bytes(4, "big") + _KIND_BYTES[kind] + data
    with _write_lock:
        n = os.write(_reply_fd, frame)
        if n < len(frame):  # a large frame: the pipe took part of it
            view = memoryview(frame)[n:]
            while view:
                n = os.write(_reply_fd, view)
                view = view[n:]


def _send_obj(kind, body):
    _send(kind, _dumps(body).encode("utf-8"))


# ---------------------------------------------------------------------------
# Component-facing API (cncf.collaborator)
# ---------------------------------------------------------------------------


class Cancelled(BaseException):
    """Raised by ``check_cancelled()`` once the hub cancelled the running call.

    A BaseException, like ``asyncio.CancelledError``, so that a component's
    ``except Exception`` does not swallow it; the call ends with the
    Observation code ``cancelled``.
    """


class Failure(Exception):
    """A Collaborator's own failure: ``Failure(code, message, **attributes)``.

    The call ends with the Observation code ``operation_failed``; ``code``
    travels as ``attributes['component_code']`` with the other attributes.
    """

    def __init__(self, code, message="", **attributes):
        Exception.__init__(self, message or code)
        self.code = str(code)
        self.message = str(message or code)
        self.attributes = attributes


class Rejected(Exception):
    """Raised by an operation whose arguments are wrong: ``Rejected(message, **attributes)``.

    The call ends with the Observation code ``rejected`` (category argument,
    not retryable; HTTP 400: the caller's request is wrong) carrying the
    component's own message and attributes.  Anything else an operation
    raises is its own failure: ``raised`` (HTTP 500).
    """

    def __init__(self, message="", **attributes):
        Exception.__init__(self, message)
        self.message = str(message)
        self.attributes = attributes


Rejected.__module__ = "cncf.collaborator"  # its name in causes and docs, in every form


class Collaborator:
    """Base for components that receive calls themselves.

    List the operations in a class attribute ``OPERATIONS`` (or override
    ``operations()``; names or ``{"name", "params", "doc"}`` objects) and
    implement ``invoke(operation, args, kwargs)``.
    """

    OPERATIONS = ()

    def operations(self):
        return list(self.OPERATIONS)

    def invoke(self, operation, args, kwargs):
        raise NotImplementedError("%s does not implement invoke()" % type(self).__name__)


class CallState:
    """The running call as a component sees it: ``id`` (the hub's call id),
    ``operation``, ``cancelled``, and ``traceparent``/``tracestate`` (the W3C
    trace context of the call's span when the hub traces calls, else None)."""

    __slots__ = ("id", "operation", "cancelled", "rid", "tier", "traceparent", "tracestate")

    def __init__(self, rid, call, operation, traceparent=None, tracestate=None):
        self.rid = rid
        self.id = call
        self.operation = operation
        self.cancelled = False
        self.tier = None
        self.traceparent = traceparent
        self.tracestate = tracestate


_local = _thread._local()
_running = {}  # request id -> CallState
_early_cancels = set()  # CANCELs that overtook their INVOKE


def _thread_state():
    return getattr(_local, "state", None)


# Where the running call's state is found.  A worker runs each call on one
# thread, so a thread-local is enough (and costs no import); the hub's inline
# form sets a context variable's ``get`` instead (``use_call_lookup``), which
# also tells apart asyncio tasks sharing the loop's thread.  One CallState,
# one API, every form.
_current = _thread_state


def use_call_lookup(lookup):
    """Set how ``current_call()``, ``cancelled()`` and ``check_cancelled()``
    find the running call: ``lookup()`` returns its ``CallState`` or None.

    For a host of the runtime used as a library (the hub's inline form,
    which sets a context variable's ``get``); a worker keeps its thread-local.
    Returns the lookup it replaces."""
    global _current
    previous, _current = _current, lookup
    return previous


def cancelled():
    """True once the hub asked to cancel the running call."""
    st = _current()
    return st is not None and st.cancelled


def check_cancelled():
    """Raise ``Cancelled`` if the running call was cancelled (a cheap check)."""
    st = _current()
    if st is not None and st.cancelled:
        raise Cancelled("call %s was cancelled" % (st.id,))


def current_call():
    """The running call (``id``, ``operation``, ``cancelled``), or None."""
    return _current()


_API = ("Collaborator", "Failure", "Rejected", "Cancelled", "CallState", "cancelled", "check_cancelled", "current_call")


def _install_api(synthetic):
    module_type = type(sys)
    api = module_type("_cncf_worker", "The cncf worker runtime's component API.")
    for name in _API:
        setattr(api, name, globals()[name])
    sys.modules["_cncf_worker"] = api
    if not synthetic or "cncf" in sys.modules:
        return
    collab = module_type("cncf.collaborator", "The component-facing API of cncf (worker side).")
    pkg = module_type("cncf", "cncf, as seen from inside a worker (component API only).")
    for name in _API:
        setattr(collab, name, globals()[name])
        setattr(pkg, name, globals()[name])
    pkg.__path__ = []
    pkg.collaborator = collab
    sys.modules["cncf"] = pkg
    sys.modules["cncf.collaborator"] = collab


# ---------------------------------------------------------------------------
# Failure records
# ---------------------------------------------------------------------------


def _type_name(t):
    mod = getattr(t, "__module__", "builtins")
    name = getattr(t, "__qualname__", t.__name__)
    return name if mod in ("builtins", "exceptions") else "%s.%s" % (mod, name)


def _skip_own_frames(tb):
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if fn == _HERE or fn.startswith("<frozen importlib"):
            tb = tb.tb_next
        else:
            break
    return tb


def _cause(exc, depth=0):
    try:
        message = str(exc)
    except BaseException:
        message = "<unprintable %s>" % type(exc).__name__
    try:
        import traceback

        tb = _skip_own_frames(exc.__traceback__)
        stack = "".join(traceback.format_exception(type(exc), exc, tb, chain=False))
    except BaseException:
        stack = ""
    nested = exc.__cause__
    if nested is None and not exc.__suppress_context__:
        nested = exc.__context__
    return {
        "type": _type_name(type(exc)),
        "message": message,
        "stack": stack,
        "cause": _cause(nested, depth + 1) if nested is not None and depth < 8 else None,
    }


def failure_record(code, message, exc=None, attributes=None):
    """The failure record (docs/wire-protocol.md) of ``code`` and ``message``:
    ``attributes`` (a mapping, any key names) and, for ``exc``, its cause
    chain with the traceback (following ``__cause__``, then an unsuppressed
    ``__context__``).  A ``Rejected``'s own attributes travel with it."""
    attributes = dict(attributes or {})
    if code == "rejected" and isinstance(exc, Rejected):
        own = getattr(exc, "attributes", None)
        if isinstance(own, dict):
            attributes = dict(own, **attributes)
    rec = {"code": code, "message": message, "attributes": attributes}
    if exc is not None:
        try:
            rec["cause"] = _cause(exc)
        except BaseException:
            rec["cause"] = {"type": type(exc).__name__, "message": "", "stack": ""}
    return rec


def _failure(code, message, exc=None, **attributes):
    return failure_record(code, message, exc, attributes)


def _exc_summary(exc):
    try:
        text = str(exc)
    except BaseException:
        text = ""
    name = type(exc).__name__
    return "%s: %s" % (name, text) if text else name


def _rejection_message(exc, what):
    message = getattr(exc, "message", None)
    if not isinstance(message, str) or not message:
        try:
            message = str(exc)
        except BaseException:
            message = ""
    return message or "%s rejected its arguments" % what


def classify(exc, what, rejects=True):
    """Map a BaseException raised by component code to (code, message).

    ``rejects``: whether a ``Rejected`` is a rejection of the caller's
    arguments (an operation's call); at load and construction it is an
    exception like any other."""
    if rejects and isinstance(exc, Rejected):
        return "rejected", _rejection_message(exc, what)
    if isinstance(exc, Cancelled):
        return "cancelled", "%s stopped: the call was cancelled" % what
    if isinstance(exc, MemoryError):
        return "out_of_memory", "%s ran out of memory (MemoryError)" % what
    if isinstance(exc, RecursionError):
        return "stack_overflow", "%s overflowed the stack (%s)" % (what, _exc_summary(exc))
    if isinstance(exc, (SystemExit, KeyboardInterrupt)) or not isinstance(exc, Exception):
        return "exit_requested", "%s raised %s; the worker survived it" % (what, _exc_summary(exc))
    return "raised", "%s raised %s" % (what, _exc_summary(exc))


# ---------------------------------------------------------------------------
# Operations: discovery and argument checking (no inspect: code objects)
# ---------------------------------------------------------------------------

_CO_VARARGS, _CO_VARKEYWORDS = 0x04, 0x08


def parameters(f, drop):
    """Wire parameter list of a Python function (dropping ``drop`` leading
    positional parameters, e.g. ``self``), or None when it cannot be known."""
    for _ in range(20):
        w = getattr(f, "__wrapped__", None)
        if w is None:
            break
        f = w
    code = getattr(f, "__code__", None)
    if code is None or not hasattr(code, "co_varnames"):
        return None
    npos = code.co_argcount
    nposonly = getattr(code, "co_posonlyargcount", 0)
    nkw = code.co_kwonlyargcount
    names = code.co_varnames
    defaults = getattr(f, "__defaults__", None) or ()
    kwdefaults = getattr(f, "__kwdefaults__", None) or {}
    first_default = npos - len(defaults)
    out = []
    for i in range(npos):
        kind = "positional" if i < nposonly else "any"
        out.append({"name": names[i], "kind": kind, "required": i < first_default})
    i = npos + nkw
    if code.co_flags & _CO_VARARGS:
        out.append({"name": names[i], "kind": "varargs", "required": False})
        i += 1
    for name in names[npos : npos + nkw]:
        out.append({"name": name, "kind": "named", "required": name not in kwdefaults})
    if code.co_flags & _CO_VARKEYWORDS:
        out.append({"name": names[i], "kind": "varkw", "required": False})
    while drop and out and out[0]["kind"] in ("positional", "any"):
        out.pop(0)
        drop -= 1
    hints = _hints(f)
    if hints:
        for p in out:
            if p["name"] in hints:
                schema = describe(hints[p["name"]])
                if not p["required"] and _defaults_to_none(f, code, p["name"], npos, first_default, kwdefaults):
                    schema = _nullable(schema)  # PEP 484's implicit Optional: x: int = None
                p["schema"] = schema  # (of each value, for *args and **kwargs)
    return out


# ---------------------------------------------------------------------------
# Parameter types: PEP 484 annotations as JSON Schema (docs/http.md, OpenAPI)
# ---------------------------------------------------------------------------
# The hub publishes these in its OpenAPI document and checks a call's
# arguments against them before it runs (or is queued).  A type that cannot be
# said in JSON (a class of the component's own, bytes, a TypeVar) is {}: any
# value, never a refusal the component would not make itself.

_DEPTH = 8


def _hints(f):
    ann = getattr(f, "__annotations__", None)
    if not isinstance(ann, dict) or not ann:
        return None
    try:
        import typing

        return typing.get_type_hints(f)
    except Exception:
        out = {}
        glb = getattr(f, "__globals__", None) or {}
        for k, v in ann.items():
            if isinstance(v, str):
                try:
                    v = eval(v, dict(glb))  # a forward reference in the function's own module
                except Exception:
                    continue
            out[k] = v
        return out


def _defaults_to_none(f, code, name, npos, first_default, kwdefaults):
    names = code.co_varnames
    for i in range(first_default, npos):
        if names[i] == name:
            defaults = getattr(f, "__defaults__", None) or ()
            return defaults[i - first_default] is None
    return name in kwdefaults and kwdefaults[name] is None


def _nullable(schema):
    if not schema or schema.get("type") == "null":
        return schema
    if "anyOf" in schema:
        if {"type": "null"} in schema["anyOf"]:
            return schema
        return {"anyOf": schema["anyOf"] + [{"type": "null"}]}
    return {"anyOf": [schema, {"type": "null"}]}


_SCALARS = {int: {"type": "integer"}, float: {"type": "number"}, bool: {"type": "boolean"}, str: {"type": "string"}}


def describe(tp, _stack=()):
    """The JSON Schema of the values an annotation ``tp`` admits over the wire."""
    try:
        return _describe(tp, _stack)
    except Exception:
        return {}


def _describe(tp, stack):
    if len(stack) > _DEPTH or tp in stack:
        return {}  # recursive or too deep: any value
    if tp is None or tp is type(None):
        return {"type": "null"}
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    import typing

    stack = stack + (tp,)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is not None:
        name = getattr(origin, "__name__", "") or str(origin)
        if origin is typing.Union or name == "UnionType":
            return _union([_describe(a, stack) for a in args])
        if name == "Literal" or origin is getattr(typing, "Literal", None):
            values = [a for a in args if a is None or isinstance(a, (bool, int, float, str))]
            return {"enum": values} if len(values) == len(args) else {}
        if name == "Annotated" or origin is getattr(typing, "Annotated", None):
            return _describe(args[0], stack) if args else {}
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": _describe(args[0], stack)}
            if args == ((),) or not args:
                return {"type": "array", "items": {}, "maxItems": 0} if args else {"type": "array", "items": {}}
            items = [_describe(a, stack) for a in args]
            return {
                "type": "array",
                "prefixItems": items,
                "items": _union(items),
                "minItems": len(items),
                "maxItems": len(items),
            }
        if isinstance(origin, type):
            import collections.abc as abc

            if issubclass(origin, (list, set, frozenset)) or origin in (
                abc.Sequence,
                abc.MutableSequence,
                abc.Set,
                abc.MutableSet,
                abc.Collection,
                abc.Iterable,
            ):
                return {"type": "array", "items": _describe(args[0], stack) if args else {}}
            if issubclass(origin, dict) or origin in (abc.Mapping, abc.MutableMapping):
                if args and args[0] is not str:
                    return {"type": "object"}
                return {"type": "object", "additionalProperties": _describe(args[1], stack) if len(args) > 1 else {}}
        return {}
    if isinstance(tp, type):
        if issubclass(tp, bool):
            return {"type": "boolean"}
        if tp in (list, set, frozenset, tuple):
            return {"type": "array", "items": {}}
        if tp is dict:
            return {"type": "object"}
        members = getattr(tp, "__members__", None)
        if members is not None and hasattr(tp, "_value2member_map_"):  # an Enum: its values cross
            values = [m.value for m in members.values()]
            if all(v is None or isinstance(v, (bool, int, float, str)) for v in values):
                return {"enum": values}
            return {}
        fields = getattr(tp, "__dataclass_fields__", None)
        if isinstance(fields, dict):
            return _dataclass(tp, fields, stack)
        if hasattr(tp, "model_json_schema"):  # pydantic 2
            return _inline_refs(tp.model_json_schema(), 0)
        if isinstance(getattr(tp, "__required_keys__", None), frozenset):  # a TypedDict
            hints = typing.get_type_hints(tp)
            return {
                "type": "object",
                "properties": dict((k, _describe(v, stack)) for k, v in hints.items()),
                "required": sorted(tp.__required_keys__),
            }
        if issubclass(tp, int):
            return {"type": "integer"}
        if issubclass(tp, float):
            return {"type": "number"}
        if issubclass(tp, str):
            return {"type": "string"}
    return {}


def _union(schemas):
    if any(not s for s in schemas):
        return {}
    out = []
    for s in schemas:
        for t in s["anyOf"] if list(s) == ["anyOf"] else [s]:
            if t not in out:
                out.append(t)
    return out[0] if len(out) == 1 else {"anyOf": out}


def _dataclass(tp, fields, stack):
    import typing

    try:
        hints = typing.get_type_hints(tp)
    except Exception:
        hints = {}
    props = {}
    required = []
    missing = getattr(__import__("dataclasses"), "MISSING", None)
    for name, fld in fields.items():
        if getattr(fld, "init", True) is False or str(getattr(fld, "_field_type", "")) != "_FIELD":
            continue
        props[name] = _describe(hints[name], stack) if name in hints else {}
        if fld.default is missing and fld.default_factory is missing:
            required.append(name)
    out = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def _inline_refs(schema, depth, defs=None):
    """A pydantic schema with its ``$defs`` inlined (a recursive one cut to {})."""
    if defs is None:
        defs = schema.get("$defs") or schema.get("definitions") or {}
    if isinstance(schema, list):
        return [_inline_refs(s, depth, defs) for s in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        if target is None or depth > _DEPTH:
            return {}
        return _inline_refs(target, depth + 1, defs)
    return dict(
        (k, _inline_refs(v, depth, defs) if k not in ("enum", "const", "default", "examples") else v)
        for k, v in schema.items()
        if k not in ("$defs", "definitions", "title")
    )


def misfit(params, args, kwargs):
    """Why ``args``/``kwargs`` do not bind to ``params`` (None when they do)."""
    positional = [p for p in params if p["kind"] in ("positional", "any")]
    varargs = any(p["kind"] == "varargs" for p in params)
    varkw = any(p["kind"] == "varkw" for p in params)
    named = dict((p["name"], p) for p in params if p["kind"] in ("any", "named"))
    if len(args) > len(positional) and not varargs:
        return "takes %d positional argument%s but %d were given" % (
            len(positional),
            "" if len(positional) == 1 else "s",
            len(args),
        )
    filled = set(p["name"] for p in positional[: len(args)])
    for k in kwargs:
        if k in filled:
            return "got multiple values for argument %r" % k
        if k not in named and not varkw:
            return "got an unexpected keyword argument %r" % k
    missing = [
        p["name"]
        for p in params
        if p["required"]
        and p["kind"] != "varargs"
        and p["kind"] != "varkw"
        and p["name"] not in filled
        and p["name"] not in kwargs
    ]
    if missing:
        return "missing required argument%s: %s" % ("" if len(missing) == 1 else "s", ", ".join(missing))
    return None


def _doc(obj):
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str):
        return ""
    lines = doc.strip().splitlines()
    return lines[0].strip() if lines else ""


def _class_operations(cls):
    ops = []
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        raw = None
        for klass in getattr(cls, "__mro__", (cls,)):
            if klass is object:
                break
            d = getattr(klass, "__dict__", {})
            if name in d:
                raw = d[name]
                break
        if raw is None:
            continue
        if isinstance(raw, staticmethod):
            f, drop = raw.__func__, 0
        elif isinstance(raw, classmethod):
            f, drop = raw.__func__, 1
        elif isinstance(raw, type) or isinstance(raw, property):
            continue
        elif hasattr(raw, "__code__"):
            f, drop = raw, 1
        elif callable(raw):
            f, drop = raw, 0
        else:
            continue
        ops.append({"name": name, "params": parameters(f, drop), "doc": _doc(f)})
    return ops


def _module_operations(module):
    exported = getattr(module, "__all__", None)
    names = list(exported) if exported is not None else sorted(vars(module))
    ops = []
    for name in names:
        if name.startswith("_"):
            continue
        f = getattr(module, name, None)
        if not _is_operation(f):
            continue
        home = _home(f)
        if home is None:
            home = module.__name__
        if exported is None and home != module.__name__ and not home.startswith(module.__name__ + "."):
            continue  # imported from elsewhere (re-exports from its own submodules count)
        ops.append({"name": name, "params": parameters(f, 0), "doc": _doc(f)})
    return ops


def _is_operation(f):
    """A plain function, or any other callable a module exposes that is not a
    class or a module: builtins, functools.partial, numpy ufuncs and its
    array-function dispatchers (``numpy.mean``)."""
    if f is None or isinstance(f, type) or isinstance(f, type(sys)):
        return False
    if getattr(type(f), "__module__", None) in ("typing", "types", "typing_extensions"):
        return False  # list[int], Optional[X], TypeVar: annotations, not operations
    return hasattr(f, "__code__") or callable(f)


def _function_like(f):
    """A callable that is one operation (a builtin, a ufunc, a dispatcher, a
    partial), not an object whose methods are the operations."""
    if not _is_operation(f) or not callable(f) or _is_collaborator(type(f)):
        return False
    return isinstance(getattr(f, "__name__", None), str) or type(f).__name__ == "partial"


def _home(f):
    """The module a callable comes from.  A partial is made where it stands (its
    function's module says nothing about that): it counts as the module's own."""
    if type(f).__name__ == "partial" and callable(getattr(f, "func", None)):
        return None
    home = getattr(f, "__module__", None)
    return home if isinstance(home, str) else ""


def _sole_class(module):
    if _module_operations(module):
        return None
    own = [
        name
        for name, v in sorted(vars(module).items())
        if isinstance(v, type) and not name.startswith("_") and getattr(v, "__module__", None) == module.__name__
    ]
    return own[0] if len(own) == 1 else None


class _EarlyConstructorFailed(Exception):
    """A collaborator had to be created to list its operations, and failed."""


def _is_collaborator(cls):
    return callable(getattr(cls, "invoke", None)) and (hasattr(cls, "operations") or hasattr(cls, "OPERATIONS"))


def _collaborator_operations(cls, init=None):
    """(operations, an instance created early or None).

    ``OPERATIONS`` (or an ``operations`` sequence attribute) is read from the
    class; an ``operations()`` classmethod is called; an instance method is
    called on an uninitialised instance, and only if that fails is the
    instance created now (its constructor then runs at load time, as inline).
    """
    early = None
    listed = getattr(cls, "OPERATIONS", None) or None
    if listed is None:
        raw = None
        for klass in getattr(cls, "__mro__", (cls,)):
            if "operations" in getattr(klass, "__dict__", {}):
                raw = klass.__dict__["operations"]
                break
        if isinstance(raw, (staticmethod, classmethod)):
            listed = cls.operations()
        elif callable(raw):
            try:
                listed = raw(cls.__new__(cls))
            except Exception:
                try:
                    early = _construct(cls, init)
                except BaseException as exc:
                    raise _EarlyConstructorFailed(exc)
                listed = early.operations()
        else:
            listed = raw
    ops = []
    for item in listed or ():
        if isinstance(item, str):
            ops.append({"name": item, "params": None, "doc": ""})
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            ops.append({"name": item["name"], "params": item.get("params"), "doc": str(item.get("doc") or "")})
        else:
            raise TypeError("operations must be names or {'name': ...} objects, got %r" % (item,))
    return ops, early


# ---------------------------------------------------------------------------
# Instances and handlers
# ---------------------------------------------------------------------------


class Slot:
    """One loaded entry and (after NEW, in a worker) its live instance."""

    __slots__ = ("entry", "target", "kind", "operations", "params", "obj", "bound", "invoke", "early")

    def __init__(self, entry, target, kind, operations):
        self.entry = entry
        self.target = target  # class, module or ready object
        self.kind = kind  # "class" | "module" | "object" | "collaborator"
        self.operations = operations
        self.params = dict((op["name"], op["params"]) for op in operations)
        self.obj = None
        self.bound = None
        self.invoke = None
        self.early = None  # a Collaborator built early to list its operations


_slots = {}


def _reply_failure(kind, rid, rec):
    _send_obj(kind, {"id": rid, "ok": False, "failure": rec})


def _is_dependency_of(missing, module):
    return missing != module and not module.startswith(missing + ".")


class LoadFailed(Exception):
    """An entry could not be loaded or instantiated; ``record`` is the failure
    record (code, message, cause) to report."""

    def __init__(self, record):
        Exception.__init__(self, record.get("message"))
        self.record = record


def load_entry(entry, infer_entry=False, init=None):
    """Import ``module[:attr]`` and discover its operations.

    The one implementation of entry loading and operation discovery: the
    worker's LOAD handler and the hub's inline form both call it.  Returns a
    ``Slot``; raises ``LoadFailed``.  ``init`` (the manifest's constructor
    arguments) serves a Collaborator that must be created to list its operations.
    """
    mod_name, _, attr = entry.partition(":")
    what = "importing %r" % mod_name
    if not mod_name:
        raise LoadFailed(_failure("entry_not_found", "no entry was given"))
    try:
        __import__(mod_name)
        module = sys.modules[mod_name]
    except ModuleNotFoundError as exc:
        missing = getattr(exc, "name", None) or ""
        if missing and _is_dependency_of(missing, mod_name):
            raise LoadFailed(
                _failure(
                    "dependency_unresolved",
                    "%s failed: it needs module %r, which is not installed in the component's "
                    "environment (declare it in requirements)" % (what, missing),
                    exc,
                    module=missing,
                )
            )
        raise LoadFailed(
            _failure(
                "entry_not_found", "entry module %r is not on the component's path" % (mod_name,), exc, module=mod_name
            )
        )
    except BaseException as exc:
        code, msg = classify(exc, what, rejects=False)
        if code in ("raised", "stack_overflow", "cancelled"):
            code = "import_failed"
        raise LoadFailed(_failure(code, msg, exc))
    target, kind = module, "module"
    if not attr and infer_entry:
        # No entry was named: a module without public functions but with
        # exactly one public class of its own is that class.
        attr = _sole_class(module) or ""
        if attr:
            entry = "%s:%s" % (mod_name, attr)
    if attr:
        try:
            for part in attr.split("."):
                target = getattr(target, part)
        except AttributeError as exc:
            raise LoadFailed(
                _failure(
                    "entry_not_found",
                    "module %r has no attribute %r" % (mod_name, attr),
                    exc,
                    candidates=sorted(n for n in vars(module) if not n.startswith("_")),
                )
            )
        if isinstance(target, type):
            kind = "collaborator" if _is_collaborator(target) else "class"
        elif isinstance(target, type(sys)):
            kind = "module"
        elif hasattr(target, "__code__") or _function_like(target):
            kind = "function"  # "module:function" (or a ufunc, a builtin): that one operation
        else:
            kind = "object"
    early = None
    try:
        if kind == "module":
            operations = _module_operations(target)
        elif kind == "function":
            operations = [{"name": attr.split(".")[-1], "params": parameters(target, 0), "doc": _doc(target)}]
        elif kind == "class":
            operations = _class_operations(target)
        elif kind == "collaborator":
            operations, early = _collaborator_operations(target, init)
        elif _is_collaborator(type(target)):
            kind = "collaborator"
            operations, _ = _collaborator_operations(type(target))
        else:
            operations = _class_operations(type(target))
    except _EarlyConstructorFailed as wrapped:
        exc = wrapped.args[0]
        code, msg = classify(exc, "constructing %s" % entry, rejects=False)
        if code in ("raised", "cancelled"):
            code = "constructor_failed"
        raise LoadFailed(_failure(code, msg, exc))
    except BaseException as exc:
        raise LoadFailed(
            _failure("import_failed", "discovering the operations of %r failed: %s" % (entry, _exc_summary(exc)), exc)
        )
    if not operations and kind != "collaborator":
        what_kind = {"module": "module", "class": "class"}.get(kind, "object")
        raise LoadFailed(
            _failure(
                "entry_not_found",
                "entry %r names a %s with no operation: %s" % (entry, what_kind, _why_empty(target, kind)),
                None,
                entry=entry,
            )
        )
    slot = Slot(entry, target, kind, operations)
    slot.early = early
    return slot


def instantiate(slot, init=None):
    """Create the live instance of a loaded entry: ``(obj, bound, invoke)``
    where ``bound`` maps operation names to callables (or ``invoke`` is a
    Collaborator's).  ``init`` is the manifest's constructor arguments (a list
    is positional, a dict named).  Raises ``LoadFailed`` with the constructor's
    failure."""
    try:
        if slot.early is not None:  # created early to list its operations
            obj, slot.early = slot.early, None
        elif slot.kind == "function":
            return slot.target, {slot.operations[0]["name"]: slot.target}, None
        else:
            obj = _construct(slot.target, init)
    except BaseException as exc:
        code, msg = classify(exc, "constructing %s" % slot.entry, rejects=False)
        if code in ("raised", "cancelled"):
            code = "constructor_failed"
        raise LoadFailed(_failure(code, msg, exc))
    if slot.kind == "collaborator":
        return obj, None, obj.invoke
    bound = {}
    for op in slot.operations:
        f = getattr(obj, op["name"], None)
        if f is not None:
            bound[op["name"]] = f
    return obj, bound, None


def _handle_load(body):
    rid = body.get("id")
    iid = body.get("instance")
    paths = [p for p in (body.get("paths") or []) if isinstance(p, str)]
    options = body.get("options") or {}
    if _HERE:
        here = os.path.dirname(_HERE)
        sys.path[:] = [p for p in sys.path if p != here]
    sys.path[0:0] = paths
    sitedirs = options.get("sitedirs") or []
    if sitedirs:
        import site

        for d in sitedirs:
            site.addsitedir(d)
    if options.get("synthetic_api", True):
        has_own = False
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if find is None or "cncf" in sys.modules:
                continue
            try:
                if find("cncf", None) is not None:
                    has_own = True
                    break
            except Exception:
                pass
        _install_api(not has_own)
    try:
        slot = load_entry(body.get("entry") or "", bool(options.get("infer_entry")), options.get("init"))
    except LoadFailed as exc:
        return _reply_failure(LOADED, rid, exc.record)
    _slots[iid] = slot
    _send_obj(LOADED, {"id": rid, "ok": True, "operations": slot.operations, "entry": slot.entry, "kind": slot.kind})


def _why_empty(target, kind):
    if kind == "module":
        return (
            "it defines no public function or callable of its own (names starting with _ are "
            "private, imports from other packages are not its operations); name one with "
            "'module:function' or a class with 'module:Class'"
        )
    return "it has no public method; name the module or another class"


def _construct(target, init):
    """The live instance: a class called with the manifest's ``init`` (a list is
    positional, an object named); any other target is its own instance."""
    if not isinstance(target, type):
        return target
    if isinstance(init, dict):
        return target(**init)
    return target(*(init or ()))


def _handle_new(body):
    rid = body.get("id")
    slot = _slots.get(body.get("instance"))
    if slot is None:
        return _reply_failure(RESULT, rid, _failure("entry_not_found", "no such loaded instance"))
    try:
        slot.obj, slot.bound, slot.invoke = instantiate(slot, body.get("init"))
    except LoadFailed as exc:
        return _reply_failure(RESULT, rid, exc.record)
    _send_obj(RESULT, {"id": rid, "ok": True, "value": None})


def _result_data(rid, value):
    try:
        try:
            text = _dumps({"id": rid, "ok": True, "value": value})
        except TypeError:
            text = _dumps({"id": rid, "ok": True, "value": exact_json(value)})
        data = text.encode("utf-8")
        if len(data) > MAX_BODY:
            raise ValueError("the result is larger than the 64 MiB frame limit")
        return data
    except MemoryError as exc:
        rec = _failure("out_of_memory", "encoding the result ran out of memory", exc)
    except NotExact as exc:
        rec = _failure(
            "result_not_serialisable",
            "the result (%s) cannot cross the boundary as JSON: %s; %s" % (type(value).__name__, exc, exc.hint),
            None,
            type=exc.type_name,
            hint=exc.hint,
        )
    except BaseException as exc:
        rec = _failure(
            "result_not_serialisable",
            "the result (%s) cannot cross the boundary as JSON: %s" % (type(value).__name__, _exc_summary(exc)),
            exc,
            type=_type_name(type(value)),
        )
    return _dumps({"id": rid, "ok": False, "failure": rec}).encode("utf-8")


def _run_call(body):
    """Run one INVOKE and return the encoded reply body (never raises)."""
    rid = body.get("id")
    op = body.get("operation")
    args = body.get("args") or ()
    kwargs = body.get("kwargs") or {}
    st = CallState(rid, body.get("call"), op, body.get("traceparent"), body.get("tracestate"))
    _running[rid] = st
    if _early_cancels and rid in _early_cancels:
        _early_cancels.discard(rid)
        st.cancelled = True
    _local.state = st
    slot = None
    try:
        slot = _slots[body.get("instance")]
        if slot.invoke is not None:
            value = slot.invoke(op, list(args), dict(kwargs))
        else:
            value = slot.bound[op](*args, **kwargs)
    except BaseException as exc:
        _local.state = None
        _running.pop(rid, None)
        return _call_failure(rid, exc, slot, op, args, kwargs, st)
    _local.state = None
    _running.pop(rid, None)
    return _result_data(rid, value)


def _call_failure(rid, exc, slot, op, args, kwargs, st):
    try:
        what = "operation %r" % (op,)
        if slot is None or (slot.obj is None and slot.kind != "module"):
            rec = _failure("unknown_operation", "no live instance for %s" % what)
        elif isinstance(exc, KeyError) and slot.bound is not None and op not in slot.bound:
            rec = _failure(
                "unknown_operation", "%s is not an operation of %s" % (what, slot.entry), candidates=sorted(slot.bound)
            )
        elif isinstance(exc, Failure):
            attrs = dict(exc.attributes)
            attrs["component_code"] = exc.code
            rec = failure_record("operation_failed", "%s failed: %s" % (what, exc.message), exc, attrs)
        else:
            why = None
            if isinstance(exc, TypeError) and slot.bound is not None:
                params = slot.params.get(op)
                if params is not None:
                    why = misfit(params, args, kwargs)
            if why:
                rec = _failure("invalid_arguments", "%s %s" % (what, why), exc, params=slot.params.get(op))
            else:
                code, msg = classify(exc, what)
                attrs = {}
                if code == "cancelled":
                    attrs["tier"] = st.tier or "cooperative"
                rec = _failure(code, msg, exc, **attrs)
        return _dumps({"id": rid, "ok": False, "failure": rec}).encode("utf-8")
    except BaseException as inner:  # last resort: still exactly one reply
        return _dumps(
            {
                "id": rid,
                "ok": False,
                "failure": {
                    "code": "raised",
                    "message": "operation %r failed (and describing it failed: %s)" % (op, type(inner).__name__),
                    "attributes": {},
                },
            }
        ).encode("utf-8")


class _Pool:
    """Threads for ``concurrent`` calls, kept for reuse (starting a thread
    costs more than a call).  Idle threads wait on a C ``SimpleQueue``."""

    def __init__(self):
        try:
            from _queue import SimpleQueue
        except ImportError:  # an interpreter without it: one thread per call
            SimpleQueue = None
        self.queue = SimpleQueue() if SimpleQueue is not None else None
        self.idle = 0
        self.lock = _thread.allocate_lock()

    def submit(self, body):
        if self.queue is None:
            _thread.start_new_thread(self._one, (body,))
            return
        with self.lock:
            spawn = self.idle == 0
            if not spawn:
                self.idle -= 1
        if spawn:
            _thread.start_new_thread(self._loop, ())
        self.queue.put(body)

    def _one(self, body):
        try:
            _send(RESULT, _run_call(body))
        except BaseException:
            _die(70)

    def _loop(self):
        get = self.queue.get
        while True:
            self._one(get())
            with self.lock:
                self.idle += 1


_pool = None


def _handle_invoke(body):
    global _pool
    if body.get("concurrent"):
        if _pool is None:
            _pool = _Pool()
        _pool.submit(body)
    else:
        _send(RESULT, _run_call(body))


def _handle_unload(body):
    rid = body.get("id")
    slot = _slots.pop(body.get("instance"), None)
    if slot is not None:
        slot.obj = slot.bound = slot.invoke = None
    _send_obj(RESULT, {"id": rid, "ok": True, "value": None})


def _rss_kb():
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except Exception:
        return None


def _handle_ping(body):
    _send_obj(
        RESULT,
        {
            "id": body.get("id"),
            "ok": True,
            "value": {"pid": os.getpid(), "rss_kb": _rss_kb(), "instances": len(_slots), "running": len(_running)},
        },
    )


def _die(status):
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(status)


def _end_group():
    """The hub is gone (perhaps killed with -9): end what this worker started in its
    process group before exiting.  In a PID namespace the kernel does it anyway."""
    me = os.getpid()
    try:
        group = os.getpgrp()
        if group != me:
            return  # not our own group (started by hand): leave it alone
        names = os.listdir("/proc")
    except OSError:
        return
    import signal

    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            if os.getpgid(int(name)) == group:
                os.kill(int(name), signal.SIGKILL)
        except OSError:
            pass


def _handle_shutdown(body):
    _die(0)


_HANDLERS = {
    LOAD: _handle_load,
    NEW: _handle_new,
    INVOKE: _handle_invoke,
    UNLOAD: _handle_unload,
    PING: _handle_ping,
    SHUTDOWN: _handle_shutdown,
}


def _control_loop(fd):
    reader = _Reader(fd)
    try:
        while True:
            frame = reader.read()
            if frame is None:
                break
            kind, body = frame
            if kind != CANCEL:
                continue
            rid = body.get("id")
            st = _running.get(rid)
            if st is not None:
                st.tier = body.get("tier") or "cooperative"
                st.cancelled = True
            else:
                if len(_early_cancels) > 1024:
                    _early_cancels.clear()
                _early_cancels.add(rid)
    except BaseException:
        pass
    _end_group()
    _die(0)  # the hub is gone (or closed the control pipe): do not linger


def _take_fd(name, default):
    """A private close-on-exec duplicate of a protocol descriptor."""
    fd = int(os.environ.get(name, default))
    private = os.dup(fd)  # os.dup creates non-inheritable descriptors
    os.close(fd)
    os.environ.pop(name, None)
    return private


def main():
    global _reply_fd
    requests = _take_fd("CNCF_FD_REQUESTS", 3)
    _reply_fd = _take_fd("CNCF_FD_REPLIES", 4)
    control = _take_fd("CNCF_FD_CONTROL", 5)
    try:
        import faulthandler

        faulthandler.enable()  # a segfault leaves a Python stack in the stderr tail
    except Exception:
        pass
    impl = sys.implementation
    v = sys.version_info
    _send_obj(
        HELLO,
        {
            "protocol": PROTOCOL,
            "pid": os.getpid(),
            "runtime": "%s-%d.%d.%d" % (impl.name, v[0], v[1], v[2]),
            "executable": sys.executable,
        },
    )
    _thread.start_new_thread(_control_loop, (control,))
    reader = _Reader(requests)
    handlers = _HANDLERS
    while True:
        try:
            frame = reader.read()
        except _Refused as refused:
            _send_obj(
                LOADED if refused.kind == LOAD else RESULT,
                {"id": refused.rid, "ok": False, "failure": {"code": "arguments_too_large", "message": refused.why}},
            )
            continue
        except ValueError as exc:
            sys.stderr.write("cncf worker: protocol error on the requests pipe: %s\n" % exc)
            _die(3)
        except OSError:
            _die(0)
        if frame is None:
            _end_group()
            _die(0)  # EOF: the hub closed the channel
        kind, body = frame
        handler = handlers.get(kind)
        if handler is None:
            sys.stderr.write("cncf worker: unexpected frame kind %d\n" % kind)
            _die(3)
        try:
            handler(body)
        except OSError:
            _die(70)  # the replies pipe is gone (the component closed it, or the hub died)
        except BaseException as exc:  # a defect here: still exactly one reply
            try:
                _send_obj(
                    LOADED if kind == LOAD else RESULT,
                    {
                        "id": body.get("id"),
                        "ok": False,
                        "failure": _failure(
                            "import_failed" if kind == LOAD else "raised",
                            "the worker runtime failed handling a request: %s" % _exc_summary(exc),
                            exc,
                        ),
                    },
                )
            except BaseException:
                _die(70)


if __name__ == "__main__":
    main()
