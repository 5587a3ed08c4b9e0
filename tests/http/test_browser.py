"""Brief section 11, a web page the user opens must not be able to use the hub:
real headless Chromium, an attacker page served from another origin by a tiny
``http.server``, and the hub's own state as the judge.

The hub's counter declares every operation safe to run on GET (the worst
case); the attacker page tries what a page can send without asking the hub
(an ``<img>``, a ``<script>``, a ``text/plain`` form, a ``no-cors`` fetch,
``sendBeacon``) and what it can send only after a preflight (a JSON fetch),
from another site (``localhost`` against ``127.0.0.1``) and from the same
site on another port — the second after the user opened ``/?token=T``, so the
admin cookie is in the browser.  The counter stays 0, nothing is loaded,
nothing runs, and the hub says why (its recent Observations).
"""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI
from tests.http.conftest import FIXTURES, Served

playwright_api = (
    pytest.importorskip("playwright.sync_api")
    if not IN_CI
    else __import__("playwright.sync_api", fromlist=["sync_playwright"])
)

BROWSER_HUB = FIXTURES / "browser" / "hub.toml"

ATTACK = """<!doctype html><html><body><iframe name="sink"></iframe><iframe id="framed"></iframe>
<script>
const H = "__HUB__";
function form(path, name, value) {
  const f = document.createElement("form");
  f.method = "POST"; f.enctype = "text/plain"; f.action = H + path; f.target = "sink";
  const i = document.createElement("input"); i.name = name; i.value = value; f.appendChild(i);
  document.body.appendChild(f); f.submit();
}
async function attack() {
  for (let i = 0; i < 3; i++) { const img = new Image(); img.src = H + "/rest/v1/counter/increment?by=1&n=" + i; }
  const s = document.createElement("script");
  s.src = H + "/rest/v1/counter/increment?by=1"; document.body.appendChild(s);
  form("/rest/v1/counter/increment", '{"by": 1, "pad": "', '"}');
  const body = '{"by": 1}';
  await fetch(H + "/rest/v1/counter/increment", {method: "POST", mode: "no-cors", credentials: "include",
    headers: {"Content-Type": "text/plain"}, body}).catch(() => null);
  await fetch(H + "/rest/v1/counter/increment", {method: "POST", mode: "no-cors", credentials: "include", body})
    .catch(() => null);
  navigator.sendBeacon(H + "/rest/v1/counter/increment", body);
  await fetch(H + "/rest/v1/counter/increment", {method: "POST", credentials: "include",
    headers: {"Content-Type": "application/json"}, body}).catch(() => null);
  // with the admin cookie in the browser: load os inline, then run a shell command
  const load = '{"target": "os", "form": "inline"}';
  await fetch(H + "/hub/v1/components", {method: "POST", mode: "no-cors", credentials: "include",
    headers: {"Content-Type": "text/plain"}, body: load}).catch(() => null);
  form("/hub/v1/components", '{"target": "os", "form": "inline", "name": "o', 's"}');
  await new Promise((r) => setTimeout(r, 700));
  const run = new Image(); run.src = H + "/rest/v1/os/system?command=" + encodeURIComponent("touch __MARK__");
  const cancel = new Image(); cancel.src = H + "/hub/v1/jobs/x/cancel";
  document.getElementById("framed").src = H + "/";
  await new Promise((r) => setTimeout(r, 1500));
  document.title = "done";
}
attack();
</script></body></html>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if IN_CI:
        pytest.fail("chromium is required under CI=true (scripts/install-system-deps.sh installs it)")
    pytest.skip("chromium is not installed")


class _Site:
    """A tiny web server for the attacker's page, on a port of its own."""

    def __init__(self, root: Path) -> None:
        handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(root))  # noqa: E731
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[_Site, Path]]:
    root = tmp_path / "site"
    root.mkdir()
    s = _Site(root)
    yield s, root
    s.close()


def _counter(served: Served) -> int:
    r = served.http.post("/rest/v1/counter/get", json=None)
    assert r.status_code == 200, r.text
    return int(r.json()["value"])


def _refusals(served: Served) -> dict[str, int]:
    groups = served.http.get("/hub/v1/observations").json()["groups"]
    return {g["code"]: g["count"] for g in groups}


@pytest.mark.parametrize("attacker_host", ["localhost", "127.0.0.1"], ids=["cross-site", "same-site-other-port"])
def test_a_page_of_another_origin_cannot_use_the_hub(serve, site, tmp_path: Path, attacker_host: str) -> None:  # type: ignore[no-untyped-def]
    served: Served = serve(BROWSER_HUB)
    server, root = site
    mark = tmp_path / "ran-in-the-hub"
    (root / "attack.html").write_text(ATTACK.replace("__HUB__", served.url).replace("__MARK__", str(mark)))
    assert _counter(served) == 0
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        context = browser.new_context()
        pg = context.new_page()
        # the user opened the dashboard with its token once: the admin cookie is in this browser
        pg.goto(f"{served.url}/?token={served.token}")
        assert [c for c in context.cookies() if c["name"].startswith("cncf_token")], "the dashboard set its cookie"
        pg.goto(f"http://{attacker_host}:{server.port}/attack.html")
        pg.wait_for_function("document.title === 'done'", timeout=30_000)
        context.close()
        browser.close()
    assert _counter(served) == 0, "a page of another origin ran an operation"
    names = [c["name"] for c in served.http.get("/hub/v1/components").json()["components"]]
    assert "os" not in names and not mark.exists(), "a page of another origin loaded code into the hub"
    refused = _refusals(served)
    assert refused.get("forbidden", 0) >= 8, refused  # the attempts reached the hub, and were refused


def test_cross_origin_requests_are_refused_on_every_route(hub_server: Served) -> None:
    h = hub_server.http
    routes = [
        ("GET", "/healthz"),
        ("GET", "/"),
        ("GET", "/hub/v1/components"),
        ("GET", "/rest/v1/svc/echo?value=1"),
        ("POST", "/rest/v1/svc/echo"),
        ("POST", "/hub/v1/jobs/x/cancel"),
        ("OPTIONS", "/rest/v1/svc/echo"),
    ]
    for headers in (
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "null"},
        {"Origin": f"http://127.0.0.1:{int(hub_server.url.rsplit(':', 1)[1]) + 1}"},
    ):
        for method, path in routes:
            r = h.request(method, path, headers=headers, json=[1] if method == "POST" else None)
            assert r.status_code == 403, (headers, method, path, r.text)
            assert r.json()["observation"]["code"] == "forbidden"
            assert r.headers["x-cncf-observation-code"] == "forbidden"
            assert "access-control-allow-origin" not in r.headers
    # the hub's own page, and a navigation the user typed, pass
    own = hub_server.url
    assert h.get("/hub/v1/components", headers={"Origin": own, "Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert h.get("/", headers={"Sec-Fetch-Site": "none"}).status_code == 200
    r = h.post("/rest/v1/svc/echo", json=[3], headers={"Origin": own, "Sec-Fetch-Site": "same-origin"})
    assert r.json() == {"ok": True, "value": 3}


def test_a_call_without_the_token_must_be_json(hub_server: Served) -> None:
    with httpx.Client(base_url=hub_server.url, timeout=30) as h:  # no default content type
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
            headers = {"content-type": ctype} if ctype else {}
            r = h.post("/rest/v1/svc/echo", content=b"[1]", headers=headers)
            assert (r.status_code, r.json()["observation"]["code"]) == (415, "body_not_json"), ctype
        assert h.post("/rest/v1/svc/echo", content=b"[1]", headers={"content-type": "application/json"}).json() == {
            "ok": True,
            "value": 1,
        }
        assert h.post("/rest/v1/svc/echo", content=b"[2]", headers=hub_server.auth).json()["value"] == 2


def test_every_page_has_a_csp_that_forbids_framing(hub_server: Served) -> None:
    h = hub_server.http
    for path in ("/", "/rest/v1/docs", "/hub/v1/components", "/rest/v1/openapi.json", "/dashboard/app.js"):
        r = h.get(path)
        assert r.status_code == 200, path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert r.headers["x-frame-options"] == "DENY"
    page = h.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in page and "unsafe-inline" not in page
    # a refusal through the router is JSON with the same headers
    r = h.get("/hub/v1/components/nobody")
    assert r.status_code == 404 and "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_the_dashboard_works_under_its_csp_and_cannot_be_framed(serve, site) -> None:  # type: ignore[no-untyped-def]
    served: Served = serve(BROWSER_HUB)
    server, root = site
    (root / "frame.html").write_text(f'<!doctype html><iframe id="f" src="{served.url}/"></iframe>')
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        context = browser.new_context()
        pg = context.new_page()
        violations: list[str] = []
        pg.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        pg.goto(served.url + "/")
        pg.locator('#components tr[data-component="counter"]').wait_for(timeout=20_000)
        pg.wait_for_timeout(1500)  # a few polls
        assert violations == [], violations
        # framed by another page: the browser refuses to render it
        pg.goto(f"http://localhost:{server.port}/frame.html")
        pg.wait_for_timeout(1500)
        frame = pg.frame_locator("#f")
        assert frame.locator("#components").count() == 0
        context.close()
        browser.close()
