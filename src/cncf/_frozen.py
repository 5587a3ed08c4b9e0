"""Building frozen, slotted dataclass values on the hot path without their
``__init__``'s cost.

A frozen dataclass's generated ``__init__`` stores each field with
``object.__setattr__`` (its own ``__setattr__`` refuses), which costs about
100 ns a field: an ``ActionCall``, its ``ExecutionContext`` and the
``Outcome`` of one call took 2.5 µs to build, a third of the inline form's
whole engine overhead.  :func:`twin` gives a mutable class with exactly the
same slot layout; a hot-path maker fills a twin with plain stores and then
turns it into the frozen class by assigning ``__class__`` (allowed between
classes of identical slot layout).  The value is indistinguishable from one
built by the class itself — same type, fields, equality, hash, ``repr`` and
immutability (``tests/core/test_frozen_makers.py`` checks each maker against
its class).  A maker must set every field; the test catches one that does not.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["twin"]


def twin(cls: type) -> Any:
    """A mutable class with ``cls``'s slot layout (``cls``: a frozen, slotted
    dataclass deriving from ``object``), whose instances may become ``cls``
    instances by ``obj.__class__ = cls`` once every field is set."""
    if not dataclasses.is_dataclass(cls) or cls.__bases__ != (object,):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass deriving from object")
    slots = cls.__dict__.get("__slots__")
    if slots is None or tuple(slots) != tuple(f.name for f in dataclasses.fields(cls)):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass whose slots are its fields")
    return type(f"_Mutable{cls.__name__}", (), {"__slots__": slots, "__module__": cls.__module__})
