"""Operation resolution: discovered operations grouped into services, each with
its resolved policy.

The boundary discovers what an artifact offers (``OperationInfo``); the
manifest says how to group and govern it (``ComponentSpec``).  This module
joins the two once per load, so the engine's dispatch is a lookup.
"""

from __future__ import annotations

import dataclasses

from cncf.boundaries.base import OperationInfo
from cncf.manifest import ComponentSpec
from cncf.observation import Code, Failed, Observation
from cncf.policy import Mode, PolicySpec, ResolvedPolicy, resolve
from cncf.schema import Check, checker
from cncf.selector import normalize

DEFAULT_SERVICE = "default"


@dataclasses.dataclass(frozen=True, slots=True)
class OperationEntry:
    service: str
    name: str
    info: OperationInfo
    policy: ResolvedPolicy
    exclusive: bool  # serialize (and queue) need the instance to themselves
    # the arguments' check, made from the parameters' schemas (cncf.schema); None: unknown parameters
    check: Check | None = None


def build_operations(spec: ComponentSpec, discovered: list[OperationInfo]) -> dict[str, dict[str, OperationEntry]]:
    """Group discovered operations into services and resolve their policies.

    Raises ``Failed(invalid_manifest)`` when the manifest names an operation
    the artifact does not have.
    """
    by_norm = {normalize(op.name): op for op in discovered}
    source = spec.manifest_path or "<overrides>"

    def find(name: str, key: str) -> OperationInfo:
        op = by_norm.get(normalize(name))
        if op is None:
            raise Failed(
                Observation.of(
                    Code.INVALID_MANIFEST,
                    f"{source}: key '{key}' names operation {name!r}, which the entry does not have; "
                    f"it has: {', '.join(sorted(o.name for o in discovered)) or 'no operations'}",
                    file=source,
                    key=key,
                    value=name,
                    candidates=sorted(o.name for o in discovered),
                )
            )
        return op

    groups: dict[str, tuple[PolicySpec | None, list[OperationInfo]]] = {}
    if spec.services:
        for sname, sspec in spec.services.items():
            groups[sname] = (sspec.policy, [find(o, f"services.{sname}.operations") for o in sspec.operations])
    else:
        groups[DEFAULT_SERVICE] = (None, list(discovered))
    # Per-operation settings: key "operation" or "service.operation".
    op_policies: dict[tuple[str | None, str], PolicySpec] = {}
    for key, pol in spec.operations.items():
        svc, _, opname = key.rpartition(".")
        if svc and svc not in groups:
            raise Failed(
                Observation.of(
                    Code.INVALID_MANIFEST,
                    f"{source}: key 'operations.{key}' names service {svc!r}; services are: {', '.join(groups)}",
                    file=source,
                    key=f"operations.{key}",
                    value=svc,
                )
            )
        op = find(opname, f"operations.{key}")
        op_policies[(svc or None, normalize(op.name))] = pol
    table: dict[str, dict[str, OperationEntry]] = {}
    for sname, (spol, ops) in groups.items():
        entries: dict[str, OperationEntry] = {}
        for op in ops:
            n = normalize(op.name)
            policy = resolve(spec.policy, spol, op_policies.get((None, n)), op_policies.get((sname, n)))
            entries[op.name] = OperationEntry(
                sname,
                op.name,
                op,
                policy,
                exclusive=policy.mode is not Mode.CONCURRENT,
                check=checker(op.params, op.overloads),
            )
        table[sname] = entries
    return table


__all__ = ["DEFAULT_SERVICE", "OperationEntry", "build_operations"]
