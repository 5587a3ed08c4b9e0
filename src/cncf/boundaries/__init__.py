"""Execution forms.  Each Boundary lives in its own module and is imported only
when a component of that form is loaded, to keep the hub's import time small."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cncf.boundaries.base import Boundary, BoundaryContext

_FORMS: dict[str, str] = {
    "inline": "cncf.boundaries.inline:InlineBoundary",
    "python": "cncf.boundaries.python:PythonBoundary",
    "command": "cncf.boundaries.command:CommandBoundary",
    "jar": "cncf.boundaries.jar:JarBoundary",
}


def create(form: str, context: BoundaryContext) -> Boundary:
    """Instantiate the Boundary for ``form`` (raises KeyError for an unknown form)."""
    module, _, cls = _FORMS[form].partition(":")
    return getattr(importlib.import_module(module), cls)(context)  # type: ignore[no-any-return]
