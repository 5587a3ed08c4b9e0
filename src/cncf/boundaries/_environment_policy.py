"""Which environment variables a worker (or a JVM host) receives.

By default a small allow-list of the hub's environment — what any program
needs to run and to render text — plus the component's manifest ``env``;
``inherit_env = true`` passes the hub's whole environment instead.  Secrets
in the hub's environment (tokens, cloud credentials) therefore do not reach
a component unless it asks for them (brief section 13).

Variables that change how the dynamic loader or a runtime starts — ``LD_*``
and glibc's ``GCONV_*`` / ``LOCPATH`` (both load shared objects), the JVM's
``JAVA_TOOL_OPTIONS`` / ``_JAVA_OPTIONS`` / ``JDK_JAVA_OPTIONS``, Node's
``NODE_OPTIONS`` (``--require``), Python's ``PYTHONPATH`` / ``PYTHONHOME`` /
``PYTHONSTARTUP`` / ``PYTHONWARNINGS`` (its category names a module that is
imported at start) / ``PYTHONBREAKPOINT``, Perl's ``PERL5OPT`` / ``PERL5LIB``,
Ruby's ``RUBYOPT`` / ``RUBYLIB`` and the shells' ``BASH_ENV`` / ``ENV`` — and
the JVM options that load code before ``main`` (``-javaagent``,
``-agentlib``, ``-agentpath``, ``-Xbootclasspath``, ``-XX:OnError`` /
``-XX:OnOutOfMemoryError``, ``-Djava.system.class.loader``) may be set by a
manifest only when the hub's configuration allows it
(``AsyncHub(allow_loader_env=True)`` or ``CNCF_ALLOW_LOADER_ENV=1``): a
downloaded manifest must not be able to preload code into the worker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from cncf.observation import Code, Failed, Observation, Stage

__all__ = ["ALLOWED", "LOADER_JVM_OPTIONS", "LOADER_PREFIXES", "worker_environment"]

#: Names passed from the hub's environment by default.
ALLOWED = frozenset(
    {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME", "TERM", "JAVA_HOME", "SYSTEMROOT"}
)
_ALLOWED_PREFIXES = ("LC_",)
#: Names a manifest may set only with the hub's permission.
LOADER_PREFIXES = ("LD_", "GCONV_", "DYLD_")
_LOADER_NAMES = frozenset(
    {
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONWARNINGS",
        "PYTHONBREAKPOINT",
        "PYTHONUSERBASE",
        "PYTHONPLATLIBDIR",
        "NODE_OPTIONS",
        "NODE_PATH",
        "LOCPATH",
        "NLSPATH",
        "PERL5OPT",
        "PERL5LIB",
        "PERLLIB",
        "RUBYOPT",
        "RUBYLIB",
        "BASH_ENV",
        "ENV",
    }
)
#: JVM option prefixes that load code before the component's (agents, boot classes, hooks).
LOADER_JVM_OPTIONS = (
    "-javaagent",
    "-agentlib",
    "-agentpath",
    "-xbootclasspath",
    "-xx:onerror",
    "-xx:onoutofmemoryerror",
    "-djava.system.class.loader",
    "-xrun",
    "@",  # an argument file carries any of the above
)


def allow_loader_env_default() -> bool:
    return os.environ.get("CNCF_ALLOW_LOADER_ENV", "") in ("1", "true", "yes")


def _is_loader(name: str) -> bool:
    return name.startswith(LOADER_PREFIXES) or name in _LOADER_NAMES  # names are case-sensitive


def _is_loader_option(option: str) -> bool:
    return option.strip().lower().startswith(LOADER_JVM_OPTIONS)


def worker_environment(
    manifest_env: Mapping[str, str],
    *,
    inherit: bool = False,
    allow_loader: bool | None = None,
    source: str = "",
    jvm_options: Sequence[str] = (),
) -> dict[str, str]:
    """The environment for a worker; ``invalid_manifest`` for a refused name (or a
    refused JVM option in ``jvm_options``)."""
    allow = allow_loader_env_default() if allow_loader is None else allow_loader
    for option in jvm_options:
        if _is_loader_option(option) and not allow:
            raise Failed(
                Observation.of(
                    Code.INVALID_MANIFEST,
                    f"{source or 'the manifest'}: jvm_options {option.split('=', 1)[0].split(':', 1)[0]!r} loads "
                    "code into the JVM before the component; the hub refuses it unless its configuration "
                    "allows it (AsyncHub(allow_loader_env=True) or CNCF_ALLOW_LOADER_ENV=1)",
                    stage=Stage.LOAD,
                    key="component.jvm_options",
                    file=source,
                )
            )
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
