"""Calls over HTTP: body shapes, selectors, headers, each status class, queued jobs."""

from __future__ import annotations

import time

import pytest

from tests.http.conftest import Served


def _code(r) -> str:
    return r.json()["observation"]["code"]


def test_health_and_readiness(hub_server: Served) -> None:
    assert hub_server.http.get("/healthz").json()["ok"] is True
    r = hub_server.http.get("/readyz")
    assert r.status_code == 503, r.text
    assert r.json()["not_ready"] == [{"name": "broken", "state": "failed"}]
    assert hub_server.count == 5  # svc, jobs, counter, fragile, broken; 'sneaky' (an unrequested inline) was refused


def test_values_named_positional_none_and_query(hub_server: Served) -> None:
    h = hub_server.http
    r = h.post("/rest/v1/svc/default/add", json={"a": 2, "b": 3})
    assert (r.status_code, r.json()) == (200, {"ok": True, "value": 5})
    assert r.headers["x-cncf-call-id"]
    assert "x-cncf-observation-code" not in r.headers
    assert h.post("/rest/v1/svc/add", json=[4, 5]).json() == {"ok": True, "value": 9}
    assert h.post("/rest/v1/svc/echo").json() == {"ok": True, "value": None}
    # GET: the query string is named arguments; a value that parses as JSON is JSON
    assert h.get("/rest/v1/svc/add", params={"a": "1", "b": "2"}).json()["value"] == 3
    assert h.get("/rest/v1/svc/echo", params={"value": "hello"}).json()["value"] == "hello"
    # only an operation declared safe (http_get = true) runs on GET: 405 and an Observation otherwise
    r = h.get("/rest/v1/svc/talk", params={"text": "x"})
    assert (r.status_code, _code(r), r.headers["allow"]) == (405, "route_not_found", "POST")
    assert h.head("/rest/v1/svc/talk", params={"text": "x"}).status_code == 405  # HEAD is no way round
    # curl's default form content type: refused without the token (a web page can send that one)...
    form = {"content-type": "application/x-www-form-urlencoded"}
    r = h.post("/rest/v1/svc/add", content=b'{"a": 1, "b": 1}', headers=form)
    assert (r.status_code, _code(r)) == (415, "body_not_json")
    # ...and with the token the body is what counts
    r = h.post("/rest/v1/svc/add", content=b'{"a": 1, "b": 1}', headers={**form, **hub_server.auth})
    assert r.json()["value"] == 2


def test_segments_resolve_as_selectors(hub_server: Served) -> None:
    h = hub_server.http
    assert h.post("/rest/v1/SVC/Default/E-c_ho", json=[7]).json() == {"ok": True, "value": 7}
    assert h.post("/rest/v1/svc/ECHO", json=[8]).json()["value"] == 8


def test_state_lives_in_the_instance(hub_server: Served) -> None:
    h = hub_server.http
    first = h.post("/rest/v1/counter/increment", json={"by": 0}).json()["value"]
    assert h.post("/rest/v1/counter/increment", json={"by": 2}).json()["value"] == first + 2


def test_printed_output_is_kept(hub_server: Served) -> None:
    r = hub_server.http.post("/rest/v1/svc/talk", json=["hi"])
    assert r.json()["value"] == 2
    assert "said hi" in r.json()["stdout"]
    assert "to stderr" in r.json()["stderr"]


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/rest/v1/svc/fail", None, 500, "raised"),  # the component's own failure
        ("/rest/v1/svc/add", {"nope": 1}, 400, "invalid_arguments"),
        ("/rest/v1/svc/unencodable", None, 500, "result_not_serialisable"),
        ("/rest/v1/svc/incremnt", None, 404, "unknown_operation"),
        ("/rest/v1/nobody/echo", None, 404, "unknown_component"),
        ("/rest/v1/counter/refuse", ["x"], 400, "operation_failed"),
        ("/rest/v1/counter/exit", None, 500, "exit_requested"),
        ("/rest/v1/counter/memory", None, 500, "out_of_memory"),
        ("/rest/v1/svc/slow", None, 504, "timed_out"),
    ],
)
def test_failures_have_the_status_of_their_class(hub_server: Served, path: str, body, status: int, code: str) -> None:
    r = hub_server.http.post(path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["ok"] is False
    assert _code(r) == code
    assert r.headers["x-cncf-observation-code"] == code
    assert r.headers["x-cncf-call-id"]


def test_timeout_from_query_and_header_and_a_bad_one(hub_server: Served) -> None:
    h = hub_server.http
    r = h.post("/rest/v1/svc/hold", json=[2.0], params={"timeout": "0.2"})
    assert (r.status_code, _code(r)) == (504, "timed_out")
    r = h.post("/rest/v1/svc/hold", json=[2.0], headers={"X-Cncf-Timeout": "0.2"})
    assert (r.status_code, _code(r)) == (504, "timed_out")
    r = h.post("/rest/v1/svc/echo", params={"timeout": "-1"})
    assert (r.status_code, _code(r)) == (400, "invalid_policy")


def test_a_waiting_call_times_out_with_504(hub_server: Served) -> None:
    import concurrent.futures

    import httpx

    with concurrent.futures.ThreadPoolExecutor(2) as pool, httpx.Client(base_url=hub_server.url, timeout=30) as other:
        holding = pool.submit(other.post, "/rest/v1/svc/hold", json=[1.0])
        time.sleep(0.3)
        r = hub_server.http.post("/rest/v1/svc/hold", json=[0.1])
        assert (r.status_code, _code(r)) == (504, "wait_timeout")
        assert r.json()["observation"]["stage"] == "wait"
        assert holding.result().json() == {"ok": True, "value": "held"}


def test_a_crash_is_503_and_the_next_call_restarts(hub_server: Served) -> None:
    h = hub_server.http
    before = h.post("/rest/v1/svc/pid").json()["value"]
    r = h.post("/rest/v1/svc/crash")
    assert (r.status_code, _code(r)) == (503, "worker_crashed")
    after = h.post("/rest/v1/svc/pid").json()
    assert after["ok"] and after["value"] != before


def test_refused_requests_are_observations(hub_server: Served) -> None:
    h = hub_server.http
    r = h.post("/rest/v1/svc/echo", content=b"not json", headers={"content-type": "text/plain"})
    assert (r.status_code, _code(r)) == (415, "body_not_json")
    assert r.json()["observation"]["stage"] == "reception"
    r = h.post("/rest/v1/svc/echo", content=b"[" + b"1," * 5_000_000 + b"1]")
    assert (r.status_code, _code(r)) == (413, "body_too_large")
    r = h.get("/no/such/route")
    assert (r.status_code, _code(r)) == (404, "route_not_found")
    r = h.put("/rest/v1/svc/echo")  # the path exists, not with this method
    assert (r.status_code, _code(r), r.headers["allow"]) == (405, "route_not_found", "GET, HEAD, POST")
    r = h.get("/healthz", headers={"Host": "evil.example:8470"})
    assert (r.status_code, _code(r)) == (403, "forbidden")
    r = h.delete("/hub/v1/components/svc")
    assert (r.status_code, _code(r)) == (401, "unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = h.delete("/hub/v1/components/svc", headers={"Authorization": "Bearer wrong"})
    assert (r.status_code, _code(r)) == (401, "unauthenticated")
    # localhost names and the bound address pass the Host check
    for host in ("localhost", "127.0.0.1", "localhost:1234"):
        assert h.get("/healthz", headers={"Host": host}).status_code == 200


def test_queued_call_202_location_long_poll(hub_server: Served) -> None:
    h = hub_server.http
    r = h.post("/rest/v1/jobs/sleep", json=[0.3])
    assert r.status_code == 202
    job = r.json()["job"]
    assert r.json()["ok"] is True and job["state"] in ("queued", "running")
    assert r.headers["location"] == f"/hub/v1/jobs/{job['id']}"
    t0 = time.monotonic()
    d = h.get(r.headers["location"], params={"wait": "20"}).json()
    assert time.monotonic() - t0 < 15
    assert d["state"] == "succeeded"
    assert d["outcome"]["ok"] is True and d["outcome"]["value"] == 0.3
    assert {"id", "state", "target", "attempts", "outcome"} <= set(d)
    assert d["target"] == "jobs.default.sleep" and d["attempts"] == 1
    # a failing job: its outcome is the same object as a call's body
    r = h.post("/rest/v1/jobs/boom")
    d = h.get(r.headers["location"], params={"wait": "20"}).json()
    assert d["state"] == "failed" and d["outcome"]["observation"]["code"] == "raised"


def test_long_poll_returns_after_wait_seconds(hub_server: Served) -> None:
    h = hub_server.http
    loc = h.post("/rest/v1/jobs/sleep", json=[3]).headers["location"]
    t0 = time.monotonic()
    d = h.get(loc, params={"wait": "0.5"}).json()
    assert 0.4 < time.monotonic() - t0 < 2.5
    assert d["state"] in ("queued", "running")


def test_idempotency_key_returns_the_first_job(hub_server: Served) -> None:
    h = hub_server.http
    a = h.post("/rest/v1/jobs/add", json=[1, 2], headers={"Idempotency-Key": "k-http-1"}).json()["job"]["id"]
    b = h.post("/rest/v1/jobs/add", json=[1, 2], headers={"Idempotency-Key": "k-http-1"}).json()["job"]["id"]
    assert a == b


def test_jobs_list_filter_and_cancel(hub_server: Served) -> None:
    h = hub_server.http
    ids = [h.post("/rest/v1/jobs/sleep", json=[2]).json()["job"]["id"] for _ in range(4)]
    queued = h.get("/hub/v1/jobs", params={"state": "queued"}).json()["jobs"]
    assert all(j["state"] == "queued" for j in queued)
    last = ids[-1]
    r = h.post(f"/hub/v1/jobs/{last}/cancel")
    assert r.status_code == 200 and r.json()["cancelled"] is True
    assert h.get(f"/hub/v1/jobs/{last}").json()["state"] == "cancelled"
    r = h.get("/hub/v1/jobs/j-nope")
    assert (r.status_code, _code(r)) == (404, "job_not_found")
    r = h.get("/hub/v1/jobs", params={"state": "bogus"})
    assert (r.status_code, _code(r)) == (400, "invalid_arguments")
    listed = h.get("/hub/v1/jobs", params={"component": "jobs", "limit": "2"}).json()["jobs"]
    assert len(listed) == 2
    for j in ids[:-1]:
        h.post(f"/hub/v1/jobs/{j}/cancel")
