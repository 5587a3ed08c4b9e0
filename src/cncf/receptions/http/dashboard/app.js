// The cncf dashboard: plain JavaScript, no dependency, polling the hub's JSON routes.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  // The token travels as the hub's port-bound, HttpOnly cookie (see /?token=); a
  // mutating request also carries the anti-forgery value the hub put in the page,
  // as a header no page of another origin can send without a (refused) preflight.
  const xsrf = (document.querySelector('meta[name="cncf-xsrf"]') || {}).content || "";
  let selectedJob = null;
  let timer = null;

  function headers(method) {
    return method && method !== "GET" ? { "Content-Type": "application/json", "X-Cncf-Xsrf": xsrf } : {};
  }

  async function getJSON(path, init) {
    const method = (init && init.method) || "GET";
    const r = await fetch(path, Object.assign({ cache: "no-store", credentials: "same-origin" }, init || {},
      { headers: headers(method) }));
    if (r.status === 401) { $("token-box").hidden = false; throw new Error("unauthenticated"); }
    return { status: r.status, body: await r.json() };
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
    }
    for (const c of children) e.append(c === null || c === undefined ? "" : (c instanceof Node ? c : String(c)));
    return e;
  }
  const badge = (state) => el("span", { class: "badge " + state, "data-state": state }, state);
  // Cancellations by the tier they finally took (cooperative, abandoned, killed, late).
  const stopped = (m) => Object.values(m || {}).reduce((a, b) => a + b, 0);
  const tiers = (m) => Object.entries(m || {}).map(([t, n]) => t + ": " + n).join(", ") || "none";
  const when = (t) => t ? new Date(t * 1000).toLocaleTimeString() : "";

  function renderComponents(list) {
    const body = $("components").tBodies[0];
    body.replaceChildren(...list.map((c) => {
      const calls = c.calls || {};
      const obs = c.observation;
      const reps = c.replicas || [];  // each replica: its pid, state and restarts (tooltip)
      return el("tr", { "data-component": c.name },
        el("td", { class: "mono" }, c.name, reps.length > 1 ? " ×" + reps.length : "",
          (c.generation || 1) > 1 ? " g" + c.generation : ""),
        el("td", {}, c.form), el("td", { class: "state" }, badge(c.state)),
        el("td", { class: "num mono pid", title: reps.map((r) => "#" + r.index + " " + r.state + ", " +
          (r.restarts || 0) + " restarts").join("\n") },
          reps.length > 1 ? reps.map((r) => r.pid ?? "–").join(" ") : c.pid ?? "–"),
        el("td", { class: "num restarts" }, c.restarts ?? 0),
        el("td", { class: "num running" }, calls.running ?? 0), el("td", { class: "num waiting" }, calls.waiting ?? 0),
        el("td", { class: "num wide" }, (c.operations || []).length),
        el("td", { class: "wide msg trunc", title: obs ? obs.message : "" }, obs ? el("code", {}, obs.code) : "",
          obs ? " " + obs.message : ""));
    }));
    $("components-count").textContent = "(" + list.length + ")";
    const bad = list.filter((c) => c.state !== "ready" && c.state !== "busy").length;
    const s = $("hub-status");
    s.dataset.state = bad ? "degraded" : "ok";
    s.textContent = bad ? bad + " of " + list.length + " not ready" : "all " + list.length + " ready";
  }

  function renderObservations(data) {
    const groups = data.groups || [];
    $("observations").tBodies[0].replaceChildren(...groups.map((g) => {
      const last = g.last || {};
      return el("tr", { "data-code": g.code }, el("td", {}, el("code", {}, g.code)), el("td", { class: "num" }, g.count),
        el("td", { class: "num" }, g.status ?? ""), el("td", {}, last.stage || ""),
        el("td", { class: "mono trunc", title: last.target || "" }, last.target || ""),
        el("td", { class: "wide msg trunc", title: last.message || "" }, last.message || ""));
    }));
    $("observations-empty").hidden = groups.length > 0;
    $("observations-count").textContent = "(" + groups.reduce((n, g) => n + g.count, 0) + ")";
  }

  function renderJobs(jobs) {
    $("jobs").tBodies[0].replaceChildren(...jobs.map((j) => {
      const row = el("tr", { class: "clickable" + (j.id === selectedJob ? " selected" : ""), "data-job": j.id },
        el("td", { class: "mono" }, j.id), el("td", { class: "mono" }, j.target), el("td", {}, badge(j.state)),
        el("td", { class: "num" }, j.attempts), el("td", { class: "wide" }, when(j.created)));
      row.addEventListener("click", () => { selectedJob = j.id; refresh(); });
      return row;
    }));
    $("jobs-empty").hidden = jobs.length > 0;
    $("jobs-count").textContent = "(" + jobs.length + ")";
  }

  async function renderDetail() {
    const box = $("job-detail");
    if (!selectedJob) { box.hidden = true; return; }
    const { status, body } = await getJSON("/hub/v1/jobs/" + encodeURIComponent(selectedJob));
    if (status !== 200) { box.hidden = true; selectedJob = null; return; }
    box.hidden = false;
    $("job-detail-title").textContent = body.id;
    const fields = [["state", badge(body.state)], ["target", body.target], ["attempts", body.attempts + " of " + body.max_attempts],
      ["created", when(body.created)], ["finished", when(body.finished)], ["idempotency key", body.idempotency_key || "–"]];
    $("job-detail-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, v)]));
    $("job-outcome").textContent = body.outcome ? JSON.stringify(body.outcome, null, 2) : "(not finished)";
    const history = body.history || [];
    $("job-attempts").replaceChildren(...(history.length ? history.map((a) =>
      el("li", {}, el("code", {}, a.observation.code), " " + a.observation.message))
      : [el("li", { class: "empty" }, "no failed or interrupted attempt")]));
    $("job-cancel").disabled = ["succeeded", "failed", "cancelled"].includes(body.state);
  }

  async function refresh() {
    try {
      const state = $("job-state").value;
      const [comps, obs, jobs] = await Promise.all([
        getJSON("/hub/v1/components"), getJSON("/hub/v1/observations"),
        getJSON("/hub/v1/jobs?limit=100" + (state ? "&state=" + encodeURIComponent(state) : ""))]);
      renderComponents(comps.body.components || []);
      renderObservations(obs.body);
      renderJobs(jobs.body.jobs || []);
      await renderDetail();
      $("updated").textContent = new Date().toLocaleTimeString();
    } catch (e) {
      const s = $("hub-status");
      s.dataset.state = "down";
      s.textContent = e.message === "unauthenticated" ? "token needed" : "hub unreachable";
    }
  }

  $("job-state").addEventListener("change", refresh);
  $("job-close").addEventListener("click", () => { selectedJob = null; refresh(); });
  $("job-cancel").addEventListener("click", async () => {
    if (!selectedJob) return;
    $("job-cancel").disabled = true;
    await getJSON("/hub/v1/jobs/" + encodeURIComponent(selectedJob) + "/cancel", { method: "POST", body: "{}" });
    refresh();
  });
  $("token-save").addEventListener("click", () => {
    // the hub answers /?token=T with an HttpOnly, SameSite=Strict cookie and a clean URL
    window.location.assign("/?token=" + encodeURIComponent($("token").value.trim()));
  });
  refresh();
  timer = setInterval(refresh, 1000);
  window.addEventListener("beforeunload", () => clearInterval(timer));
})();
