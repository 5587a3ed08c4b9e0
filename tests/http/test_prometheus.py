"""A real Prometheus scraping ``cncf serve`` every second (docs/metrics.md).

Debian's ``prometheus`` (scripts/install-system-deps.sh) is started with a
config and a storage folder of the test's own, on a free loopback port.  The
test drives calls of known lengths, timed by the client, then asks
Prometheus's HTTP API: its quantiles of the hub's histograms must agree with
the client's timings within 10 %, and every PromQL example of
docs/metrics.md must run and return data.  Under ``CI=true`` a missing
``prometheus`` fails the test.
"""

from __future__ import annotations

import random
import re
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI
from tests.http.conftest import FIXTURES, Served

HUB = FIXTURES / "observed.toml"
DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
NAP_ROUTE = "/rest/v1/{component}/{service}/{operation}"  # only the timed calls take this route


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc = proc
        self.http = httpx.Client(base_url=url, timeout=30, trust_env=False)

    def query(self, promql: str) -> list[dict[str, Any]]:
        r = self.http.get("/api/v1/query", params={"query": promql})
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (promql, body)
        return list(body["data"]["result"])

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, promql: str, expected: float, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.value(promql) == expected:
                return
            time.sleep(0.25)
        raise AssertionError(f"{promql} never read {expected} (last: {self.value(promql)})")


def _start_prometheus(tmp: Path, target: str) -> Prometheus:
    exe = shutil.which("prometheus")
    if exe is None:
        if IN_CI:
            pytest.fail("prometheus is not installed (scripts/install-system-deps.sh installs it)")
        pytest.skip("prometheus is not installed (scripts/install-system-deps.sh installs it)")
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: cncf\n"
        "    scrape_interval: 1s\n"
        "    scrape_timeout: 900ms\n"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    port = _free_port()
    with (tmp / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                exe,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    prom = Prometheus(proc, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited {proc.returncode}: {(tmp / 'prometheus.log').read_text()}")
        try:
            if prom.http.get("/-/ready").status_code == 200:
                return prom
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("prometheus did not get ready")


@pytest.fixture
def prometheus(serve, tmp_path: Path) -> Iterator[tuple[Served, Prometheus]]:  # type: ignore[no-untyped-def]
    served: Served = serve(HUB)
    prom = _start_prometheus(tmp_path / "prometheus", served.url.removeprefix("http://"))
    try:
        yield served, prom
    finally:
        prom.http.close()
        prom.proc.terminate()
        try:
            prom.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            prom.proc.kill()
            prom.proc.wait()


def _examples() -> list[str]:
    return [q.strip() for q in re.findall(r"```promql\n(.*?)```", DOC.read_text(), flags=re.S)]


def test_prometheus_quantiles_agree_with_the_clients_timings(prometheus) -> None:  # type: ignore[no-untyped-def]
    served, prom = prometheus
    h = served.http
    prom.wait_for('up{job="cncf"}', 1.0)
    # calls of 10..150 ms, spread evenly, in a shuffled order; timed by the client (long
    # enough that the client's own overhead on a loaded machine stays a few percent)
    naps = [10 + 140 * i / 79 for i in range(80)]
    random.Random(19).shuffle(naps)
    h.post("/rest/v1/observed/nap", json=[1]).raise_for_status()  # warm (another route)
    client = []
    for ms in naps:
        t0 = time.perf_counter()
        r = h.post("/rest/v1/observed/default/nap", json=[ms])
        client.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
    count = f'sum(http_server_request_duration_seconds_count{{route="{NAP_ROUTE}"}})'
    prom.wait_for(count, float(len(naps)))
    prom.wait_for('sum(rpc_server_call_duration_seconds_count{operation="default.nap"})', len(naps) + 1.0)
    for q in (0.5, 0.9):
        expected = statistics.quantiles(client, n=100, method="inclusive")[int(q * 100) - 1]
        http_q = prom.value(
            f'histogram_quantile({q}, sum by (le) (http_server_request_duration_seconds_bucket{{route="{NAP_ROUTE}"}}))'
        )
        call_q = prom.value(
            f"histogram_quantile({q}, sum by (le) "
            '(rpc_server_call_duration_seconds_bucket{component="observed",operation="default.nap"}))'
        )
        assert http_q is not None and call_q is not None
        assert abs(http_q - expected) <= 0.1 * expected, (q, http_q, expected)
        # the call is inside the request, and lasts at least the component's own time
        nap_q = statistics.quantiles(naps, n=100, method="inclusive")[int(q * 100) - 1] / 1000
        assert nap_q * 0.97 <= call_q <= http_q * 1.03, (q, nap_q, call_q, http_q)


def test_every_documented_query_runs_against_a_real_prometheus(prometheus) -> None:  # type: ignore[no-untyped-def]
    served, prom = prometheus
    h = served.http
    prom.wait_for('up{job="cncf"}', 1.0)
    assert h.post("/rest/v1/observed/nap", json=[1]).status_code == 200
    assert h.post("/rest/v1/observed/fail").status_code == 500
    assert h.post("/rest/v1/broken/ping").status_code >= 400  # a failed component: counted under its name
    assert h.post("/rest/v1/nobody/ping").status_code == 404
    assert h.post("/rest/v1/observed/late").status_code == 504  # a timeout, stopped cooperatively
    # three jobs of 2 s: one runs (in flight), two wait in the queue
    jobs = [h.post("/rest/v1/observed/later", json=[2.0]) for _ in range(3)]
    assert [j.status_code for j in jobs] == [202, 202, 202]
    for j in jobs:
        assert h.get(j.headers["location"], params={"wait": "30"}).json()["state"] == "succeeded"
    prom.wait_for('sum(cncf_calls_total{component="observed",operation="default.later"})', 3.0)

    assert prom.value('max_over_time(cncf_queue_depth{component="observed"}[1m])') == 2.0
    assert prom.value('cncf_queue_depth{component="observed"}') == 0.0
    oldest = prom.value('max_over_time(cncf_queue_oldest_age_seconds{component="observed"}[1m])')
    assert oldest is not None and 0.5 <= oldest <= 8.0  # the third job waits for two 2 s jobs
    assert prom.value('max_over_time(cncf_calls_in_flight{component="observed"}[1m])') == 1.0
    assert prom.value('cncf_calls_total{component="broken",operation="",outcome="constructor_failed"}') == 1.0
    assert prom.value('cncf_calls_total{component="",operation="",outcome="unknown_component"}') == 1.0
    assert prom.value('cncf_jobs_submitted_total{component="observed",operation="default.later"}') == 3.0
    assert prom.query('cncf_calls_total{outcome="queued"}') == []  # final outcomes only
    prom.wait_for('cncf_cancellations_total{component="observed",tier="cooperative"}', 1.0)
    statuses = {
        (r["metric"]["route"], r["metric"]["status"]) for r in prom.query("http_server_request_duration_seconds_count")
    }
    assert ("/rest/v1/{component}/{operation}", "404") in statuses
    assert ("/rest/v1/{component}/{operation}", "500") in statuses
    assert ("/hub/v1/jobs/{id}", "200") in statuses
    assert prom.value("process_resident_memory_bytes") > 1e6  # type: ignore[operator]
    prom.wait_for('cncf_jobs{state="succeeded"}', 3.0, timeout=15)  # the count is refreshed every 5 s

    examples = _examples()
    assert len(examples) >= 15
    for promql in examples:
        assert prom.query(promql), f"no data for the documented query: {promql}"
    # every metric family the hub exposes is documented
    from prometheus_client.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(h.get("/metrics").text)}
    doc = DOC.read_text()
    missing = sorted(n for n in names if f"`{n}" not in doc)
    assert not missing, missing
