"""The ``command`` form: any executable that speaks the wire protocol.

``command`` in the manifest is the worker's argv; a first element with a
path separator is resolved against the component's folder, a bare name is
looked up on PATH.  The process gets the protocol pipes like every worker
(``docs/wire-protocol.md``), runs in the component's folder, and is then
driven exactly like a Python worker: everything after the start is the
shared :class:`~cncf.boundaries._worker.WorkerBoundary`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cncf.boundaries._environment_policy import worker_environment
from cncf.boundaries._worker import LaunchPlan, WorkerBoundary, failed, resolve_executable
from cncf.observation import Code

if TYPE_CHECKING:
    from cncf.manifest import ComponentSpec


def resolve_command(spec: ComponentSpec) -> list[str]:
    """The argv with its executable resolved, or ``artifact_not_found``."""
    argv = list(spec.command)
    if not argv:
        raise failed(Code.INVALID_MANIFEST, f"component {spec.name!r} has no command", key="component.command")
    exe = argv[0]
    found = resolve_executable(exe, spec.base_dir)
    if found is None:
        raise failed(
            Code.ARTIFACT_NOT_FOUND,
            f"the command {exe!r} of component {spec.name!r} is neither on PATH nor an "
            f"executable file (looked from {spec.base_dir})",
            path=exe,
        )
    return [found, *argv[1:]]


class CommandBoundary(WorkerBoundary):
    """Components that are executables speaking the wire protocol."""

    form = "command"

    async def plan(self, spec: ComponentSpec) -> LaunchPlan:
        argv = resolve_command(spec)
        return LaunchPlan(
            argv=argv,
            entry=spec.entry,
            artifact=str(spec.artifact),
            paths=(),
            options={},
            env=worker_environment(
                spec.env,
                inherit=spec.inherit_env,
                allow_loader=self.context.allow_loader_env,
                source=spec.manifest_path or "",
            ),
            cwd=str(spec.base_dir),
            memory_limit=spec.memory_limit,
            details={"command": argv},
        )
