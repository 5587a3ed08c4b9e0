"""Trust rules of the HTTP reception (brief sections 11 and 13).

Three route levels: ``OPEN`` (``/healthz``: always answered), ``READ``
(calls, inspection, jobs, metrics, the dashboard: need the token when the
hub listens on a non-loopback address, with ``--auth always``, or for
another local user — see ``peers.py``) and ``ADMIN`` (load, unload, reload:
always need it).  Every request's ``Host`` header must name the address the
request arrived at, the bound address, or localhost (DNS rebinding: 403).
A browser's request from another origin (``Origin``, ``Sec-Fetch-Site``) is
refused on every route (403).  A browser's credential is a cookie whose name
carries the hub's port, which counts on a mutating request only with the
anti-forgery header.  A refused request gets an Observation like any other
failure (``unauthenticated``, ``forbidden``).

The token is compared in constant time.  When none is given, ``cncf serve``
creates one in the hub's home (mode 0600) — see :func:`token_for_serving`.
"""

from __future__ import annotations

import base64
import enum
import hashlib
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


class Auth(enum.StrEnum):
    """When READ routes need the token: ``loopback`` (the default: only on a
    non-loopback address, or for another local user) or ``always``."""

    LOOPBACK = "loopback"
    ALWAYS = "always"


_LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost"})
_SAFE_FETCH_SITES = frozenset({"same-origin", "none"})
XSRF_HEADER = "x-cncf-xsrf"


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


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` → ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def bearer(authorization: str | None) -> str:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return ""


_MAX_ACCEPTED = 256


class Trust:
    """What one serving hub accepts: its token, the names it answers to, and
    which requests a browser may make (brief section 11)."""

    def __init__(self, token: str | None, bind_host: str, port: int = 0, *, auth: Auth = Auth.LOOPBACK) -> None:
        self.token = token
        self.bind_host = bind_host.lower().strip("[]")
        self.loopback = is_loopback(bind_host)
        self.auth = auth
        # Bound to this hub's port: cookies ignore ports, so two hubs on one
        # host keep theirs apart by name (as Jupyter's ``username-HOST-PORT``).
        self.cookie = f"cncf_token_{port}"
        self.xsrf_cookie = f"cncf_xsrf_{port}"
        # the anti-forgery value: derived from the token (nothing to store),
        # and telling nothing about it
        self.xsrf = hmac.new((token or "").encode(), b"cncf-xsrf", hashlib.sha256).hexdigest() if token else ""
        # (Host, Origin, Sec-Fetch-Site, local address) combinations check_where accepted
        self.accepted: set[tuple[str | None, str | None, str | None, str | None]] = set()

    def check_where(
        self, host: str | None, origin: str | None, fetch_site: str | None, local_addr: str | None
    ) -> Observation | None:
        """:meth:`check_host`, then :meth:`check_browser` when a browser said where
        the request comes from.  An accepted combination is remembered in
        :attr:`accepted` (a client sends the same ones on every request), so the
        serving path decides it with one set lookup; refusals are not kept."""
        obs = self.check_host(host, local_addr)
        if obs is None and (origin is not None or fetch_site is not None):
            obs = self.check_browser(host, origin, fetch_site)
        if obs is None:
            if len(self.accepted) >= _MAX_ACCEPTED:  # bounded whatever clients send
                self.accepted.clear()
            self.accepted.add((host, origin, fetch_site, local_addr))
        return obs

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
            reason="host",
        )

    @staticmethod
    def check_browser(host: str | None, origin: str | None, fetch_site: str | None) -> Observation | None:
        """None unless a browser sent the request from another origin.

        Browsers say where a request comes from: ``Sec-Fetch-Site`` (every
        current engine) and ``Origin`` (every non-GET request, and every
        cross-origin ``fetch``).  A request without either is not a browser's
        cross-origin request.  ``same-site`` is refused too: a page on another
        port of this host is same-site, but not this hub."""
        why = ""
        if fetch_site is not None and fetch_site.strip().lower() not in _SAFE_FETCH_SITES:
            why = f"Sec-Fetch-Site: {fetch_site}"
        elif origin is not None:
            o = origin.strip().lower()
            scheme, sep, rest = o.partition("://")
            if not sep or scheme not in ("http", "https") or host is None or rest != host.strip().lower():
                why = f"Origin: {origin}"
        if not why:
            return None
        return Observation.of(
            Code.FORBIDDEN,
            f"a browser sent this request from a page of another origin ({why}); a web page may not use "
            "this hub — call it from a program, or from the hub's own dashboard",
            stage=Stage.RECEPTION,
            origin=origin,
            fetch_site=fetch_site,
            reason="cross_origin",
        )

    def needs_token(self, level: Level, foreign: bool = False) -> bool:
        """``foreign``: the peer is another local user (see ``peers.py``)."""
        if level is Level.ADMIN:
            return True
        return level is Level.READ and (not self.loopback or self.auth is Auth.ALWAYS or foreign)

    def check_token(
        self,
        level: Level,
        authorization: str | None,
        cookie: str | None = None,
        query_token: str | None = None,
        *,
        xsrf: str | None = None,
        mutating: bool = False,
        foreign: bool = False,
    ) -> Observation | None:
        """None when the request may pass at ``level``, else ``unauthenticated``.

        The token may come as ``Authorization: Bearer TOKEN`` (scripts, the
        client), or — for a browser, which cannot add a header to a page
        load — as the port-bound ``cncf_token_PORT`` cookie that the
        dashboard's ``/?token=TOKEN`` sets (HttpOnly, SameSite=Strict,
        host-only).  On a mutating request the cookie counts only with the
        anti-forgery header ``X-Cncf-Xsrf`` (its value is the
        ``cncf_xsrf_PORT`` cookie's), as Jupyter's ``_xsrf``."""
        if not self.needs_token(level, foreign):
            return None
        sent = bearer(authorization)
        if not sent and cookie:
            from_cookie = cookie_value(cookie, self.cookie)
            if from_cookie and (not mutating or self.xsrf_ok(xsrf)):
                sent = from_cookie
        if not sent and query_token:
            sent = query_token
        if self.accepts(sent):
            return None
        what = "a wrong token" if sent else "no token"
        if level is Level.ADMIN:
            why = "loading, unloading and reloading always need the token"
        elif foreign:
            why = "the request comes from another local user than the hub's"
        elif self.auth is Auth.ALWAYS:
            why = "this hub was started with --auth always: every route but /healthz needs the token"
        else:
            why = "this hub listens on a non-loopback address: every route but /healthz needs the token"
        return Observation.of(
            Code.UNAUTHENTICATED,
            f"the request carried {what}; {why} (send 'Authorization: Bearer TOKEN'; "
            "in a browser, open /?token=TOKEN once)",
            stage=Stage.RECEPTION,
            level=level.value,
        )

    def xsrf_ok(self, sent: str | None) -> bool:
        return bool(self.xsrf and sent and hmac.compare_digest(sent.strip().encode(), self.xsrf.encode()))

    def accepts(self, sent: str) -> bool:
        return bool(self.token and sent and hmac.compare_digest(sent.encode(), self.token.encode()))


_TOKEN_STYLE = (
    "body{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}"
    "input,button{font:inherit;padding:.3rem .5rem}"
)
TOKEN_PAGE = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>cncf hub: token needed</title>
<style>{_TOKEN_STYLE}</style></head><body>
<h1>This hub needs its token</h1>
<p>Every page but <code>/healthz</code> needs the token here
(<code>cncf serve</code> printed where it is).</p>
<form method="get" action="/"><input name="token" type="password" autocomplete="off" placeholder="token" required>
<button type="submit">Open the dashboard</button></form></body></html>"""

_STYLE_HASH = base64.b64encode(hashlib.sha256(_TOKEN_STYLE.encode()).digest()).decode()

# Every page: no frame may hold it, nothing from elsewhere, no inline script.
CSP_PAGE = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
CSP_TOKEN_PAGE = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def cookie_value(header: str, name: str) -> str:
    """The value of cookie ``name`` in a ``Cookie`` header, or ''."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
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
    token, path, how = serving_token(token_file, home)
    return token, path, how == "given"


def serving_token(token_file: Path | None, home: Path) -> tuple[str, Path | None, str]:
    """As :func:`token_for_serving`, saying how: ``given`` (a token file or
    ``CNCF_TOKEN``), ``created`` (``home/serve.token`` just now) or ``reused``
    (``home/serve.token`` from an earlier run)."""
    if token_file is not None:
        return read_token_file(token_file), token_file, "given"
    env = os.environ.get("CNCF_TOKEN", "").strip()
    if env:
        return env, None, "given"
    path = home / "serve.token"
    if path.exists():
        return read_token_file(path), path, "reused"
    from cncf._private import private_dir

    private_dir(home)  # parents too, and narrowed if an older hub left it wider
    # Race-free with a serve started at the same time: the whole token is written to a
    # private file first, then linked into place (atomic, refused if one is there);
    # the loser reads the winner's complete file.
    tmp = home / f".serve.token.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(tmp, path)
            how = "created"
        except FileExistsError:
            how = "reused"
    finally:
        tmp.unlink(missing_ok=True)
    return read_token_file(path), path, how


__all__ = [
    "CSP_PAGE",
    "CSP_TOKEN_PAGE",
    "TOKEN_PAGE",
    "XSRF_HEADER",
    "Auth",
    "Level",
    "TokenError",
    "Trust",
    "bearer",
    "cookie_value",
    "media_type",
    "is_loopback",
    "read_token_file",
    "serving_token",
    "token_for_serving",
]
