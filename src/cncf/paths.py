"""Where the hub keeps its files: the home folder and the shared caches.

One place for both, so the hubs, the JVM build and the CLI agree on them.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "default_home"]


def default_home() -> Path:
    """``$CNCF_HOME``, else ``$XDG_STATE_HOME/cncf``, else ``~/.local/state/cncf``."""
    env = os.environ.get("CNCF_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "cncf"


def cache_dir(home: Path) -> Path:
    """Shared caches (environments, the compiled JVM host): ``$CNCF_CACHE`` or ``home/cache``."""
    env = os.environ.get("CNCF_CACHE")
    return Path(env).expanduser() if env else home / "cache"
