"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

It loads from the hub alone (no request leaves for the internet), shows
every component's row and state, shows a crash and a restart without a
reload, and cancels a job from its detail view.  ``CNCF_SCREENSHOT=PATH``
saves a screenshot of the page (docs/dashboard.png is made that way).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.http.conftest import Served

playwright_api = (
    pytest.importorskip("playwright.sync_api")
    if not IN_CI
    else __import__("playwright.sync_api", fromlist=["sync_playwright"])
)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if IN_CI:
        pytest.fail("chromium is required under CI=true (scripts/install-system-deps.sh installs it)")
    pytest.skip("chromium is not installed")


@pytest.fixture
def page(serve):  # type: ignore[no-untyped-def]
    served: Served = serve()
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        outside: list[str] = []
        pg.on("request", lambda req: None if req.url.startswith(served.url) else outside.append(req.url))
        pg.goto(served.url + "/")
        yield served, pg, outside
        context.close()
        browser.close()


def _row(pg, name: str):  # type: ignore[no-untyped-def]
    return pg.locator(f'#components tr[data-component="{name}"]')


def test_dashboard_shows_components_crash_restart_and_cancels_a_job(page) -> None:  # type: ignore[no-untyped-def]
    served, pg, outside = page
    for name in ("svc", "jobs", "counter", "fragile"):
        row = _row(pg, name)
        row.wait_for()
        assert row.locator(".state .badge").inner_text() == "ready"
    assert _row(pg, "broken").locator(".state .badge").inner_text() == "failed"
    assert "constructor_failed" in _row(pg, "broken").inner_text()
    assert pg.locator("#hub-status").inner_text() == "1 of 5 not ready"
    assert _row(pg, "svc").locator("td").nth(1).inner_text() == "python"
    assert _row(pg, "svc").locator(".pid").inner_text().isdigit()

    # a crash, then a restart, seen without reloading the page
    served.http.post("/rest/v1/svc/crash")
    _row(pg, "svc").locator('.badge[data-state="crashed"]').wait_for(timeout=10_000)
    assert pg.locator("#hub-status").inner_text() == "2 of 5 not ready"
    pg.locator('#observations tr[data-code="worker_crashed"]').wait_for(timeout=10_000)
    assert served.http.post("/rest/v1/svc/echo", json=[1]).json()["ok"]
    _row(pg, "svc").locator('.badge[data-state="ready"]').wait_for(timeout=10_000)
    pg.wait_for_function(
        "document.querySelector('#components tr[data-component=\"svc\"] .restarts').textContent === '1'", timeout=10_000
    )

    # jobs: one runs, the others wait in the queue; cancel a queued one from its detail view
    ids = [served.http.post("/rest/v1/jobs/sleep", json=[3]).json()["job"]["id"] for _ in range(4)]
    victim = ids[-1]
    pg.select_option("#job-state", "queued")
    pg.locator(f'#jobs tr[data-job="{victim}"]').wait_for(timeout=10_000)
    pg.click(f'#jobs tr[data-job="{victim}"]')
    pg.locator("#job-detail").wait_for(state="visible")
    assert pg.locator("#job-detail-title").inner_text() == victim
    assert pg.locator('#job-detail-fields dd[data-field="state"]').inner_text() == "queued"
    pg.click("#job-cancel")
    pg.locator('#job-detail-fields dd[data-field="state"] .badge[data-state="cancelled"]').wait_for(timeout=10_000)
    assert served.http.get(f"/hub/v1/jobs/{victim}").json()["state"] == "cancelled"
    assert pg.locator("#job-cancel").is_disabled()
    # the cancelled job left the "queued" filter without a reload
    pg.locator(f'#jobs tr[data-job="{victim}"]').wait_for(state="detached", timeout=10_000)

    pg.select_option("#job-state", "")
    pg.locator(f'#jobs tr[data-job="{ids[0]}"]').wait_for(timeout=10_000)
    shot = os.environ.get("CNCF_SCREENSHOT")
    if shot:
        pg.click(f'#jobs tr[data-job="{victim}"]')
        pg.locator("#job-detail").wait_for(state="visible")
        pg.wait_for_timeout(1200)
        pg.screenshot(path=str(Path(shot)), full_page=True)
    assert outside == [], f"the dashboard fetched from outside the hub: {outside}"
    for j in ids:
        served.http.post(f"/hub/v1/jobs/{j}/cancel")


def test_dashboard_reads_on_a_phone(serve) -> None:  # type: ignore[no-untyped-def]
    served: Served = serve()
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
        pg = context.new_page()
        pg.goto(served.url + "/")
        _row(pg, "svc").wait_for()
        # nothing wider than the screen but the tables' own scroll boxes
        width = pg.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        assert _row(pg, "svc").locator(".state .badge").is_visible()
        shot = os.environ.get("CNCF_SCREENSHOT")
        if shot:
            pg.screenshot(path=str(Path(shot).with_name("dashboard-phone.png")), full_page=True)
        context.close()
        browser.close()
