"""Telemetry on against off, in the same run: the cost per call of tracing.

* through ``AsyncHub``: the python form's echo (a real worker) and the inline
  form's, with tracing off, then on (``cncf.telemetry.enable(hub)`` with the
  OpenTelemetry SDK's ``TracerProvider`` and a ``BatchSpanProcessor`` whose
  exporter drops the spans: what a program exporting over OTLP pays on its
  calling thread), alternating rounds; the figure is the median of the
  rounds' medians;
* over HTTP: ``cncf serve`` twice, one started with a global tracer provider
  (the same processor and exporter, set up by a wrapper before ``cncf
  serve`` starts: the way ``OTEL_TRACES_EXPORTER`` would), the other
  without; one keep-alive client posts to each in alternating rounds.  The
  HTTP metrics are on in both (they always are): what differs is the traces
  (an HTTP server span, the call span, the boundary hop).  With two CPUs or
  more, once more with the client confined to one CPU and both hubs to
  another: the served hub as it usually runs, its clients elsewhere, and a
  figure that does not move with where the scheduler puts three processes
  on two CPUs (unpinned, it moves by ±15 % from run to run).

Printed: per-call medians, value = on, floor = off (target ratio <= 1.1), and
the means beside them (a span recorded in a batch moves its cost off the
median call: the mean is what the CPU pays); through AsyncHub also with a
``ParentBased(TraceIdRatioBased(0.01))`` sampler (1 % of root traces
recorded: what the sampled-out calls cost), and the SDK's own floor: a
deferred listener that records one span a call through the same processor
(ids, a ``SpanContext``, a ``ReadableSpan``, ``on_end``) and propagates
nothing — what any recorded span per call costs, whoever records it.

Standalone: ``python benchmarks/bench_telemetry.py``; ``benchmarks/run.py
telemetry`` calls :func:`main`.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

import cncf  # noqa: E402
from cncf import telemetry  # noqa: E402

Row = tuple[str, float, float, str]
N, ROUNDS, HTTP_N = 3000, 10, 2000
PAYLOAD = {"id": 42, "name": "echo", "tags": ["a", "b"], "ratio": 0.5}

# cncf serve under a global tracer provider whose exporter drops every span
_TRACED_SERVE = r"""
import sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

class Drop(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(Drop()))
trace.set_tracer_provider(provider)
from cncf.receptions.cli import main
sys.argv = ["cncf", *sys.argv[1:]]
sys.exit(main())
"""


def _provider(ratio: float = 1.0) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    return provider


async def _block(hub: cncf.AsyncHub, selector: str, n: int) -> tuple[float, float]:
    """(median, mean) µs of ``n`` calls."""
    call = hub.call
    pc = time.perf_counter
    samples = []
    for _ in range(n):
        t = pc()
        outcome = await call(selector, [PAYLOAD])
        samples.append(pc() - t)
        assert outcome.ok, outcome.observation
    return statistics.median(samples) * 1e6, statistics.mean(samples) * 1e6


def _sdk_floor(hub: cncf.AsyncHub, provider: Any) -> Any:
    """Record one span a call through ``provider``'s processor, nothing else."""
    import random

    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, TraceFlags

    tracer = provider.get_tracer("floor")
    on_end, resource = tracer.span_processor.on_end, tracer.resource
    scope, unset, sampled = InstrumentationScope("floor"), Status(), TraceFlags(1)

    def record(events: Any) -> None:
        for e in events:
            attributes = {"rpc.system.name": "cncf", "rpc.method": "echo", "cncf.call_id": e.call.id}
            context = SpanContext(random.getrandbits(128), random.getrandbits(64), False, sampled)
            on_end(
                ReadableSpan(
                    "floor",
                    context,
                    None,
                    resource,
                    attributes,
                    (),
                    (),
                    SpanKind.SERVER,
                    None,
                    unset,
                    e.admitted_ns,
                    e.ended_ns,
                    scope,
                )
            )

    return hub.engine.subscribe_deferred(record)


async def _async_hub(home: Path) -> list[Row]:
    providers = {"traced": _provider(), "1 % sampled": _provider(0.01), "SDK floor": _provider()}
    rows: list[Row] = []
    async with cncf.AsyncHub(home) as hub:
        assert (await hub.load(ROOT / "examples" / "python-counter")).state == "ready"
        assert (await hub.load(HERE / "http_echo", form="inline", name="inline_echo")).state == "ready"
        for label, selector in (("python echo", "counter.echo"), ("inline echo", "inline_echo.echo")):
            runs: dict[str, list[tuple[float, float]]] = {"off": [], **{k: [] for k in providers}}
            await _block(hub, selector, 500)  # warm
            order = list(runs)
            for r in range(ROUNDS):
                for mode in order if r % 2 == 0 else order[::-1]:
                    provider = providers.get(mode)
                    if provider is None:
                        stop = None
                    elif mode == "SDK floor":
                        stop = _sdk_floor(hub, provider)
                    else:
                        stop = telemetry.enable(hub, tracer_provider=provider)
                    runs[mode].append(await _block(hub, selector, N // ROUNDS))
                    if stop is not None:
                        stop()
            off = [statistics.median(m[i] for m in runs["off"]) for i in (0, 1)]
            for mode in providers:
                median, mean = (statistics.median(m[i] for m in runs[mode]) for i in (0, 1))
                rows.append((f"{label} via AsyncHub, {mode} vs off", median, off[0], "µs"))
                rows.append((f"{label} via AsyncHub, {mode} vs off (mean)", mean, off[1], "µs"))
    for provider in providers.values():
        provider.shutdown()
    return rows


def _start(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"at http://127\.0\.0\.1:(\d+)/", line)
        if m:
            return proc, int(m.group(1))
    raise RuntimeError(f"{cmd} did not start")


async def _http_block(port: int, n: int) -> tuple[float, float]:
    import json

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps([PAYLOAD]).encode()
    req = (
        "POST /rest/v1/echo/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    pc = time.perf_counter
    samples = []
    for _ in range(n):
        t = pc()
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
        payload = await reader.readexactly(length)
        samples.append(pc() - t)
        assert payload.startswith(b'{"ok": true'), payload
    writer.close()
    return statistics.median(samples) * 1e6, statistics.mean(samples) * 1e6


def _http(tmp: Path, apart: tuple[int, int] | None = None) -> list[Row]:
    """``apart``: (the client's CPU, the hubs' CPU), each process confined to its own."""
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("OTEL_TRACES_EXPORTER", None)
    hubfile = str(HERE / "http_echo" / "hub.toml")
    args = ["serve", hubfile, "--port", "0"]
    pin = ["taskset", "-c", str(apart[1])] if apart else []
    mine = os.sched_getaffinity(0)
    servers = {
        "off": _start([*pin, sys.executable, "-m", "cncf", *args, "--home", str(tmp / "off")], env),
        "on": _start([*pin, sys.executable, "-c", _TRACED_SERVE, *args, "--home", str(tmp / "on")], env),
    }
    if apart:
        os.sched_setaffinity(0, {apart[0]})
    try:
        results: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
        for _, port in servers.values():
            asyncio.run(_http_block(port, 300))  # warm
        for r in range(ROUNDS):
            for name in ("off", "on") if r % 2 == 0 else ("on", "off"):
                results[name].append(asyncio.run(_http_block(servers[name][1], HTTP_N // ROUNDS)))
    finally:
        os.sched_setaffinity(0, mine)
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    on, off = ([statistics.median(m[i] for m in results[k]) for i in (0, 1)] for k in ("on", "off"))
    where = f" (client on CPU {apart[0]}, hub on CPU {apart[1]})" if apart else ""
    return [
        (f"inline echo over HTTP (cncf serve){where}, traced vs off", on[0], off[0], "µs"),
        (f"inline echo over HTTP (cncf serve){where}, traced vs off (mean)", on[1], off[1], "µs"),
    ]


def main() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="cncf-bench-telemetry-") as tmp:
        rows = asyncio.run(_async_hub(Path(tmp) / "home"))
        rows += _http(Path(tmp))
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:  # the served hub as it usually runs: its clients elsewhere (stable, unlike unpinned)
            rows += _http(Path(tmp) / "apart", (cpus[0], cpus[1]))
    return rows


if __name__ == "__main__":
    for name, value, floor, unit in main():
        print(f"{name}: {value:.1f} {unit} (off: {floor:.1f} {unit}, ratio {value / floor:.2f}x)")
