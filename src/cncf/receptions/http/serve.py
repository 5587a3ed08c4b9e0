"""``cncf serve HUBFILE``: a long-running hub behind the HTTP reception.

Start-up: read the hub file (the same reader as ``cncf run``), pick address,
port and token (options, then the hub file's ``[serve]`` table, then the
defaults), bind the socket first — a port in use fails before any component
starts —, load every ``[[component]]``, serve, and print one line when
ready: ``cncf: serving N components at http://HOST:PORT/``.

Shutdown on SIGINT or SIGTERM, in this order: stop admitting (the listening
socket closes; a request still arriving on a kept-alive connection gets
``hub_closed``), let running requests end within the grace period, then close
the hub: what still runs is cancelled (a running job is handed back to the
queue), queued jobs stay in the store, every component is unloaded and its
processes and folders reaped; exit 0.  A second signal skips the grace.

uvicorn's own signal capture is replaced (it re-raises the signal after its
shutdown, which would kill the process before the hub is closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import sys
import tomllib
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from cncf.observation import Observation
from cncf.receptions.http.protocol import Limits

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_HOST, DEFAULT_PORT, DEFAULT_GRACE = "127.0.0.1", 8470, 10.0
# the [serve] limits: key -> (Limits field, integer?, minimum)
_LIMIT_KEYS: dict[str, tuple[bool, float]] = {
    "header_timeout": (False, 0.1),
    "max_headers": (True, 1),
    "max_header_bytes": (True, 1024),
    "max_body": (True, 0),
    "keep_alive": (False, 0.1),
    "max_connections": (True, 0),
}
_SERVE_KEYS = {"host", "port", "token_file", "grace", "auth", "unix", "backlog", *_LIMIT_KEYS}
AUTH_CHOICES = ("loopback", "always")


class ServeError(ValueError):
    """A usage problem: the hub file, its ``[serve]`` table, the token or the address."""


def serve_table(path: Path) -> dict[str, Any]:
    """The hub file's ``[serve]`` table (token_file resolved against the hub file)."""
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ServeError(f"{path}: cannot read hub file: {exc}") from None
    table = doc.get("serve", {})
    if not isinstance(table, dict):
        raise ServeError(f"{path}: 'serve' must be a table")
    extra = set(table) - _SERVE_KEYS
    if extra:
        raise ServeError(f"{path}: [serve] has unknown key(s) {sorted(extra)}; expected {sorted(_SERVE_KEYS)}")
    if "port" in table and (
        isinstance(table["port"], bool) or not isinstance(table["port"], int) or not 0 <= table["port"] <= 65535
    ):
        raise ServeError(f"{path}: [serve] port must be a whole number 0..65535, got {table['port']!r}")
    if "host" in table and not isinstance(table["host"], str):
        raise ServeError(f"{path}: [serve] host must be a string")
    if "grace" in table and (
        isinstance(table["grace"], bool) or not isinstance(table["grace"], int | float) or table["grace"] < 0
    ):
        raise ServeError(f"{path}: [serve] grace must be a number of seconds >= 0")
    if "token_file" in table:
        if not isinstance(table["token_file"], str):
            raise ServeError(f"{path}: [serve] token_file must be a string")
        table["token_file"] = (path.parent / table["token_file"]).expanduser()
    if "unix" in table:
        if not isinstance(table["unix"], str) or not table["unix"]:
            raise ServeError(f"{path}: [serve] unix must be a path")
        table["unix"] = (path.parent / table["unix"]).expanduser()
    if "auth" in table and table["auth"] not in AUTH_CHOICES:
        raise ServeError(f"{path}: [serve] auth must be one of {', '.join(AUTH_CHOICES)}, got {table['auth']!r}")
    for key, (integer, minimum) in (*_LIMIT_KEYS.items(), ("backlog", (True, 1))):
        if key in table:
            v = table[key]
            ok = isinstance(v, int) if integer else isinstance(v, int | float)
            if isinstance(v, bool) or not ok or not minimum <= v <= 1e9:
                kind = "a whole number" if integer else "a number of seconds"
                raise ServeError(f"{path}: [serve] {key} must be {kind} >= {minimum:g}, got {v!r}")
    return table


def limits_of(table: dict[str, Any]) -> Limits:
    return Limits(**{k: table[k] for k in _LIMIT_KEYS if k in table})


def _bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def _bind_unix(path: Path, backlog: int = 2048) -> socket.socket:
    """A Unix socket only its user can connect to (mode 0600 from its creation)."""
    if path.is_socket():
        path.unlink()  # a previous hub's
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old)
    sock.set_inheritable(False)
    return sock


def _harden() -> None:
    """What a worker of the same user could read of the serving hub: its
    environment (``CNCF_TOKEN``: cleared from ``os.environ`` and overwritten in
    the memory ``/proc/PID/environ`` shows), its command line (the home and
    token file paths after ``serve`` are overwritten: ``/proc/PID/cmdline``
    shows ``... cncf serve``), its memory (``PR_SET_DUMPABLE`` 0: ``/proc/PID/mem``,
    ``environ`` and ptrace are refused to the same user)."""
    os.environ.pop("CNCF_TOKEN", None)
    _scrub(_ENV, lambda entries: [i for i, e in enumerate(entries) if e.startswith(b"CNCF_TOKEN=")], 11)
    _scrub(_ARGS, _after_serve, 0)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        pass


_ARGS, _ENV = 48, 50  # /proc/self/stat fields: arg_start, arg_end; env_start, env_end


def _after_serve(entries: list[bytes]) -> list[int]:
    if b"serve" not in entries:
        return []
    return list(range(entries.index(b"serve") + 1, len(entries)))


def _scrub(field: int, which: Callable[[list[bytes]], list[int]], keep: int) -> None:
    """Overwrite (with NULs, past their first ``keep`` bytes) the entries ``which``
    picks of the process's initial argument or environment block: what
    ``/proc/self/cmdline`` and ``/proc/self/environ`` read (``unsetenv`` and
    ``sys.argv`` leave it as it was)."""
    import ctypes

    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[field - 3]), int(fields[field - 2])  # fields[0] is field 3
        if not 0 < start < end or end - start > 1 << 22:
            return
        entries = ctypes.string_at(start, end - start).split(b"\0")
    except (OSError, ValueError, IndexError):
        return
    offsets = [0]
    for e in entries:
        offsets.append(offsets[-1] + len(e) + 1)
    for i in which(entries):
        n = len(entries[i]) - keep
        if n > 0 and offsets[i] + keep + n <= end - start:
            ctypes.memset(start + offsets[i] + keep, 0, n)


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"


async def serve(
    hubfile: Path,
    *,
    host: str | None,
    port: int | None,
    token_file: Path | None,
    home: Path | None,
    grace: float | None,
    say: Callable[[str], None],
    ready: Callable[[str], None],
    auth: str | None = None,
    unix: Path | None = None,
) -> int:
    """Run until SIGINT/SIGTERM; the exit status (``say``: progress on stderr,
    ``ready``: the one ready line on stdout)."""
    import uvicorn

    from cncf.hub import AsyncHub
    from cncf.paths import default_home
    from cncf.receptions.cli_serve import job_summary, start_job_drain
    from cncf.receptions.http import peers
    from cncf.receptions.http.app import FOREIGN, Reception, refusal_of
    from cncf.receptions.http.auth import Auth, TokenError, Trust, is_loopback, serving_token
    from cncf.receptions.http.protocol import protocol_class
    from cncf.receptions.runner import HubFileError, _read
    from cncf.wire import ownership

    try:
        comps, _calls = _read(hubfile)
        table = serve_table(hubfile)
    except (HubFileError, ServeError) as exc:
        say(f"error: {exc}")
        return EXIT_USAGE
    host = host or table.get("host") or DEFAULT_HOST
    port = port if port is not None else int(table.get("port", DEFAULT_PORT))
    grace = grace if grace is not None else float(table.get("grace", DEFAULT_GRACE))
    auth_mode = Auth(auth or table.get("auth", Auth.LOOPBACK.value))
    unix = unix or table.get("unix")
    limits = limits_of(table)
    backlog = int(table.get("backlog", 2048))
    home_path = Path(home).expanduser() if home is not None else default_home()
    try:
        token, source, how = serving_token(token_file or table.get("token_file"), home_path)
        explicit = how == "given"
    except (TokenError, OSError) as exc:
        say(f"error: {exc}")
        return EXIT_USAGE
    if source is not None:  # a worker's view of the file system covers it (where the kernel lets it)
        ownership.hide_from_workers(source)
    if not is_loopback(host) and not explicit:
        say(
            f"error: refusing to listen on the non-loopback address {host} without an explicit token "
            "(--token-file F, [serve] token_file, or CNCF_TOKEN)"
        )
        return EXIT_USAGE
    try:
        sock = _bind_unix(Path(unix), backlog) if unix is not None else _bind(host, port, backlog)
    except OSError as exc:
        where = unix if unix is not None else f"{host}:{port}"
        say(f"error: cannot listen on {where}: {exc.strerror or exc}")
        return EXIT_FAILED
    if unix is None:
        port = sock.getsockname()[1]
    else:
        host, port = "localhost", 0
        ownership.hide_from_workers(unix)  # workers are the hub's user: the socket's mode would admit them
    _harden()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals: list[int] = []

    def on_signal(sig: int) -> None:
        signals.append(sig)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        async with AsyncHub(home_path, progress=lambda line: say(f"… {line}"), manifest_inline=False) as hub:
            refusals: list[Observation] = []
            for c in comps:
                if stop.is_set():
                    break
                overrides = {k: v for k, v in c.items() if k != "target"}
                target = str(hubfile.parent / str(c["target"]))
                handle = await hub.load(target, **overrides)
                refused = refusal_of(handle)
                if refused is not None:  # the hub's own rule (inline only when asked): not served
                    await hub.unload(handle.name)
                    refusals.append(refused)
                    say(f"refused {c['target']}: {refused.message}")
                    continue
                what = (
                    f"{handle.observation.code.value}: {handle.observation.message}"
                    if handle.state == "failed" and handle.observation
                    else f"{len(handle.operations)} operations"
                )
                say(f"{handle.name} ({handle.form}) {handle.state} — {what}")
            if stop.is_set():
                return EXIT_OK
            trust = Trust(token, host, port, auth=auth_mode)
            reception = Reception(hub, trust, max_body=limits.max_body, refused_entries=refusals)
            from cncf import telemetry

            untrace = telemetry.install(hub)  # spans per call when opentelemetry-sdk is set up
            if untrace is not None:
                say("tracing calls with OpenTelemetry")
            elif (why := telemetry.unavailable()) is not None:
                say(f"not tracing: {why}")
            # another local user's requests are marked (the token is then asked); with
            # --auth always, or off loopback, everybody is asked already
            check = peers.foreign if trust.loopback and auth_mode is Auth.LOOPBACK else None
            max_connections = limits.connections()
            config = uvicorn.Config(
                reception.app(),
                lifespan="off",
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=math.ceil(grace),
                server_header=False,
                # X-Forwarded-For / -Proto are not honoured: no decision here uses the
                # client's address, and a local process cannot dress up as another
                # (it also spares a middleware layer on every request)
                proxy_headers=False,
                http=protocol_class(limits, check, FOREIGN),
                timeout_keep_alive=math.ceil(limits.keep_alive),
                # a backstop: the protocol keeps live connections (so requests in flight) at
                # max_connections; uvicorn counts the ones closing too
                limit_concurrency=2 * max_connections + 16,
                h11_max_incomplete_event_size=limits.max_header_bytes,  # if h11 were ever used
                backlog=backlog,
            )
            server = _Server(config)
            task = asyncio.ensure_future(server.serve(sockets=[sock]))
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            if task.done():
                await task
                return EXIT_FAILED
            if source is not None:
                say(
                    f"token: {source}"
                    + ("" if explicit else f" ({how}; send 'Authorization: Bearer TOKEN' to load, unload or reload)")
                )
            where = f"unix:{unix}" if unix is not None else _url(host, port)
            ready(f"cncf: serving {len(hub.components())} components at {where}")
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            jobs_drain = None
            if not task.done():
                say(f"stopping ({signal.Signals(signals[0]).name}): draining for up to {grace:g}s")
                jobs_drain = start_job_drain(hub, grace)  # running jobs get the grace calls get
                reception.draining = True
                server.should_exit = True
                stop.clear()
                second = asyncio.ensure_future(stop.wait())
                await asyncio.wait({task, second}, return_when=asyncio.FIRST_COMPLETED)
                if not task.done():
                    server.force_exit = True
                    await task
                if jobs_drain is not None and not second.done():
                    await asyncio.wait({jobs_drain, second}, return_when=asyncio.FIRST_COMPLETED)
                    jobs_drain.cancel()
                second.cancel()
            stopper.cancel()
            reception.close()
            if untrace is not None:
                untrace()
            say("closing the hub: unloading every component")
        summary = job_summary(hub)  # after close: what did not end in time was requeued
        if summary is not None:
            say(summary)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        sock.close()
        if unix is not None:
            with contextlib.suppress(OSError):
                Path(unix).unlink()
    say("stopped")
    return EXIT_OK


class _Server:
    """``uvicorn.Server`` without its signal capture (we own the signals)."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Generator[None, None, None]:
                yield

        return Server(config)


def run(hubfile: Path, **kw: Any) -> int:
    """Run :func:`serve` on uvloop when it is installed (uvicorn[standard])."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    return int(runner(serve(hubfile, **kw)))


def _stderr(line: str) -> None:
    print(f"cncf: {line}", file=sys.stderr, flush=True)


def _stdout(line: str) -> None:
    print(line, flush=True)


__all__ = ["ServeError", "limits_of", "run", "serve", "serve_table"]
