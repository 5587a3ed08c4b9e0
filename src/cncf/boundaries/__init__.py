"""Execution forms.  Each Boundary lives in its own module and is imported only
when a component of that form is loaded, to keep the hub's import time small."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cncf.boundaries.base import Boundary, BoundaryContext

FORMS = ("inline", "python", "command", "jar")


def create(form: str, context: BoundaryContext) -> Boundary[Any, Any]:
    """Instantiate the Boundary for ``form`` (raises KeyError for an unknown form).

    One explicit factory per form, each checked against the protocol with its
    own loaded/instance types; the form's module is imported on first use."""
    if form == "inline":
        from cncf.boundaries.inline import InlineBoundary, InlineInstance, InlineLoaded

        inline: Boundary[InlineLoaded, InlineInstance] = InlineBoundary(context)
        return inline
    if form == "python":
        from cncf.boundaries._worker import WorkerInstance, WorkerLoaded
        from cncf.boundaries.python import PythonBoundary

        python: Boundary[WorkerLoaded, WorkerInstance] = PythonBoundary(context)
        return python
    if form == "command":
        from cncf.boundaries._worker import WorkerInstance, WorkerLoaded
        from cncf.boundaries.command import CommandBoundary

        command: Boundary[WorkerLoaded, WorkerInstance] = CommandBoundary(context)
        return command
    if form == "jar":
        from cncf.boundaries.jar import JarBoundary, JarInstance, JarLoaded

        jar: Boundary[JarLoaded, JarInstance] = JarBoundary(context)
        return jar
    raise KeyError(form)
