"""Operation selectors: ``component.service.operation``.

Names compare case-insensitively with ``-`` and ``_`` ignored, as in the
original CNCF (``createPerson`` = ``create-person`` = ``create_person``).
Only ASCII letters fold: ``str.lower`` would make the Kelvin sign (U+212A)
and other compatibility letters equal to ``k``, so a route segment could
name an operation it does not spell.  The
service may be omitted where only one service has the operation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def normalize(name: str) -> str:
    folded = name.replace("-", "").replace("_", "")
    return folded.lower() if folded.isascii() else folded.translate(_ASCII_LOWER)


@dataclasses.dataclass(frozen=True, slots=True)
class Selector:
    component: str
    service: str | None
    operation: str

    @classmethod
    def parse(cls, text: str) -> Selector | None:
        parts = text.strip().split(".")
        if len(parts) == 2 and all(parts):
            return cls(parts[0], None, parts[1])
        if len(parts) == 3 and all(parts):
            return cls(parts[0], parts[1], parts[2])
        return None


class Resolution:
    """Outcome of resolving against one component's services."""

    __slots__ = ("service", "operation", "candidates", "ambiguous")

    def __init__(
        self, service: str | None, operation: str | None, candidates: list[str], ambiguous: bool = False
    ) -> None:
        self.service = service
        self.operation = operation
        self.candidates = candidates
        self.ambiguous = ambiguous


def resolve(services: Mapping[str, Iterable[str]], service: str | None, operation: str) -> Resolution:
    """Find ``operation`` (optionally in ``service``) among ``services``."""
    want_op = normalize(operation)
    want_svc = normalize(service) if service is not None else None
    hits: list[tuple[str, str]] = []
    for sname, ops in services.items():
        if want_svc is not None and normalize(sname) != want_svc:
            continue
        for op in ops:
            if normalize(op) == want_op:
                hits.append((sname, op))
    if len(hits) == 1:
        return Resolution(hits[0][0], hits[0][1], [])
    if hits:
        return Resolution(None, None, sorted(f"{s}.{o}" for s, o in hits), ambiguous=True)
    return Resolution(None, None, sorted(f"{s}.{o}" for s, ops in services.items() for o in ops))
