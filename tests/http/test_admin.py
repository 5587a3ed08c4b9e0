"""Admin routes (load, unload, reload need the token), inspection, OpenAPI, metrics."""

from __future__ import annotations

import json

from openapi_spec_validator import validate

from tests.http.conftest import FIXTURES, Served

INLINE_COUNTER = FIXTURES.parent.parent / "fixtures" / "inline" / "counter"


def _code(r) -> str:  # type: ignore[no-untyped-def]
    return r.json()["observation"]["code"]


def test_load_inspect_reload_unload_with_the_token(serve) -> None:  # type: ignore[no-untyped-def]
    s: Served = serve()
    h = s.http
    body = {"target": str(FIXTURES / "svc"), "name": "svc2"}
    assert (h.post("/hub/v1/components", json=body).status_code) == 401
    r = h.post("/hub/v1/components", json=body, headers=s.auth)
    assert r.status_code == 201, r.text
    assert r.json()["component"]["name"] == "svc2" and r.json()["component"]["state"] == "ready"
    assert r.headers["location"] == "/hub/v1/components/svc2"
    assert h.post("/rest/v1/svc2/add", json=[1, 2]).json()["value"] == 3
    names = [c["name"] for c in h.get("/hub/v1/components").json()["components"]]
    assert "svc2" in names
    info = h.get("/hub/v1/components/svc2").json()
    assert info["form"] == "python" and "add" in info["services"]["default"]
    assert info["calls"]["running"] == 0 and "waiting" in info["calls"]
    assert (h.get("/hub/v1/components/nobody").status_code, _code(h.get("/hub/v1/components/nobody"))) == (
        404,
        "unknown_component",
    )
    # the OpenAPI document follows what is loaded
    doc = h.get("/rest/v1/openapi.json").json()
    assert "/rest/v1/svc2/default/add" in doc["paths"]
    pid = h.post("/rest/v1/svc2/pid").json()["value"]
    r = h.post("/hub/v1/components/svc2/reload", headers=s.auth)
    assert r.status_code == 200 and r.json()["component"]["state"] == "ready"
    assert h.post("/rest/v1/svc2/pid").json()["value"] != pid
    assert h.post("/hub/v1/components/svc2/reload").status_code == 401
    assert h.delete("/hub/v1/components/svc2").status_code == 401
    r = h.delete("/hub/v1/components/svc2", headers=s.auth)
    assert r.status_code == 200
    assert _code(h.post("/rest/v1/svc2/add", json=[1, 2])) == "unknown_component"
    assert "/rest/v1/svc2/default/add" not in h.get("/rest/v1/openapi.json").json()["paths"]
    r = h.delete("/hub/v1/components/svc2", headers=s.auth)
    assert (r.status_code, _code(r)) == (404, "unknown_component")


def test_a_failed_load_is_an_observation_and_readyz_names_it(serve) -> None:  # type: ignore[no-untyped-def]
    s: Served = serve()
    h = s.http
    r = h.post("/hub/v1/components", json={"target": str(FIXTURES / "nowhere")}, headers=s.auth)
    assert r.json()["ok"] is False and _code(r) == "artifact_not_found"
    assert r.json()["component"]["state"] == "failed"
    r = h.get("/readyz")
    assert r.status_code == 503
    assert [c["name"] for c in r.json()["not_ready"]] == ["broken", "nowhere"]  # the hub file's own failed one too
    assert h.get("/healthz").status_code == 200
    assert h.delete("/hub/v1/components/nowhere", headers=s.auth).status_code == 200
    assert h.delete("/hub/v1/components/broken", headers=s.auth).status_code == 200
    assert h.get("/readyz").status_code == 200


def test_inline_only_when_the_request_asks_for_it(serve) -> None:  # type: ignore[no-untyped-def]
    s: Served = serve()
    h = s.http
    # one rule, the hub's own (form_not_allowed, a security refusal: 403)
    r = h.post("/hub/v1/components", json={"target": str(FIXTURES / "sneaky")}, headers=s.auth)
    assert (r.status_code, _code(r)) == (403, "form_not_allowed")
    r = h.post("/hub/v1/components", json={"target": "os:getcwd"}, headers=s.auth)  # importable: inline inferred
    assert (r.status_code, _code(r)) == (403, "form_not_allowed")
    assert "sneaky" not in [c["name"] for c in h.get("/hub/v1/components").json()["components"]]
    r = h.post("/hub/v1/components", json={"target": str(FIXTURES / "sneaky"), "form": "inline"}, headers=s.auth)
    assert r.status_code == 201 and r.json()["component"]["form"] == "inline"
    # the refusal of the hub file's own unrequested inline entry is on the dashboard's list too
    codes = [g["code"] for g in h.get("/hub/v1/observations").json()["groups"]]
    assert "form_not_allowed" in codes


def test_openapi_validates_and_describes_operations(hub_server: Served) -> None:
    h = hub_server.http
    doc = h.get("/rest/v1/openapi.json").json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    op = doc["paths"]["/rest/v1/svc/default/echo"]["post"]
    assert op["operationId"] == "svc.default.echo"
    assert op["summary"] == "Return the value unchanged."
    assert op["x-cncf-policy"] == "serialize"
    assert "value" in op["requestBody"]["content"]["application/json"]["schema"]["anyOf"][0]["properties"]
    assert doc["paths"]["/rest/v1/svc/default/slow"]["post"]["x-cncf-run-timeout"] == 0.5
    assert "202" in doc["paths"]["/rest/v1/jobs/default/add"]["post"]["responses"]
    assert {"Outcome", "Observation", "Job"} <= set(doc["components"]["schemas"])
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    # GET only where declared safe (http_get = true), and shown
    echo = doc["paths"]["/rest/v1/svc/default/echo"]
    assert echo["post"]["x-cncf-http-get"] is True and echo["get"]["operationId"] == "svc.default.echo.get"
    assert "value" in [p["name"] for p in echo["get"]["parameters"]]
    talk = doc["paths"]["/rest/v1/svc/default/talk"]
    assert "get" not in talk and talk["post"]["x-cncf-http-get"] is False
    page = h.get("/rest/v1/docs")
    assert page.status_code == 200 and "/rest/v1/svc/default/echo" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # works offline


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_metrics_count_http_and_job_worker_calls(serve) -> None:  # type: ignore[no-untyped-def]
    s: Served = serve()
    h = s.http
    h.post("/rest/v1/svc/echo", json=[1])
    h.post("/rest/v1/svc/echo", json=[2])
    h.post("/rest/v1/svc/fail")
    h.post("/rest/v1/nobody/x")
    h.post("/rest/v1/broken/ping")
    loc = h.post("/rest/v1/jobs/add", json=[1, 2]).headers["location"]
    assert h.get(loc, params={"wait": "20"}).json()["state"] == "succeeded"
    h.post("/rest/v1/svc/crash")
    h.post("/rest/v1/svc/echo", json=[3])  # restarts it
    m = _samples(h.get("/metrics").text)

    def get(name: str, **labels: str) -> float:
        return m.get((name, frozenset(labels.items())), 0.0)

    assert get("cncf_calls_total", component="svc", operation="default.echo", outcome="ok") == 3
    assert get("cncf_calls_total", component="svc", operation="default.fail", outcome="raised") == 1
    assert get("cncf_calls_total", component="svc", operation="default.crash", outcome="worker_crashed") == 1
    assert get("cncf_calls_total", component="", operation="", outcome="unknown_component") == 1
    assert get("cncf_calls_total", component="broken", operation="", outcome="constructor_failed") == 1
    assert get("cncf_component_up", component="broken") == 0
    for outcome in ("raised", "worker_crashed", "ok"):  # counted once, with their component
        assert get("cncf_calls_total", component="", operation="", outcome=outcome) == 0
    recent = h.get("/hub/v1/observations").json()["recent"]
    ids = [o["call_id"] for o in recent if o["call_id"]]
    assert len(ids) == len(set(ids)), "an Observation listed twice"
    assert get("cncf_jobs_submitted_total", component="jobs", operation="default.add") == 1
    assert not [k for k in m if k[0] == "cncf_calls_total" and ("outcome", "queued") in k[1]]  # final outcomes only
    assert get("cncf_calls_total", component="jobs", operation="default.add", outcome="ok") == 1  # the job worker's
    assert get("rpc_server_call_duration_seconds_count", component="svc", operation="default.echo") == 3
    assert get("cncf_component_up", component="svc") == 1
    assert get("cncf_restarts_total", component="svc") == 1

    assert get("cncf_jobs", state="succeeded") == 1
    assert get("cncf_jobs", state="queued") == 0
    for (name, labels), _ in m.items():
        assert not {"call_id", "job_id", "id"} & {k for k, _ in labels}, name
    assert json.dumps(sorted({n for n, _ in m}))  # parseable names only


def test_metrics_and_the_component_row_report_the_tier_a_cancellation_took(serve) -> None:  # type: ignore[no-untyped-def]
    """A timed-out call is answered at its deadline; the tier the escalation finally
    took (here: the operation saw the request and stopped) is counted when it ends."""
    import time

    s: Served = serve()
    h = s.http
    r = h.post("/rest/v1/svc/slow", json=[5])
    assert (r.status_code, _code(r)) == (504, "timed_out")
    key = (
        "cncf_cancellations_total",
        frozenset({"component": "svc", "operation": "default.slow", "tier": "cooperative"}.items()),
    )
    deadline = time.monotonic() + 10
    while _samples(h.get("/metrics").text).get(key) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _samples(h.get("/metrics").text).get(key) == 1
    row = next(c for c in h.get("/hub/v1/components").json()["components"] if c["name"] == "svc")
    assert row["cancellations"] == {"cooperative": 1}
