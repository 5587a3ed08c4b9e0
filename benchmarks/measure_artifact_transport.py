"""How should an artifact reach a node: Ray's package store (``gcs://``) or a chunked pull?

Issue 17 asks for the size at which placement stops putting packages in Ray's
package store (held in the head's memory as one message) and pulls them in
bounded chunks instead.  For 1, 10, 50 and 100 MB of incompressible files this
measures, on a head plus one isolated node (``tests/placement/isolated.py``):

* ``gcs``: the driver uploading them as a ``working_dir`` (``ray.init``
  minus an ``ray.init`` without it), the first task on the isolated node that
  uses it (the node downloads and unpacks it), and the GCS server's resident
  memory before, after the upload, and after the job ended;
* ``pull``: the same bytes, packed deterministically and hashed
  (:func:`cncf.placement.artifacts.pack_folder`), pulled into an
  :class:`~cncf.placement.artifacts.ArtifactCache` over a loopback TCP
  socket in 1 MiB request/reply chunks (``serve_chunks`` / ``SocketSource``,
  what the channel's artifact role would carry), verified and renamed, and unpacked.

Run: ``PYTHONPATH=$PWD/src:$PWD python benchmarks/measure_artifact_transport.py [MB ...]``.
Prints one JSON line per size.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cncf.placement.artifacts import (
    ArtifactCache,
    LocalFileSource,
    SocketSource,
    pack_folder,
    serve_chunks,
    sha256_file,
)
from tests.placement.isolated import IsolatedCluster


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _folder(root: Path, mb: int) -> Path:
    root.mkdir(parents=True)
    for i in range(mb // 10 or 1):
        (root / f"part{i}.bin").write_bytes(os.urandom(min(mb, 10) * 1024 * 1024))
    return root


def _serve(source: LocalFileSource) -> int:
    """A TCP listener answering one connection with :func:`serve_chunks` (the hub's side)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                serve_chunks(conn, source)

    threading.Thread(target=run, daemon=True).start()
    return int(listener.getsockname()[1])


def _node_task(paths: list[str]) -> float:
    import os
    import time

    t = time.monotonic()
    assert all(os.path.exists(p) for p in paths)
    return time.monotonic() - t


def measure(cluster: IsolatedCluster, mb: int, tmp: Path) -> dict[str, Any]:
    import ray
    from ray import cloudpickle

    folder = _folder(tmp / f"wd{mb}", mb)
    gcs_pid = cluster.cluster.head_node.all_processes["gcs_server"][0].process.pid
    out: dict[str, Any] = {"mb": mb}

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    task = ray.remote(num_cpus=0, resources={"iso": 1})(_node_task)
    # Baselines, warm: a connection without a package, and a first task in a fresh
    # worker process (a runtime_env of its own) without a package to download.
    t = time.monotonic()
    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    base_init = time.monotonic() - t
    t = time.monotonic()
    ray.get(task.options(runtime_env={"env_vars": {"CNCF_MEASURE": str(mb)}}).remote([]), timeout=600)
    base_task = time.monotonic() - t
    ray.shutdown()
    before = _rss_mb(gcs_pid)
    t = time.monotonic()
    ray.init(
        address=cluster.address, logging_level="ERROR", log_to_driver=False, runtime_env={"working_dir": str(folder)}
    )
    out["gcs_upload_s"] = round(time.monotonic() - t - base_init, 2)
    out["gcs_rss_before_mb"] = round(before)
    out["gcs_rss_after_upload_mb"] = round(_rss_mb(gcs_pid))
    t = time.monotonic()
    ray.get(task.remote([p.name for p in folder.iterdir()]), timeout=600)
    out["gcs_first_task_on_node_s"] = round(time.monotonic() - t, 2)
    out["first_task_without_package_s"] = round(base_task, 2)
    ray.shutdown()
    time.sleep(5)
    out["gcs_rss_after_job_mb"] = round(_rss_mb(gcs_pid))

    # The chunked pull of the same content.
    t = time.monotonic()
    archive = tmp / f"wd{mb}.tar.gz"
    digest = pack_folder(folder, archive)
    out["pack_and_hash_s"] = round(time.monotonic() - t, 2)
    t = time.monotonic()
    sha256_file(archive)
    out["hash_only_s"] = round(time.monotonic() - t, 2)
    port = _serve(LocalFileSource({digest: archive}))
    cache = ArtifactCache(tmp / f"cache{mb}", max_bytes=1 << 40)
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as conn:
        cache.ensure(digest, SocketSource(conn))
    out["pull_verify_s"] = round(time.monotonic() - t, 2)
    t = time.monotonic()
    cache.unpacked(digest, LocalFileSource({digest: archive}))
    out["unpack_s"] = round(time.monotonic() - t, 2)
    out["gcs_rss_growth_per_mb"] = round((out["gcs_rss_after_upload_mb"] - before) / mb, 2)
    return out


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1, 10, 50, 100]
    tmp = Path(tempfile.mkdtemp(prefix="artx-"))
    cluster = IsolatedCluster(head_resources={"hub_machine": 1})
    try:
        cluster.add("iso", {"iso": 1})
        import ray

        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)  # warm-up
        ray.shutdown()
        with open("/proc/loadavg") as f:
            print(json.dumps({"loadavg": f.read().split()[:3]}), flush=True)
        for mb in sizes:
            print(json.dumps(measure(cluster, mb, tmp)), flush=True)
    finally:
        cluster.shutdown()
        cluster.cleanup_disk()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
