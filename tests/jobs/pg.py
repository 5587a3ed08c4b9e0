"""A real PostgreSQL server for the job tests (and benchmarks/bench_jobs.py).

Debian's ``postgresql`` package (scripts/install-system-deps.sh): ``initdb`` into
a temporary folder, run as an unprivileged user (``nobody``: the server refuses
to run as root), on a free loopback port, stopped (and its folder removed) at
the end.  Each test gets a database of its own (``PgServer.database``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "nobody"


def pg_bin() -> Path | None:
    """The folder of ``initdb``/``pg_ctl`` (newest installed version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    ctl = shutil.which("pg_ctl")
    return Path(ctl).parent if ctl else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL server (module docstring)."""

    def __init__(self) -> None:
        bindir = pg_bin()
        if bindir is None:
            raise FileNotFoundError("PostgreSQL is not installed (scripts/install-system-deps.sh installs it)")
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="cncf-pg-test-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self._n = 0
        self._as_user = os.geteuid() == 0
        if self._as_user:
            shutil.chown(self.dir, USER, None)
            self.dir.chmod(0o700)
        self._run(str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        prefix = ["setpriv", f"--reuid={USER}", "--regid=nogroup", "--clear-groups"] if self._as_user else []
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(self.dir)}
        r = subprocess.run([*prefix, *argv], capture_output=True, text=True, env=env, cwd=self.dir, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-o", opts, "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        self._n += 1
        name = f"t{os.getpid()}_{self._n}_{int(time.time() * 1000) % 100000}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
