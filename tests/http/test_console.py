"""The console in a real headless Chromium, used as a person would, against a
real ``cncf serve`` of ``fixtures/console/hub.toml``.

The charts' values are read from the page (each point of each chart carries
its time and value), and checked against what the test itself sent; an
operation is tried from its form; a job is cancelled from the link the form
gives; reload and unload ask for the token.  Every value a component sends
(its failure message, its stack, its output, its docs) holds markup that
would run if the page ever used it as HTML: it must show as text.
``CNCF_SCREENSHOT=docs/dashboard.png`` saves the docs' screenshots beside
that path (overview and component page at 1400 px, the component page at 390
px, a job's detail).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.http.conftest import FIXTURES, Served

playwright_api = (
    pytest.importorskip("playwright.sync_api")
    if not IN_CI
    else __import__("playwright.sync_api", fromlist=["sync_playwright"])
)

HUB = FIXTURES / "console" / "hub.toml"
STEP = 5  # seconds a chart point covers (the page asks for span=300&step=5)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if IN_CI:
        pytest.fail("chromium is required under CI=true (scripts/install-system-deps.sh installs it)")
    pytest.skip("chromium is not installed")


def _ours(text: str) -> bool:
    return not text.startswith("Failed to load resource: the server responded with a status of")


def _shot(name: str) -> Path | None:
    shot = os.environ.get("CNCF_SCREENSHOT")
    return Path(shot).with_name(name) if shot else None


class Browser:
    def __init__(self, served: Served, p: Any, width: int = 1400, height: int = 900, **kw: Any) -> None:
        self.served = served
        self.browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        self.context = self.browser.new_context(viewport={"width": width, "height": height}, **kw)
        self.page = self.context.new_page()
        self.outside: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda r: None if r.url.startswith(served.url) else self.outside.append(r.url))
        # (an answer with an error status is logged by the browser itself: that is the hub's answer, not a fault)
        self.page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" and _ours(m.text) else None)
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("dialog", lambda d: (self.problems.append("dialog: " + d.message), d.dismiss()))

    def close(self) -> None:
        self.context.close()
        self.browser.close()


@pytest.fixture
def console(serve) -> Iterator[tuple[Served, Any]]:  # type: ignore[no-untyped-def]
    served: Served = serve(HUB)
    with playwright_api.sync_playwright() as p:
        yield served, p


def _open(b: Browser, fragment: str) -> Any:
    pg = b.page
    pg.goto(b.served.url + "/" + fragment)
    return pg


def _values(pg: Any, selector: str, attr: str) -> list[float]:
    return [float(v) for v in pg.eval_on_selector_all(selector, f"els => els.map(e => e.getAttribute('{attr}'))")]


def test_charts_show_the_calls_made_and_failures_show_cause_stack_and_output(console) -> None:  # type: ignore[no-untyped-def]
    served, p = console
    http = served.http
    for i in range(20):
        assert http.post("/rest/v1/shop/add", json={"a": i, "b": 1}).json()["value"] == i + 1
    slow = []
    for _ in range(4):
        t0 = time.perf_counter()
        assert http.post("/rest/v1/shop/wait", json={"seconds": 0.3}).json()["ok"]
        slow.append(time.perf_counter() - t0)
    for _ in range(5):
        assert http.post("/rest/v1/shop/noisy", json={}).json()["observation"]["code"] == "raised"

    b = Browser(served, p)
    try:
        pg = _open(b, "#/component/shop")
        pg.wait_for_function(
            "document.querySelector('#cp-minute [data-figure=\"calls\"] .value')?.textContent === '29'",
            timeout=15_000,
        )
        assert pg.locator('#cp-minute [data-figure="errors"] .value').inner_text() == "5"
        # throughput: every point is rate = calls / STEP; together they hold every call made
        calls = _values(pg, '#chart-rate circle[data-series="rate"]', "data-calls")
        rates = _values(pg, '#chart-rate circle[data-series="rate"]', "data-value")
        assert len(calls) == 60 and sum(calls) == 29
        assert [round(r * STEP, 6) for r in rates] == calls
        # error rate: a point's value is its failed share of its calls, in percent
        errs = _values(pg, '#chart-errors circle[data-series="error_rate"]', "data-errors")
        err_calls = _values(pg, '#chart-errors circle[data-series="error_rate"]', "data-calls")
        err_values = _values(pg, '#chart-errors circle[data-series="error_rate"]', "data-value")
        assert sum(errs) == 5
        for e, c, v in zip(errs, err_calls, err_values, strict=True):
            assert v == pytest.approx(100 * e / c)
        # latency: the 0.3 s calls set the p99 of their point, never more than the client saw
        p99 = max(_values(pg, '#chart-latency circle[data-series="p99"]', "data-value"))
        assert 300 <= p99 <= max(slow) * 1000 + 1
        p50 = _values(pg, '#chart-latency circle[data-series="p50"]', "data-value")
        assert p50 and min(p50) < 300  # the quick calls
        # each chart's title says its newest value
        assert pg.locator("#now-rate").inner_text().endswith(" calls/s")
        assert pg.locator("#now-latency").inner_text() != "– / –"
        # the chart's scale covers its values
        assert float(pg.get_attribute("#chart-latency svg", "data-max")) >= p99

        # recent failures: newest first, whole (cause, stack, what the call printed)
        failures = pg.locator("details.failure")
        assert failures.count() == 5
        first = failures.first
        assert first.get_attribute("data-code") == "raised"
        first.locator("summary").click()
        assert first.locator(".cause-type").first.inner_text() == "ValueError"
        assert "console_shop.py" in first.locator("pre.stack").first.inner_text()
        assert first.locator("pre.stdout").inner_text().startswith("about to fail: <img src=x")
        assert first.locator("pre.stderr").inner_text().startswith("on stderr: <img src=x")
        # the component's markup stayed text: no element was made of it, nothing ran
        assert pg.locator("#component-page img, #component-page script").count() == 0
        assert pg.title() != "pwned"
        assert "<b>not bold</b>" in pg.locator('#cp-ops tr[data-op="add"]').inner_text()
        # the open failure stays open across the page's refreshes
        pg.wait_for_timeout(1500)
        assert pg.locator("details.failure").first.evaluate("d => d.open")
        shot = _shot("dashboard-component.png")
        if shot:
            pg.screenshot(path=str(shot), full_page=True)

        # the overview: the last failure shows in the component's row, the name links to its page
        pg.click('a[href="#/"]')
        row = pg.locator('#components tr[data-component="shop"]')
        row.wait_for()
        last = "document.querySelector('#components tr[data-component=\"shop\"] .last-obs code')?.textContent"
        pg.wait_for_function(last + " === 'raised'", timeout=10_000)
        assert row.locator(".errors").inner_text() == "5"
        assert float(pg.get_attribute('#components tr[data-component="shop"] svg.spark', "data-calls")) == 29
        shot = _shot("dashboard.png")
        if shot:
            pg.screenshot(path=str(shot), full_page=True)
        row.locator("td.name a").click()
        pg.locator("#cp-title").wait_for()
        assert pg.locator("#cp-title").inner_text() == "shop"
        assert b.outside == [], f"the console fetched from outside the hub: {b.outside}"
        assert b.problems == [], b.problems
    finally:
        b.close()


def test_try_an_operation_and_cancel_the_job_it_queued(console) -> None:  # type: ignore[no-untyped-def]
    served, p = console
    b = Browser(served, p)
    try:
        pg = _open(b, "#/component/shop")
        pg.click('button.try[data-op="add"]')
        pg.fill('#try-fields [data-param="a"]', "2")
        pg.fill('#try-fields [data-param="b"]', "3")
        pg.click("#try-run")
        pg.locator('#try-result[data-ok="true"]').wait_for(timeout=15_000)
        assert pg.locator("#try-value").inner_text() == "5"
        # a value that is not JSON is text: "x" + 1 raises in the component
        pg.fill('#try-fields [data-param="a"]', "x")
        pg.fill('#try-fields [data-param="b"]', "1")
        pg.click("#try-run")
        pg.locator('#try-result[data-ok="false"]').wait_for(timeout=15_000)
        assert pg.locator("#try-code code").inner_text() == "raised"
        assert pg.locator("#try-output .cause-type").first.inner_text() == "TypeError"
        # a required parameter left empty: the hub's own check answers
        pg.fill('#try-fields [data-param="a"]', "")
        pg.fill('#try-fields [data-param="b"]', "")
        pg.click("#try-run")
        pg.locator('#try-result[data-status="400"]').wait_for(timeout=15_000)
        assert pg.locator("#try-code code").inner_text() == "invalid_arguments"

        # a queued operation: the form links to its job, whose page cancels it
        running = served.http.post("/rest/v1/jobs/sleep", json=[30]).json()["job"]["id"]
        pg.goto(served.url + "/#/component/jobs")
        pg.click('button.try[data-op="sleep"]')
        pg.fill('#try-fields [data-param="seconds"]', "30")
        pg.click("#try-run")
        pg.locator('#try-result[data-status="202"]').wait_for(timeout=15_000)
        link = pg.locator("#try-job a")
        job_id = link.inner_text()
        assert served.http.get(f"/hub/v1/jobs/{job_id}").json()["state"] in ("queued", "running")
        # the component page lists it too
        pg.locator(f'#cp-jobs tr[data-job="{job_id}"]').wait_for(timeout=10_000)
        link.click()
        pg.locator("#job-detail").wait_for(state="visible", timeout=10_000)
        assert pg.locator("#job-detail-title").inner_text() == job_id
        assert pg.locator('#job-detail-fields dd[data-field="component"] a').inner_text() == "jobs"
        shot = _shot("dashboard-jobs.png")
        if shot:
            pg.screenshot(path=str(shot), full_page=True)
        pg.click("#job-cancel")
        pg.locator('#job-detail-fields dd[data-field="state"] .badge[data-state="cancelled"]').wait_for(timeout=10_000)
        assert served.http.get(f"/hub/v1/jobs/{job_id}").json()["state"] == "cancelled"
        served.http.post(f"/hub/v1/jobs/{running}/cancel")
        assert b.problems == [], b.problems
    finally:
        b.close()


def test_reload_and_unload_ask_for_the_token_and_restarts_show_in_the_history(console) -> None:  # type: ignore[no-untyped-def]
    served, p = console
    b = Browser(served, p)
    try:
        pg = _open(b, "#/component/shop")
        pid = pg.locator('#cp-fields dd[data-field="pid"]')
        pid.wait_for()
        first_pid = pid.inner_text()
        assert first_pid.isdigit()

        # a crash, then the restart on the next call: both in the state history
        assert served.http.post("/rest/v1/shop/crash", json={}).json()["observation"]["code"] == "worker_crashed"
        pg.locator('#cp-states li[data-state="crashed"] code').wait_for(timeout=10_000)
        assert "worker_crashed" in pg.locator('#cp-states li[data-state="crashed"]').first.inner_text()
        assert served.http.post("/rest/v1/shop/add", json={"a": 1}).json()["value"] == 1
        pg.locator("#cp-states li", has_text="restart #1").wait_for(timeout=10_000)
        restarted_pid = served.http.get("/hub/v1/components/shop").json()["health"]["pid"]

        # reload: the hub asks for the token; a wrong one is refused, the right one works
        pg.click("#cp-reload")
        pg.locator("#token-ask").wait_for(state="visible")
        pg.fill("#token-ask-input", "not-the-token")
        pg.click("#token-ask-ok")
        pg.locator("#token-ask-error").wait_for(state="visible", timeout=10_000)
        pg.fill("#token-ask-input", served.token)
        pg.click("#token-ask-ok")
        pg.locator('#cp-action[data-result="ok"]').wait_for(timeout=30_000)
        after = served.http.get("/hub/v1/components/shop").json()
        assert after["state"] == "ready" and after["health"]["pid"] != restarted_pid
        pg.wait_for_function(
            f"document.querySelector('#cp-fields dd[data-field=\"pid\"]').textContent === '{after['health']['pid']}'",
            timeout=10_000,
        )
        refusals = {g["code"]: g["count"] for g in served.http.get("/hub/v1/observations").json()["groups"]}
        assert refusals.get("unauthenticated", 0) >= 2  # without a token, then with the wrong one

        # unload: two clicks; the page keeps the token it was given
        pg.click("#cp-unload")
        assert pg.locator("#cp-unload").inner_text() == "Click again to unload"
        assert "shop" in {c["name"] for c in served.http.get("/hub/v1/components").json()["components"]}
        pg.click("#cp-unload")
        pg.locator("#cp-missing").wait_for(state="visible", timeout=30_000)
        assert pg.locator("#token-ask").is_hidden()
        assert "shop" not in {c["name"] for c in served.http.get("/hub/v1/components").json()["components"]}
        assert b.problems == [], b.problems
    finally:
        b.close()


def test_console_reads_on_a_phone(console) -> None:  # type: ignore[no-untyped-def]
    served, p = console
    for i in range(6):
        served.http.post("/rest/v1/shop/add", json={"a": i})
    served.http.post("/rest/v1/shop/noisy", json={"text": "no"})
    b = Browser(served, p, width=390, height=844, device_scale_factor=2, is_mobile=True)
    try:
        pg = _open(b, "#/component/shop")
        pg.wait_for_function(
            "document.querySelector('#cp-minute [data-figure=\"calls\"] .value')?.textContent === '7'", timeout=15_000
        )
        assert pg.evaluate("document.documentElement.scrollWidth") <= 390
        assert pg.locator("#chart-rate svg").is_visible()
        box = pg.locator("#chart-rate svg").bounding_box()
        assert box is not None and box["width"] <= 390
        shot = _shot("dashboard-phone.png")
        if shot:
            pg.screenshot(path=str(shot), full_page=True)
        pg.goto(served.url + "/#/")
        pg.locator('#components tr[data-component="shop"]').wait_for()
        assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        b.close()
