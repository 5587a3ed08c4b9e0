// The cncf console: plain JavaScript, no dependency, polling the hub's JSON routes.
// Every value that comes from a component (names, messages, stacks, output, docs)
// is untrusted: it reaches the page as text nodes and attribute values only, never
// as markup (no innerHTML anywhere).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  // The token travels as the hub's port-bound, HttpOnly cookie (see /?token=); a
  // mutating request also carries the anti-forgery value the hub put in the page,
  // as a header no page of another origin can send without a (refused) preflight.
  const xsrf = (document.querySelector('meta[name="cncf-xsrf"]') || {}).content || "";
  const SPAN = 300, STEP = 5;
  let token = null; // asked for when a button needs it; kept in this page's memory only
  let selectedJob = null;
  let view = { name: "overview" };
  let timer = null;
  let busy = false;

  // ------------------------------------------------------------ requests

  function headers(method, bearer) {
    const h = method && method !== "GET" ? { "Content-Type": "application/json", "X-Cncf-Xsrf": xsrf } : {};
    if (bearer) h.Authorization = "Bearer " + bearer;
    return h;
  }

  async function getJSON(path, init) {
    const method = (init && init.method) || "GET";
    const r = await fetch(path, Object.assign({ cache: "no-store", credentials: "same-origin" }, init || {},
      { headers: headers(method, token) }));
    if (r.status === 401 && method === "GET") { $("token-box").hidden = false; throw new Error("unauthenticated"); }
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    return { status: r.status, body: body };
  }

  // A request that may need the token (reload, unload, a call on a hub that asks
  // for it): on 401, ask for it (the hub's answer says whether it was right).
  async function withToken(method, path, body, why) {
    let r = await getJSON(path, { method: method, body: body });
    while (r.status === 401) {
      const t = await askToken(why, token !== null);
      if (t === null) return r;
      token = t;
      r = await getJSON(path, { method: method, body: body });
    }
    return r;
  }

  let asking = null;
  function askToken(why, wrong) {
    $("token-ask-why").textContent = why;
    $("token-ask-error").hidden = !wrong;
    $("token-ask-input").value = "";
    $("token-ask").hidden = false;
    $("token-ask-input").focus();
    return new Promise((resolve) => { asking = resolve; });
  }
  function answerToken(value) {
    $("token-ask").hidden = true;
    const done = asking;
    asking = null;
    if (done) done(value);
  }
  $("token-ask-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    answerToken($("token-ask-input").value.trim() || null);
  });
  $("token-ask-cancel").addEventListener("click", () => answerToken(null));

  // ------------------------------------------------------------- helpers

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
    }
    for (const c of children) e.append(c === null || c === undefined ? "" : (c instanceof Node ? c : String(c)));
    return e;
  }
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  const badge = (state) => el("span", { class: "badge " + state, "data-state": state }, state);
  const stopped = (m) => Object.values(m || {}).reduce((a, b) => a + b, 0);
  const tiers = (m) => Object.entries(m || {}).map(([t, n]) => t + ": " + n).join(", ") || "none";
  const when = (t) => t ? new Date(t * 1000).toLocaleTimeString() : "";
  const ms = (s) => s === null || s === undefined ? "–" : (s * 1000 < 10 ? (s * 1000).toFixed(2) : (s * 1000).toFixed(1)) + " ms";
  const pct = (r) => r === null || r === undefined ? "–" : (r * 100).toFixed(1) + " %";
  const componentLink = (name) => el("a", { href: "#/component/" + encodeURIComponent(name), class: "mono" }, name);
  const jobLink = (id) => el("a", { href: "#/job/" + encodeURIComponent(id), class: "mono" }, id);
  const componentOf = (target) => String(target || "").split(".")[0];
  const opName = (target) => String(target || "").split(".").slice(1).filter((p, i, a) => !(p === "default" && a.length > 1)).join(".");

  // An Observation, whole: code, stage, message, where, its cause chain with
  // stacks, and what the call printed.
  function observationBlock(o, stdout, stderr) {
    const box = el("div", { class: "observation", "data-code": o.code });
    box.append(el("div", { class: "obs-head" }, el("code", { class: "code" }, o.code), " ",
      el("span", { class: "msg" }, o.stage || ""), " ", el("span", { class: "obs-message" }, o.message || "")));
    const meta = [["target", o.target], ["call", o.call_id], ["class", [o.category, o.symptom, o.cause_kind].filter(Boolean).join(" / ")],
      ["retryable", o.retryable === undefined ? "" : (o.retryable ? "yes" : "no")]];
    const dl = el("dl", { class: "fields" });
    for (const [k, v] of meta) if (v) dl.append(el("dt", {}, k), el("dd", { "data-field": k }, v));
    for (const [k, v] of Object.entries(o.attributes || {})) {
      if (v === null || v === undefined || k === "stdout" || k === "stderr") continue;
      dl.append(el("dt", {}, k), el("dd", {}, typeof v === "string" ? v : JSON.stringify(v)));
    }
    box.append(dl);
    let cause = o.cause, depth = 0;
    while (cause && depth < 8) {
      box.append(el("div", { class: "cause" }, el("span", { class: "msg" }, depth ? "caused by " : "cause "),
        el("code", { class: "cause-type" }, cause.type || ""), ": ", el("span", { class: "cause-message" }, cause.message || "")));
      if (cause.stack) box.append(el("pre", { class: "stack" }, cause.stack));
      cause = cause.cause; depth += 1;
    }
    box.append(outputBlock(stdout, stderr));
    return box;
  }
  function outputBlock(stdout, stderr) {
    const out = el("div", { class: "output" });
    if (stdout) out.append(el("h4", {}, "stdout"), el("pre", { class: "stdout" }, stdout));
    if (stderr) out.append(el("h4", {}, "stderr"), el("pre", { class: "stderr" }, stderr));
    return out;
  }

  // ------------------------------------------------------------- charts

  // One line chart as inline SVG: a polyline per series (broken where a point has
  // no value), a dot per point carrying its time and value (data-t, data-value),
  // and the scale.  `lines`: [{key, cls, factor}] read from each point.
  function chart(points, lines, unit, metric) {
    const W = 600, H = 160, L = 46, R = 10, T = 10, B = 20;
    const n = points.length;
    let max = 0;
    for (const p of points) for (const s of lines) { const v = p[s.key]; if (v !== null && v !== undefined) max = Math.max(max, v * s.factor); }
    max = niceCeil(max);
    const x = (i) => L + (n > 1 ? i * (W - L - R) / (n - 1) : 0);
    const y = (v) => T + (1 - v / max) * (H - T - B);
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img", "data-metric": metric, "data-max": max,
      "aria-label": metric + " over the last " + Math.round(SPAN / 60) + " minutes" });
    for (const f of [0, 0.5, 1]) {
      root.append(svg("line", { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), class: "grid" }));
      root.append(svg("text", { x: L - 4, y: y(max * f) + 4, class: "axis", "text-anchor": "end" }, fmtAxis(max * f) + unit));
    }
    root.append(svg("text", { x: L, y: H - 4, class: "axis" }, "−" + Math.round(SPAN / 60) + " min"));
    root.append(svg("text", { x: W - R, y: H - 4, class: "axis", "text-anchor": "end" }, "now"));
    for (const s of lines) {
      let seg = [];
      const flush = () => { if (seg.length) root.append(svg("polyline", { points: seg.join(" "), class: "line " + s.cls })); seg = []; };
      points.forEach((p, i) => {
        const v = p[s.key];
        if (v === null || v === undefined) { flush(); return; }
        seg.push(x(i).toFixed(1) + "," + y(v * s.factor).toFixed(1));
      });
      flush();
      points.forEach((p, i) => {
        const v = p[s.key];
        if (v === null || v === undefined) return;
        const dot = svg("circle", { cx: x(i).toFixed(1), cy: y(v * s.factor).toFixed(1), r: 2.2, class: "pt " + s.cls,
          "data-series": s.key, "data-t": p.t, "data-value": v * s.factor, "data-calls": p.calls, "data-errors": p.errors });
        dot.append(svg("title", {}, new Date(p.t * 1000).toLocaleTimeString() + " — " + s.key + " " + fmtAxis(v * s.factor) + unit
          + " (" + p.calls + " calls, " + p.errors + " failed)"));
        root.append(dot);
      });
    }
    return root;
  }
  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * e) return m * e;
    return 10 * e;
  }
  function fmtAxis(v) { return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1).replace(/\.0$/, "") : String(+v.toFixed(2)); }

  function sparkline(points) {
    const W = 100, H = 22;
    const max = Math.max(1e-9, ...points.map((p) => p.rate));
    const n = points.length;
    const pts = points.map((p, i) => (n > 1 ? i * W / (n - 1) : 0).toFixed(1) + "," + (H - 1 - (p.rate / max) * (H - 2)).toFixed(1));
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "spark", "data-calls": points.reduce((a, p) => a + p.calls, 0) });
    root.append(svg("polyline", { points: pts.join(" "), class: "line rate" }));
    return root;
  }

  // ----------------------------------------------------------- overview

  function renderComponents(list, figures) {
    const body = $("components").tBodies[0];
    body.replaceChildren(...list.map((c) => {
      const calls = c.calls || {};
      const f = figures[c.name] || {};
      const minute = f.minute || {};
      const failure = f.last_failure;
      const obs = c.observation || (failure ? failure.observation : null);
      const lastCell = el("td", { class: "wide msg trunc last-obs", title: obs ? obs.message : "" });
      if (obs) lastCell.append(el("code", {}, obs.code), " " + obs.message);
      const reps = c.replicas || [];  // each replica: its pid, state and restarts (tooltip)
      return el("tr", { "data-component": c.name },
        el("td", { class: "name" }, componentLink(c.name), reps.length > 1 ? " ×" + reps.length : "",
          (c.generation || 1) > 1 ? " g" + c.generation : ""),
        el("td", {}, c.form), el("td", { class: "state" }, badge(c.state)),
        el("td", { class: "num mono pid", title: reps.map((r) => "#" + r.index + " " + r.state + ", " +
          (r.restarts || 0) + " restarts").join("\n") },
          reps.length > 1 ? reps.map((r) => r.pid ?? "–").join(" ") : c.pid ?? "–"),
        el("td", { class: "num restarts" }, c.restarts ?? 0),
        el("td", { class: "num running" }, calls.running ?? 0), el("td", { class: "num waiting" }, calls.waiting ?? 0),
        el("td", { class: "num wide rate" }, minute.calls === undefined ? "–" : (minute.calls / 60).toFixed(2)),
        el("td", { class: "num wide p50" }, ms(minute.p50)), el("td", { class: "num wide p99" }, ms(minute.p99)),
        el("td", { class: "num wide errors" }, minute.errors ?? 0),
        el("td", { class: "wide trend" }, f.points ? sparkline(f.points) : ""),
        el("td", { class: "num wide stopped", title: tiers(c.cancellations) }, stopped(c.cancellations)),
        el("td", { class: "num wide" }, (c.operations || []).length),
        lastCell);
    }));
    $("components-count").textContent = "(" + list.length + ")";
    hubStatus(list);
  }

  function hubStatus(list) {
    const bad = list.filter((c) => c.state !== "ready" && c.state !== "busy").length;
    const s = $("hub-status");
    s.dataset.state = bad ? "degraded" : "ok";
    s.textContent = bad ? bad + " of " + list.length + " not ready" : "all " + list.length + " ready";
  }

  function renderObservations(data) {
    const groups = data.groups || [];
    $("observations").tBodies[0].replaceChildren(...groups.map((g) => {
      const last = g.last || {};
      const comp = componentOf(last.target);
      const target = known.has(comp) ? componentLinkText(comp, last.target) : last.target || "";
      return el("tr", { "data-code": g.code }, el("td", {}, el("code", {}, g.code)), el("td", { class: "num" }, g.count),
        el("td", { class: "num" }, g.status ?? ""), el("td", {}, last.stage || ""),
        el("td", { class: "mono trunc", title: last.target || "" }, target),
        el("td", { class: "wide msg trunc", title: last.message || "" }, last.message || ""));
    }));
    $("observations-empty").hidden = groups.length > 0;
    $("observations-count").textContent = "(" + groups.reduce((n, g) => n + g.count, 0) + ")";
  }
  const componentLinkText = (comp, text) => el("a", { href: "#/component/" + encodeURIComponent(comp), class: "mono" }, text);
  let known = new Set();

  function renderJobs(jobs) {
    $("jobs").tBodies[0].replaceChildren(...jobs.map((j) => {
      const link = componentLinkText(componentOf(j.target), j.target);
      link.addEventListener("click", (ev) => ev.stopPropagation());
      const row = el("tr", { class: "clickable" + (j.id === selectedJob ? " selected" : ""), "data-job": j.id },
        el("td", { class: "mono" }, j.id), el("td", {}, link), el("td", {}, badge(j.state)),
        el("td", { class: "num" }, j.attempts), el("td", { class: "wide" }, when(j.created)));
      row.addEventListener("click", () => { selectedJob = j.id; refresh(); });
      return row;
    }));
    $("jobs-empty").hidden = jobs.length > 0;
    $("jobs-count").textContent = "(" + jobs.length + ")";
  }

  let scrolledTo = null;
  async function renderDetail() {
    const box = $("job-detail");
    if (!selectedJob) { box.hidden = true; return; }
    const { status, body } = await getJSON("/hub/v1/jobs/" + encodeURIComponent(selectedJob));
    if (status !== 200) { box.hidden = true; selectedJob = null; return; }
    box.hidden = false;
    $("job-detail-title").textContent = body.id;
    const fields = [["state", badge(body.state)], ["target", body.target], ["component", componentLink(componentOf(body.target))],
      ["attempts", body.attempts + " of " + body.max_attempts],
      ["created", when(body.created)], ["finished", when(body.finished)], ["call", body.call_id || "–"],
      ["idempotency key", body.idempotency_key || "–"]];
    $("job-detail-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, v)]));
    $("job-outcome").textContent = body.outcome ? JSON.stringify(body.outcome, null, 2) : "(not finished)";
    const history = body.history || [];
    $("job-attempts").replaceChildren(...(history.length ? history.map((a) =>
      el("li", {}, el("code", {}, a.observation.code), " " + a.observation.message))
      : [el("li", { class: "empty" }, "no failed or interrupted attempt")]));
    $("job-cancel").disabled = ["succeeded", "failed", "cancelled"].includes(body.state);
    if (scrolledTo !== selectedJob) { scrolledTo = selectedJob; box.scrollIntoView({ block: "nearest" }); }
  }

  async function refreshOverview() {
    const state = $("job-state").value;
    const [comps, figures, obs, jobs] = await Promise.all([
      getJSON("/hub/v1/components"), getJSON("/hub/v1/console?span=" + SPAN + "&step=" + STEP), getJSON("/hub/v1/observations"),
      getJSON("/hub/v1/jobs?limit=100" + (state ? "&state=" + encodeURIComponent(state) : ""))]);
    const list = comps.body.components || [];
    known = new Set(list.map((c) => c.name));
    renderComponents(list, (figures.body || {}).components || {});
    renderObservations(obs.body);
    renderJobs(jobs.body.jobs || []);
    await renderDetail();
  }

  // ------------------------------------------------------ component page

  let page = { name: null, opsKey: null, failKey: null, jobs: [] };

  function renderHead(c) {
    $("cp-title").textContent = c.name;
    $("cp-state").replaceChildren(badge(c.state));
    const h = c.health || {};
    const r = c.restart || {};
    const pl = c.placement || {};
    const fields = [["form", c.form], ["pid", h.pid ?? "–"], ["alive", h.alive === undefined || h.alive === null ? "–" : (h.alive ? "yes" : "no")],
      ["rss", h.rss_kb ? Math.round(h.rss_kb / 1024) + " MiB" : "–"],
      ["restarts", (r.restarts ?? 0) + " (policy " + (r.policy || "–") + ", at most " + (r.max_restarts ?? "–") + " in " + (r.restart_period ?? "–") + " s)"],
      ["calls now", ((c.calls || {}).running ?? 0) + " running, " + ((c.calls || {}).waiting ?? 0) + " waiting"],
      ["stopped", tiers(c.cancellations)], ["placement", [pl.engine, pl.node_id, pl.address].filter(Boolean).join(" ") || "local"],
      ["artifact", c.artifact], ["entry", c.entry || "–"], ["manifest", c.manifest || "–"]];
    $("cp-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, v)]));
    $("cp-observation").replaceChildren(c.observation ? observationBlock(c.observation) : "");
  }

  function renderCharts(data) {
    const pts = data.points || [];
    $("chart-rate").replaceChildren(chart(pts, [{ key: "rate", cls: "rate", factor: 1 }], "", "rate"));
    $("chart-latency").replaceChildren(chart(pts, [{ key: "p50", cls: "p50", factor: 1000 }, { key: "p99", cls: "p99", factor: 1000 }], "", "latency"));
    $("chart-errors").replaceChildren(chart(pts, [{ key: "error_rate", cls: "errors", factor: 100 }], "", "errors"));
    // the newest point that has a value, beside each chart's title
    const latest = (key, factor, unit) => {
      for (let i = pts.length - 1; i >= 0; i--) if (pts[i][key] !== null && pts[i][key] !== undefined) return fmtAxis(pts[i][key] * factor) + unit;
      return "–";
    };
    $("now-rate").textContent = latest("rate", 1, " calls/s");
    $("now-latency").textContent = latest("p50", 1000, " ms") + " / " + latest("p99", 1000, " ms");
    $("now-errors").textContent = latest("error_rate", 100, " %");
    const m = data.minute || {};
    const figs = [["calls", m.calls ?? 0, "calls in the last minute"], ["errors", m.errors ?? 0, "failed"], ["error_rate", pct(m.error_rate), "error rate"],
      ["p50", ms(m.p50), "p50"], ["p99", ms(m.p99), "p99"]];
    $("cp-minute").replaceChildren(...figs.map(([k, v, label]) => el("div", { class: "figure", "data-figure": k },
      el("span", { class: "value" }, v), el("span", { class: "label" }, label))));
  }

  function policyText(p) {
    let s = p.policy;
    if (p.policy === "concurrent") s += " ≤" + p.max_concurrency;
    if (p.policy === "queue") s += ", " + p.max_attempts + " attempt" + (p.max_attempts === 1 ? "" : "s");
    const flags = [p.idempotent ? "idempotent" : "", p.http_get ? "GET allowed" : ""].filter(Boolean);
    return s + (flags.length ? " (" + flags.join(", ") + ")" : "");
  }
  // A parameter's type, when inspect carries one (a name, or a JSON schema).
  function typeText(p) {
    const t = p.type ?? p.annotation ?? p.schema;
    if (t === null || t === undefined || t === "") return "";
    if (typeof t !== "object") return String(t);
    return t.type ? (Array.isArray(t.type) ? t.type.join(" | ") : String(t.type)) : JSON.stringify(t);
  }
  function paramText(p) {
    const t = typeText(p);
    return (p.kind === "varargs" ? "*" : p.kind === "varkw" ? "**" : "") + p.name + (p.required ? "" : "?") + (t ? ": " + t : "");
  }

  function renderOperations(c) {
    const key = JSON.stringify(c.services || {});
    if (key === page.opsKey) return;
    page.opsKey = key;
    const rows = [];
    for (const [svc, ops] of Object.entries(c.services || {})) {
      for (const [op, info] of Object.entries(ops)) {
        const label = svc === "default" ? op : svc + "." + op;
        const params = info.params === null || info.params === undefined ? el("span", { class: "msg" }, "unknown")
          : info.params.length ? el("span", { class: "mono" }, info.params.map(paramText).join(", ")) : el("span", { class: "msg" }, "none");
        const pol = info.policy || {};
        const tryIt = el("button", { type: "button", class: "try", "data-op": label }, "Try");
        tryIt.addEventListener("click", () => openTry(c.name, svc, op, info));
        rows.push(el("tr", { "data-op": label }, el("td", { class: "mono" }, label), el("td", {}, params),
          el("td", { class: "policy" }, policyText(pol)),
          el("td", { class: "wide" }, (pol.wait_timeout ?? "–") + " / " + (pol.run_timeout ?? "–")),
          el("td", { class: "wide msg trunc", title: info.doc || "" }, (info.doc || "").split("\n")[0]), el("td", {}, tryIt)));
      }
    }
    $("cp-ops").tBodies[0].replaceChildren(...rows);
    $("cp-ops-count").textContent = "(" + rows.length + ")";
  }

  // ------------------------------------------------------------ try it

  let trying = null;
  function openTry(component, service, op, info) {
    trying = { component, service, op, params: info.params };
    $("try-title").textContent = "Call " + component + "." + (service === "default" ? op : service + "." + op);
    const fields = [];
    if (info.params === null || info.params === undefined) {
      fields.push(el("label", { class: "field" }, el("span", {}, "arguments (JSON: an object for named, an array for positional)"),
        el("textarea", { name: "__args__", rows: 3, "data-param": "__args__" })));
    } else {
      for (const p of info.params) {
        const hint = p.kind === "varargs" ? "JSON array" : p.kind === "varkw" ? "JSON object" : (p.required ? "required" : "optional");
        fields.push(el("label", { class: "field" }, el("span", { class: "mono" }, paramText(p)),
          el("input", { name: p.name, type: "text", autocomplete: "off", placeholder: hint, "data-param": p.name })));
      }
      if (!info.params.length) fields.push(el("p", { class: "msg" }, "This operation takes no argument."));
    }
    $("try-fields").replaceChildren(...fields);
    $("try-result").hidden = true;
    $("try-status").textContent = "";
    $("try").hidden = false;
    const first = $("try-fields").querySelector("input, textarea");
    if (first) first.focus();
  }
  const jsonOrText = (s) => { try { return JSON.parse(s); } catch (e) { return s; } };

  function tryBody() {
    const t = trying;
    const inputs = [...$("try-fields").querySelectorAll("[data-param]")];
    if (t.params === null || t.params === undefined) {
      const raw = inputs[0].value.trim();
      return raw ? JSON.parse(raw) : null;
    }
    const value = {};
    for (const i of inputs) if (i.value.trim() !== "") value[i.getAttribute("data-param")] = jsonOrText(i.value.trim());
    const positional = t.params.some((p) => p.kind === "positional") || t.params.some((p) => p.kind === "varargs" && p.name in value);
    if (!positional) {
      let named = {};
      for (const p of t.params) {
        if (!(p.name in value)) continue;
        if (p.kind === "varkw" && value[p.name] && typeof value[p.name] === "object") named = Object.assign(named, value[p.name]);
        else named[p.name] = value[p.name];
      }
      return named;
    }
    const args = [];
    for (const p of t.params) {
      if (p.kind === "varkw" || !(p.name in value)) continue;
      if (p.kind === "varargs") args.push(...(Array.isArray(value[p.name]) ? value[p.name] : [value[p.name]])); else args.push(value[p.name]);
    }
    return args;
  }

  async function runTry(ev) {
    ev.preventDefault();
    if (!trying) return;
    let body;
    try { body = tryBody(); } catch (e) { $("try-status").textContent = "not JSON: " + e.message; return; }
    const t = trying;
    const path = "/rest/v1/" + [t.component, t.service, t.op].map(encodeURIComponent).join("/");
    $("try-run").disabled = true;
    $("try-status").textContent = "calling…";
    const started = performance.now();
    let r;
    try {
      r = await withToken("POST", path, JSON.stringify(body), "Calling an operation on this hub needs its token.");
    } finally { $("try-run").disabled = false; }
    const took = performance.now() - started;
    $("try-status").textContent = "HTTP " + r.status + " in " + took.toFixed(0) + " ms";
    const res = r.body || {};
    $("try-result").hidden = false;
    $("try-result").dataset.ok = String(!!res.ok);
    $("try-result").dataset.status = String(r.status);
    const job = res.job;
    $("try-job").hidden = !(r.status === 202 && job);
    $("try-job").replaceChildren(...(r.status === 202 && job ? ["queued as job ", jobLink(job.id)] : []));
    if (res.ok) {
      $("try-code").replaceChildren(badge(r.status === 202 ? "queued" : "succeeded"));
      $("try-value").textContent = r.status === 202 ? "" : JSON.stringify(res.value, null, 2);
      $("try-value").hidden = r.status === 202;
      $("try-output").replaceChildren(outputBlock(res.stdout, res.stderr));
    } else if (res.observation) {
      $("try-code").replaceChildren(el("code", { class: "code" }, res.observation.code));
      $("try-value").textContent = res.observation.message;
      $("try-value").hidden = false;
      $("try-output").replaceChildren(observationBlock(res.observation, res.stdout, res.stderr));
    } else {
      $("try-code").replaceChildren(el("code", {}, "HTTP " + r.status));
      $("try-value").textContent = "";
      $("try-output").replaceChildren();
    }
    refresh();
  }
  $("try").addEventListener("submit", runTry);
  $("try-close").addEventListener("click", () => { $("try").hidden = true; trying = null; });

  // ---------------------------------------------------- failures, states, jobs

  const openFailures = new Set();
  function renderFailures(failures) {
    const byCall = new Map(page.jobs.map((j) => [j.call_id, j.id]));
    const key = failures.map((f) => f.call_id + "@" + f.t).join(",") + "|" + [...byCall.keys()].join(",");
    $("cp-failures-empty").hidden = failures.length > 0;
    $("cp-failures-count").textContent = "(" + failures.length + ")";
    if (key === page.failKey) return;
    page.failKey = key;
    $("cp-failures").replaceChildren(...failures.map((f) => {
      const o = f.observation || {};
      const id = f.call_id + "@" + f.t;
      const d = el("details", { class: "failure", "data-call": f.call_id, "data-code": o.code });
      d.open = openFailures.has(id);
      d.addEventListener("toggle", () => { if (d.open) openFailures.add(id); else openFailures.delete(id); });
      d.append(el("summary", {}, el("span", { class: "msg" }, when(f.t)), " ", el("span", { class: "mono" }, opName(f.target)), " ",
        el("code", { class: "code" }, o.code || ""), " ", el("span", { class: "obs-message" }, o.message || "")));
      const meta = el("dl", { class: "fields" }, el("dt", {}, "call"), el("dd", { "data-field": "call" }, f.call_id),
        el("dt", {}, "caller"), el("dd", {}, f.caller), el("dt", {}, "took"), el("dd", {}, ms(f.duration)));
      if (f.tier) meta.append(el("dt", {}, "stopped"), el("dd", {}, f.tier));
      const job = byCall.get(f.call_id);
      if (job) meta.append(el("dt", {}, "job"), el("dd", { "data-field": "job" }, jobLink(job)));
      d.append(meta, observationBlock(o, f.stdout, f.stderr));
      return d;
    }));
  }

  function renderStates(states) {
    $("cp-states").replaceChildren(...states.map((s) => el("li", { "data-state": s.state }, el("span", { class: "msg" }, when(s.t)), " ",
      badge(s.state), s.restarted ? " restart #" + s.restarts : "", s.code ? el("code", {}, " " + s.code) : "")));
  }

  // Replicas and generations, when the hub's inspect carries them: a table each.
  function renderExtras(c) {
    const parts = [];
    for (const key of ["replicas", "generations"]) {
      const v = c[key];
      if (!v || typeof v !== "object") continue;
      const rows = Array.isArray(v) ? v : Object.entries(v).map(([k, x]) => Object.assign({ id: k }, typeof x === "object" && x ? x : { value: x }));
      const cols = [...new Set(rows.flatMap((r) => Object.keys(r || {})))];
      parts.push(el("h2", {}, key + " ", el("span", { class: "count" }, "(" + rows.length + ")")),
        el("div", { class: "scroll" }, el("table", { "data-extra": key },
          el("thead", {}, el("tr", {}, ...cols.map((k) => el("th", {}, k)))),
          el("tbody", {}, ...rows.map((r) => el("tr", {}, ...cols.map((k) => {
            const x = (r || {})[k];
            return el("td", {}, x === null || x === undefined ? "" : typeof x === "object" ? JSON.stringify(x) : String(x));
          })))))));
    }
    $("cp-replicas").replaceChildren(...parts);
  }

  function renderComponentJobs(jobs) {
    $("cp-jobs").tBodies[0].replaceChildren(...jobs.map((j) => el("tr", { "data-job": j.id }, el("td", {}, jobLink(j.id)),
      el("td", { class: "mono" }, opName(j.target)), el("td", {}, badge(j.state)), el("td", { class: "wide" }, when(j.created)))));
    $("cp-jobs-empty").hidden = jobs.length > 0;
    $("cp-jobs-count").textContent = "(" + jobs.length + ")";
  }

  async function refreshComponent(name) {
    if (page.name !== name) {
      page = { name: name, opsKey: null, failKey: null, jobs: [] };
      $("try").hidden = true; trying = null;
      $("cp-action").textContent = "";
    }
    const q = "?span=" + SPAN + "&step=" + STEP;
    const [data, jobs, comps] = await Promise.all([getJSON("/hub/v1/console/" + encodeURIComponent(name) + q),
      getJSON("/hub/v1/jobs?limit=50&component=" + encodeURIComponent(name)), getJSON("/hub/v1/components")]);
    hubStatus((comps.body || {}).components || []);
    const missing = data.status !== 200;
    $("cp-missing").hidden = !missing;
    for (const id of ["cp-charts", "cp-operations", "cp-failures-card", "cp-side", "cp-fields", "cp-reload", "cp-unload"]) $(id).hidden = missing;
    if (missing) { $("cp-title").textContent = name; $("cp-state").replaceChildren(badge("unloaded")); return; }
    page.jobs = (jobs.body || {}).jobs || [];
    const c = data.body.component;
    renderHead(c);
    renderCharts(data.body);
    renderOperations(c);
    renderFailures(data.body.failures || []);
    renderStates(data.body.states || []);
    renderExtras(c);
    renderComponentJobs(page.jobs);
  }

  async function admin(what) {
    const name = page.name;
    if (!name) return;
    const path = "/hub/v1/components/" + encodeURIComponent(name) + (what === "reload" ? "/reload" : "");
    $("cp-action").textContent = what + "ing " + name + "…";
    const r = await withToken(what === "reload" ? "POST" : "DELETE", path, "{}", (what === "reload" ? "Reloading" : "Unloading") + " a component needs the hub's token.");
    const b = r.body || {};
    if (r.status === 401) $("cp-action").textContent = what + " not done: no token";
    else if (b.ok) $("cp-action").textContent = what + "ed " + name + " at " + new Date().toLocaleTimeString();
    else $("cp-action").replaceChildren(what + " failed: ", b.observation ? observationBlock(b.observation) : "HTTP " + r.status);
    $("cp-action").dataset.result = r.status === 401 ? "refused" : (b.ok ? "ok" : "failed");
    page.opsKey = null;
    refresh();
  }
  $("cp-reload").addEventListener("click", () => admin("reload"));
  // two clicks to unload: the first arms the button for five seconds
  let armed = null;
  $("cp-unload").addEventListener("click", () => {
    if (!armed) {
      $("cp-unload").textContent = "Click again to unload";
      armed = setTimeout(() => { armed = null; $("cp-unload").textContent = "Unload"; }, 5000);
      return;
    }
    clearTimeout(armed); armed = null; $("cp-unload").textContent = "Unload";
    admin("unload");
  });

  // ------------------------------------------------------------- routing

  function route() {
    const h = decodeURIComponent(window.location.hash.replace(/^#\/?/, ""));
    if (h.startsWith("component/")) return { name: "component", component: h.slice("component/".length) };
    if (h.startsWith("job/")) return { name: "overview", job: h.slice("job/".length) };
    return { name: "overview" };
  }
  function applyRoute() {
    view = route();
    $("overview").hidden = view.name !== "overview";
    $("component-page").hidden = view.name !== "component";
    if (view.job) { selectedJob = view.job; scrolledTo = null; }
    document.title = view.name === "component" ? view.component + " · cncf hub" : "cncf hub";
    refresh();
  }

  let again = false;
  async function refresh() {
    if (busy) { again = true; return; } // one more pass once this one ends
    busy = true;
    try {
      if (view.name === "component") await refreshComponent(view.component); else await refreshOverview();
      $("updated").textContent = new Date().toLocaleTimeString();
    } catch (e) {
      const s = $("hub-status");
      s.dataset.state = "down";
      s.textContent = e.message === "unauthenticated" ? "token needed" : "hub unreachable";
    } finally {
      busy = false;
      if (again) { again = false; setTimeout(refresh, 0); }
    }
  }

  $("job-state").addEventListener("change", refresh);
  $("job-close").addEventListener("click", () => { selectedJob = null; if (window.location.hash.startsWith("#/job/")) window.location.hash = "#/"; refresh(); });
  $("job-cancel").addEventListener("click", async () => {
    if (!selectedJob) return;
    $("job-cancel").disabled = true;
    await withToken("POST", "/hub/v1/jobs/" + encodeURIComponent(selectedJob) + "/cancel", "{}", "Cancelling a job on this hub needs its token.");
    refresh();
  });
  $("token-save").addEventListener("click", () => {
    // the hub answers /?token=T with an HttpOnly, SameSite=Strict cookie and a clean URL
    window.location.assign("/?token=" + encodeURIComponent($("token").value.trim()));
  });
  window.addEventListener("hashchange", applyRoute);
  applyRoute();
  timer = setInterval(refresh, 1000);
  window.addEventListener("beforeunload", () => clearInterval(timer));
})();
