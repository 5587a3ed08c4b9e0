"""Which environment variables a worker (or a JVM host) receives.

By default a small allow-list of the hub's environment — what any program
needs to run and to render text — plus the component's manifest ``env``;
``inherit_env = true`` passes the hub's whole environment instead.  Secrets
in the hub's environment (tokens, cloud credentials) therefore do not reach
a component unless it asks for them (brief section 13).

Variables that change how the dynamic loader or a runtime starts (``LD_*``,
and the JVM's ``JAVA_TOOL_OPTIONS`` / ``_JAVA_OPTIONS`` / ``JDK_JAVA_OPTIONS``)
may be set by a manifest only when the hub's configuration allows it
(``AsyncHub(allow_loader_env=True)`` or ``CNCF_ALLOW_LOADER_ENV=1``): a
downloaded manifest must not be able to preload a library into the worker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cncf.observation import Code, Failed, Observation, Stage

__all__ = ["ALLOWED", "LOADER_PREFIXES", "worker_environment"]

#: Names passed from the hub's environment by default.
ALLOWED = frozenset(
    {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME", "TERM", "JAVA_HOME", "SYSTEMROOT"}
)
_ALLOWED_PREFIXES = ("LC_",)
#: Names a manifest may set only with the hub's permission.
LOADER_PREFIXES = ("LD_",)
_LOADER_NAMES = frozenset(
    {"JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}
)


def allow_loader_env_default() -> bool:
    return os.environ.get("CNCF_ALLOW_LOADER_ENV", "") in ("1", "true", "yes")


def _is_loader(name: str) -> bool:
    return name.startswith(LOADER_PREFIXES) or name in _LOADER_NAMES


def worker_environment(
    manifest_env: Mapping[str, str],
    *,
    inherit: bool = False,
    allow_loader: bool | None = None,
    source: str = "",
) -> dict[str, str]:
    """The environment for a worker; ``invalid_manifest`` for a refused name."""
    allow = allow_loader_env_default() if allow_loader is None else allow_loader
    for name in manifest_env:
        if _is_loader(name) and not allow:
            raise Failed(
                Observation.of(
                    Code.INVALID_MANIFEST,
                    f"{source or 'the manifest'}: env.{name} changes how the worker's loader or runtime starts; "
                    "the hub refuses it unless its configuration allows it "
                    "(AsyncHub(allow_loader_env=True) or CNCF_ALLOW_LOADER_ENV=1)",
                    stage=Stage.LOAD,
                    key=f"component.env.{name}",
                    file=source,
                )
            )
    if inherit:
        base = dict(os.environ)
    else:
        base = {k: v for k, v in os.environ.items() if k in ALLOWED or k.startswith(_ALLOWED_PREFIXES)}
    base.update(manifest_env)
    return base
