"""Trust rules of the HTTP reception (brief sections 11 and 13).

Three route levels: ``OPEN`` (``/healthz``: always answered), ``READ``
(calls, inspection, jobs, metrics, the dashboard: need the token only when
the hub listens on a non-loopback address) and ``ADMIN`` (load, unload,
reload: always need it).  Every request's ``Host`` header must name the
address the request arrived at, the bound address, or localhost: a browser
tricked by DNS rebinding into calling ``http://evil.example:8470/`` sends
``Host: evil.example`` and is refused (403).  A refused request gets an
Observation like any other failure (``unauthenticated``, ``forbidden``).

The token is compared in constant time.  When none is given, ``cncf serve``
creates one in the hub's home (mode 0600) — see :func:`token_for_serving`.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
import os
import secrets
from pathlib import Path

from cncf.observation import Code, Observation, Stage


class Level(enum.Enum):
    OPEN = "open"
    READ = "read"
    ADMIN = "admin"


_LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Is ``host`` (a bind address) reachable only from this machine?"""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8470`` → ``::1``), lowercased."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1:].split("]", 1)[0]
    if h.count(":") == 1:
        return h.split(":", 1)[0]
    return h


class Trust:
    """What one serving hub accepts: its token, and the names it answers to."""

    def __init__(self, token: str | None, bind_host: str) -> None:
        self.token = token
        self.bind_host = bind_host.lower().strip("[]")
        self.loopback = is_loopback(bind_host)

    def check_host(self, header: str | None, local_addr: str | None) -> Observation | None:
        """None when the ``Host`` header is acceptable, else a ``forbidden`` Observation."""
        if header is None:
            return None  # HTTP/1.0 without Host: not a browser, nothing to rebind
        name = host_name(header)
        if name in _LOCAL_NAMES or name == self.bind_host or (local_addr and name == local_addr.lower()):
            return None
        return Observation.of(
            Code.FORBIDDEN,
            f"Host {header!r} names neither this hub's address nor localhost (a DNS-rebinding guard); "
            "call the hub by its address",
            stage=Stage.RECEPTION,
            host=header,
        )

    def needs_token(self, level: Level) -> bool:
        return level is Level.ADMIN or (level is Level.READ and not self.loopback)

    def check_token(
        self, level: Level, authorization: str | None, cookie: str | None = None, query_token: str | None = None
    ) -> Observation | None:
        """None when the request may pass at ``level``, else ``unauthenticated``.

        The token may come as ``Authorization: Bearer TOKEN`` (scripts, the
        client), or — for a browser, which cannot add a header to a page
        load — as the ``cncf_token`` cookie that the dashboard's
        ``/?token=TOKEN`` sets (``SameSite=Strict``: another site's page cannot
        make the browser send it; ``query_token`` is accepted there only)."""
        if not self.needs_token(level):
            return None
        sent = ""
        if authorization and authorization[:7].lower() == "bearer ":
            sent = authorization[7:].strip()
        if not sent and cookie:
            sent = cookie_token(cookie)
        if not sent and query_token:
            sent = query_token
        if self.accepts(sent):
            return None
        what = "a wrong token" if sent else "no token"
        why = (
            "loading, unloading and reloading always need the token"
            if level is Level.ADMIN
            else "this hub listens on a non-loopback address: every route but /healthz needs the token"
        )
        return Observation.of(
            Code.UNAUTHENTICATED,
            f"the request carried {what}; {why} (send 'Authorization: Bearer TOKEN'; "
            "in a browser, open /?token=TOKEN once)",
            stage=Stage.RECEPTION,
            level=level.value,
        )

    def accepts(self, sent: str) -> bool:
        return bool(self.token and sent and hmac.compare_digest(sent.encode(), self.token.encode()))


COOKIE = "cncf_token"

TOKEN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>cncf hub: token needed</title>
<style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}
input,button{font:inherit;padding:.3rem .5rem}</style></head><body>
<h1>This hub needs its token</h1>
<p>It listens on a non-loopback address, so every page but <code>/healthz</code> needs the token
(<code>cncf serve</code> printed where it is).</p>
<form method="get" action="/"><input name="token" type="password" autocomplete="off" placeholder="token" required>
<button type="submit">Open the dashboard</button></form></body></html>"""


def cookie_token(header: str) -> str:
    """The ``cncf_token`` value of a ``Cookie`` header, or ''."""
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value.strip()
    return ""


# ---------------------------------------------------------------------------
# Where the token comes from
# ---------------------------------------------------------------------------


class TokenError(ValueError):
    """The token file cannot be read, or is empty."""


def read_token_file(path: Path) -> str:
    try:
        token = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenError(f"cannot read the token file {path}: {exc}") from None
    if not token:
        raise TokenError(f"the token file {path} is empty")
    return token


def token_for_serving(token_file: Path | None, home: Path) -> tuple[str, Path | None, bool]:
    """The token, the file it came from (None: ``CNCF_TOKEN``), and whether it
    was given explicitly (a created one is not: it cannot guard a public
    address nobody was told about).  Order: ``--token-file`` / the hub file's
    ``[serve] token_file``, then ``CNCF_TOKEN``, then ``home/serve.token``
    (created with mode 0600 when absent)."""
    if token_file is not None:
        return read_token_file(token_file), token_file, True
    env = os.environ.get("CNCF_TOKEN", "").strip()
    if env:
        return env, None, True
    path = home / "serve.token"
    if path.exists():
        return read_token_file(path), path, False
    from cncf._private import private_dir

    private_dir(home)  # parents too, and narrowed if an older hub left it wider
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    return read_token_file(path), path, False


__all__ = [
    "COOKIE",
    "TOKEN_PAGE",
    "Level",
    "TokenError",
    "Trust",
    "cookie_token",
    "is_loopback",
    "read_token_file",
    "token_for_serving",
]
