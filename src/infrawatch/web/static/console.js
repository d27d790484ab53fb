// InfraWatch console: the live connection, API calls with the CSRF header,
// declarative forms and buttons, theme. No build step: plain ES2020.
(function () {
  "use strict";
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  // --- theme -------------------------------------------------------------------------
  const savedTheme = localStorage.getItem("iw-theme");
  if (savedTheme) document.documentElement.dataset.theme = savedTheme;
  function toggleTheme() {
    const next = document.documentElement.dataset.theme === "light" ? "dark" : "light";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("iw-theme", next);
  }

  // --- API -------------------------------------------------------------------------
  async function api(method, url, body, headers) {
    const init = { method, headers: { "X-CSRF-Token": csrf(), Accept: "application/json", ...(headers || {}) },
                   credentials: "same-origin" };
    if (body !== undefined && body !== null) {
      if (typeof body === "string") { init.body = body; }
      else { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
    }
    let response;
    try { response = await fetch(url, init); }
    catch (e) { return { ok: false, status: 0, data: { detail: "the server cannot be reached" } }; }
    let data = null;
    const text = await response.text();
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
    if (response.status === 401 && !url.startsWith("/api/v1/auth/login")) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    }
    return { ok: response.ok, status: response.status, data };
  }

  function describe(detail) {
    if (detail == null) return "something went wrong";
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => (d.loc ? d.loc.filter((p) => p !== "body").join(".") + ": " : "") + (d.msg || "")).join("\n");
    }
    return JSON.stringify(detail);
  }

  function toast(message, isError) {
    const box = document.createElement("div");
    box.className = "toast" + (isError ? " error" : "");
    box.setAttribute("role", isError ? "alert" : "status");
    box.textContent = message;
    document.body.appendChild(box);
    setTimeout(() => box.remove(), isError ? 8000 : 3500);
  }

  // --- declarative forms -------------------------------------------------------------
  // <form data-api="POST /api/v1/servers" data-then="go:/servers/{id}">; inputs by name,
  // data-type = int | float | bool | json | lines | list | map | match ; empty fields are left out
  // unless data-keep-empty. Nested names use dots: settings.method.
  function convert(el) {
    const type = el.dataset.type || (el.type === "number" ? "float" : "");
    if (el.type === "checkbox") return el.checked;
    if (el.multiple) return [...el.selectedOptions].map((o) => o.value);
    const raw = el.value;
    if (raw === "" && !("keepEmpty" in el.dataset)) return undefined;
    switch (type) {
      case "int": return raw === "" ? null : parseInt(raw, 10);
      case "float": return raw === "" ? null : parseFloat(raw);
      case "bool": return raw === "true";
      case "json": return JSON.parse(raw);
      case "null-empty": return raw === "" ? null : raw;
      case "lines": return raw.split("\n").map((s) => s.trim()).filter(Boolean);
      case "list": return raw.split(",").map((s) => s.trim()).filter(Boolean);
      case "map": return parseTags(raw);
      case "match": return parseTags(raw, null);  // a rule's or window's tags: a bare key, any value
      default: return raw;
    }
  }

  // Tags are written one way everywhere, as in CSV imports: key=value pairs
  // separated by ";" (or new lines): env=prod; role=web. A value may hold commas.
  function parseTags(raw, bare = "") {
    const out = {};
    tagParts(raw).forEach((pair) => {
      const i = pair.indexOf("=");
      if (i < 0) out[pair] = bare; else out[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
    });
    return out;
  }
  function tagParts(raw) { return raw.split(/[\n;]/).map((s) => s.trim()).filter(Boolean); }

  function collect(form) {
    const body = {};
    for (const el of form.querySelectorAll("input[name], select[name], textarea[name]")) {
      if (el.matches(":disabled") || (el.type === "radio" && !el.checked)) continue;
      let value;
      try { value = convert(el); } catch (e) { throw { field: el, message: "not valid JSON: " + e.message }; }
      if (value === undefined) continue;
      const path = el.name.split(".");
      let target = body;
      path.slice(0, -1).forEach((p) => { target = target[p] = target[p] || {}; });
      target[path[path.length - 1]] = value;
    }
    return body;
  }

  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach((e) => e.remove());
    form.querySelectorAll('[aria-invalid="true"]').forEach((e) => e.removeAttribute("aria-invalid"));
    const box = form.querySelector(".form-error");
    if (box) box.textContent = "";
  }

  function markField(form, name, message) {
    const field = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (!field) return false;
    field.setAttribute("aria-invalid", "true");
    const note = document.createElement("div");
    note.className = "field-error";
    note.id = "err-" + name.replace(/\W/g, "-");
    note.textContent = message;
    field.setAttribute("aria-describedby", note.id);
    field.insertAdjacentElement("afterend", note);
    return true;
  }

  function showErrors(form, detail) {
    const box = form.querySelector(".form-error");
    const unplaced = [];
    if (Array.isArray(detail)) {
      for (const d of detail) {
        const loc = (d.loc || []).filter((p) => p !== "body" && p !== "query");
        const name = loc.filter((p) => typeof p === "string").join(".");
        if (!(name && markField(form, name, d.msg))) unplaced.push((loc.join(".") ? loc.join(".") + ": " : "") + d.msg);
      }
    } else {
      unplaced.push(describe(detail));
    }
    if (unplaced.length) {
      if (box) box.textContent = unplaced.join("\n"); else toast(unplaced.join("\n"), true);
    }
    const first = form.querySelector('[aria-invalid="true"]');
    if (first) first.focus();
  }

  function fill(template, data) {
    return template.replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent(data && data[key] != null ? data[key] : ""));
  }

  function after(spec, data, source) {
    if (!spec) return;
    for (const step of spec.split("|")) {
      const [what, arg] = [step.split(":")[0], step.slice(step.indexOf(":") + 1)];
      if (what === "go") location.href = fill(arg, data);
      else if (what === "reload") location.reload();
      else if (what === "refresh") document.querySelectorAll(arg).forEach((el) => htmx.trigger(el, "iw:refresh"));
      else if (what === "toast") toast(fill(arg, data).replace(/%20/g, " "));
      else if (what === "result") {
        const target = document.querySelector(arg);
        if (target) { target.hidden = false; target.textContent = JSON.stringify(data, null, 2); }
      } else if (what === "event") document.dispatchEvent(new CustomEvent(arg, { detail: { data, source } }));
      else if (what === "reset" && source.tagName === "FORM") source.reset();
    }
  }

  function parseAction(spec) {
    const i = spec.indexOf(" ");
    return { method: spec.slice(0, i), url: spec.slice(i + 1) };
  }

  async function submitForm(form, submitter) {
    clearErrors(form);
    let body;
    try { body = form.dataset.raw ? form.querySelector("[data-raw-body]").value : collect(form); }
    catch (e) { if (e.field) { markField(form, e.field.name, e.message); e.field.focus(); } return; }
    if (form.dataset.transform && window[form.dataset.transform]) {
      // A transform may look things up (async) and refuse a field: throw { fieldName, message }.
      try { body = await window[form.dataset.transform](body, form); }
      catch (e) {
        if (e && e.fieldName && markField(form, e.fieldName, e.message)) form.querySelector(`[name="${CSS.escape(e.fieldName)}"]`).focus();
        else showErrors(form, String((e && e.message) || e));
        return;
      }
    }
    const { method, url } = parseAction((submitter && submitter.dataset.api) || form.dataset.api);
    let target = url;
    if (form.dataset.query) {  // fields sent as a query string (for example dry_run)
      const params = new URLSearchParams();
      for (const key of form.dataset.query.split(",")) if (body[key] !== undefined) { params.set(key, body[key]); delete body[key]; }
      if ([...params].length) target += (url.includes("?") ? "&" : "?") + params;
    }
    const headers = form.dataset.contentType ? { "Content-Type": form.dataset.contentType } : {};
    if (form.dataset.etag) headers["If-Match"] = form.dataset.etag;
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    const result = await api(method, fill(target, body).replace(/%2F/g, "/"), method === "GET" ? null : body, headers);
    buttons.forEach((b) => (b.disabled = false));
    if (!result.ok) { showErrors(form, result.data && result.data.detail); return; }
    after((submitter && submitter.dataset.then) || form.dataset.then, result.data || {}, form);
  }

  async function clickAction(button) {
    if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
    const { method, url } = parseAction(button.dataset.api);
    let body = button.dataset.body ? JSON.parse(button.dataset.body) : null;
    if (button.dataset.bodyFrom && window[button.dataset.bodyFrom]) body = window[button.dataset.bodyFrom](button);
    button.disabled = true;
    const result = await api(method, url, body);
    button.disabled = false;
    if (!result.ok) { toast(describe(result.data && result.data.detail), true); return; }
    after(button.dataset.then, result.data || {}, button);
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset && form.dataset.api) { event.preventDefault(); submitForm(form, event.submitter); }
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-api]");
    if (button && !button.form?.dataset.api) { event.preventDefault(); clickAction(button); }
    if (event.target.closest("[data-theme-toggle]")) toggleTheme();
    const toggle = event.target.closest("[data-toggle]");
    if (toggle) {  // an edit row under a table row, shown and hidden in place
      const target = document.querySelector(toggle.dataset.toggle);
      if (target) {
        target.hidden = !target.hidden;
        document.querySelectorAll(`[data-toggle="${toggle.dataset.toggle}"][aria-expanded]`)
          .forEach((b) => b.setAttribute("aria-expanded", String(!target.hidden)));
        if (!target.hidden) target.querySelector("input, select")?.focus();
      }
    }
  });

  // --- live updates ------------------------------------------------------------------
  // Pages name the topics they want (<body data-topics="monitoring.*,inventory.*">) and
  // the monitors whose results they show (data-monitor-ids). Events are re-dispatched on
  // document as "iw:event" plus "iw:<family>" ("iw:monitoring", "iw:inventory", ...).
  // After a reconnect or a resync message, "iw:resync" asks live regions to reload.
  // `since`: the newest event this page has seen (at first, when the server rendered it).
  // Every subscribe sends it, and the server replays what came after, or says "resync".
  const live = { socket: null, attempts: 0, everOpen: false, pollTimer: null, state: "connecting", since: null };
  const POLL_MS = 15000;

  function setState(state) {
    live.state = state;
    document.querySelectorAll("[data-live-state]").forEach((el) => {
      el.dataset.state = state;
      el.textContent = { live: "live", polling: "polling every 15 s", offline: "offline, retrying", connecting: "connecting" }[state];
    });
  }

  function resync(reason) {
    document.dispatchEvent(new CustomEvent("iw:resync", { detail: { reason } }));
  }

  function startPolling() {
    if (live.pollTimer) return;
    setState("polling");
    live.pollTimer = setInterval(() => resync("poll"), POLL_MS);
  }

  function stopPolling() {
    if (live.pollTimer) { clearInterval(live.pollTimer); live.pollTimer = null; }
  }

  function subscribe() {
    const topics = (document.body.dataset.topics || "").split(",").map((s) => s.trim()).filter(Boolean);
    if (!topics.length || !live.socket || live.socket.readyState !== 1) return;
    const message = { type: "subscribe", topics };
    if (live.since) message.since = live.since;
    const ids = document.body.dataset.monitorIds;
    if (ids !== undefined) message.monitor_ids = ids.split(",").filter(Boolean);
    live.socket.send(JSON.stringify(message));
  }

  function connect() {
    if (!("WebSocket" in window)) { startPolling(); return; }
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    let socket;
    try { socket = new WebSocket(url); } catch (e) { scheduleReconnect(); return; }
    live.socket = socket;
    socket.onopen = () => {
      live.everOpen = true;
      live.attempts = 0;
      stopPolling();
      setState("live");
      subscribe();  // with `since`: what was missed while away comes first
    };
    socket.onmessage = (message) => {
      let data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      if (data.type === "event") {
        if (!live.since || Date.parse(data.at) > Date.parse(live.since)) live.since = data.at;
        document.dispatchEvent(new CustomEvent("iw:event", { detail: data }));
        document.dispatchEvent(new CustomEvent("iw:" + data.topic.split(".")[0], { detail: data }));
      } else if (data.type === "resync") {
        resync(data.reason);
      }
    };
    socket.onclose = (event) => {
      live.socket = null;
      if (event.code === 4401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return; }
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    live.attempts += 1;
    // After a few failures the page polls, and keeps trying the socket behind it.
    if (live.attempts >= 3 || !live.everOpen) startPolling(); else setState("offline");
    const delay = Math.min(30000, 1000 * 2 ** Math.min(live.attempts - 1, 5)) * (0.8 + Math.random() * 0.4);
    setTimeout(connect, delay);
  }

  // Throttled "refresh this region" for events that arrive in bursts.
  const pending = new Map();
  function refreshSoon(selector, ms) {
    if (pending.has(selector)) return;
    pending.set(selector, setTimeout(() => {
      pending.delete(selector);
      document.querySelectorAll(selector).forEach((el) => htmx.trigger(el, "iw:refresh"));
    }, ms || 300));
  }

  // Monitor rows and tiles update in place from results: status, latency, sparkline.
  const sparkData = new Map();
  function applyResults(results) {
    for (const r of results) {
      document.querySelectorAll(`[data-monitor-row="${r.id}"]`).forEach((row) => {
        // A failed check has no response time: say so rather than "0 ms".
        const failed = r.outcome === "down";
        const latency = row.querySelector("[data-latency]");
        if (latency) {
          latency.textContent = failed ? "failed" : r.latency_ms == null ? "—" : Math.round(r.latency_ms) + " ms";
          latency.classList.toggle("s-down", failed);
        }
        const checked = row.querySelector("[data-checked]");
        if (checked) checked.textContent = "just now";
        const spark = row.querySelector("svg.spark");
        if (spark) {
          const points = sparkData.get(r.id) || JSON.parse(spark.dataset.points || "[]");
          points.push(failed ? null : r.latency_ms);
          while (points.length > 30) points.shift();
          sparkData.set(r.id, points);
          spark.dataset.state = r.state || (failed ? "down" : "up");
          drawSpark(spark, points);
        }
      });
      document.dispatchEvent(new CustomEvent("iw:result", { detail: r }));
    }
  }

  // Points are response times, null where a check failed (or an hour had no
  // answered check): the line breaks there and a mark sits on the floor. The
  // colour is the monitor's state (svg[data-state], console.css).
  function drawSpark(svg, points) {
    const peak = Math.max(1, ...points.filter((p) => p != null));
    const step = 120 / Math.max(points.length - 1, 1);
    const x = (i) => (i * step).toFixed(1), y = (p) => (22 - (20 * p) / peak).toFixed(1);
    const runs = [[]], marks = [];
    points.forEach((p, i) => {
      if (p == null) { marks.push(i); if (runs[runs.length - 1].length) runs.push([]); }
      else runs[runs.length - 1].push(`${x(i)},${y(p)}`);
    });
    svg.innerHTML = runs.filter((r) => r.length).map((r) => r.length === 1
      ? `<circle cx="${r[0].split(",")[0]}" cy="${r[0].split(",")[1]}" r="1.5" fill="currentColor"/>`
      : `<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="${r.join(" ")}"/>`).join("")
      + marks.map((i) => `<rect class="spark-fail" x="${(i * step - 1).toFixed(1)}" y="20" width="2" height="3"/>`).join("");
  }

  function applyStatus(kind, payload) {
    const selector = kind === "monitor" ? `[data-monitor-status="${payload.id}"]` : `[data-server-health="${payload.id}"]`;
    document.querySelectorAll(selector).forEach((el) => {
      el.textContent = payload.to;
      el.className = el.className.replace(/\bs-\w+/g, "").trim() + " s-" + payload.to;
      el.closest("[data-status-holder]")?.setAttribute("data-status", payload.to);
    });
  }

  document.addEventListener("iw:event", (event) => {
    const { topic, payload } = event.detail;
    if (topic === "monitoring.results") applyResults(payload.results || []);
    else if (topic === "monitoring.monitor.status") applyStatus("monitor", payload);
    else if (topic === "inventory.server.health") applyStatus("server", payload);
    // Regions that depend on a family of events reload themselves (throttled).
    document.querySelectorAll("[data-refresh-on]").forEach((el) => {
      const patterns = el.dataset.refreshOn.split(",");
      if (patterns.some((p) => topic.startsWith(p.replace("*", "")))) refreshSoon("#" + el.id, 400);
    });
  });
  document.addEventListener("iw:resync", () => {
    document.querySelectorAll("[data-refresh-on]").forEach((el) => refreshSoon("#" + el.id, 50));
  });

  // --- response-time charts (uPlot) --------------------------------------------------
  // <div data-chart="{monitor id}">, with radio buttons name="latency-range":
  // "live" draws the last results and follows new ones; 1h … 30d draw the
  // rollups (average of answered checks; a gap where every check failed).
  const charts = new Map();
  const RANGE_SECONDS = { "1h": 3600, "24h": 86400, "7d": 604800, "30d": 2592000 };
  async function initChart(el) {
    const id = el.dataset.chart;
    const picked = document.querySelector("input[name=latency-range]:checked");
    const range = picked ? picked.value : "live";
    let data;
    if (range === "live") {
      const result = await api("GET", `/api/v1/monitors/${id}/results?limit=200`);
      if (!result.ok) return;
      const items = (result.data.items || []).slice().reverse();
      data = [items.map((r) => Date.parse(r.checked_at) / 1000), items.map((r) => r.outcome === "down" ? null : r.latency_ms)];
    } else {
      const result = await api("GET", `/api/v1/monitors/${id}/series?range=${range}`);
      if (!result.ok) return;
      const items = result.data || [];
      data = [items.map((p) => Date.parse(p.at) / 1000), items.map((p) => p.latency_avg_ms)];
    }
    if (!window.uPlot) return;
    const style = getComputedStyle(document.documentElement);
    const axis = { stroke: style.getPropertyValue("--muted"), grid: { stroke: style.getPropertyValue("--border") } };
    const span = RANGE_SECONDS[range];
    el.replaceChildren();
    const plot = new uPlot({
      width: Math.max(el.clientWidth, 240), height: 160,
      series: [{}, { label: range === "live" ? "response time" : "average response time", stroke: style.getPropertyValue("--accent"), width: 1.5, value: (u, v) => v == null ? "—" : v.toFixed(0) + " ms" }],
      axes: [axis, { ...axis, values: (u, vals) => vals.map((v) => v + " ms"), size: 60 }],
      scales: { x: span ? { time: true, range: () => [Date.now() / 1000 - span, Date.now() / 1000] } : { time: true } },
    }, data, el);
    charts.set(id, { plot, data, live: range === "live" });
  }
  document.addEventListener("change", (event) => {
    if (event.target.name === "latency-range") document.querySelectorAll("[data-chart]").forEach(initChart);
  });
  document.addEventListener("iw:result", (event) => {
    const r = event.detail, chart = charts.get(r.id);
    if (!chart || !chart.live) return;
    chart.data[0].push(Date.parse(r.at) / 1000);
    chart.data[1].push(r.outcome === "down" ? null : r.latency_ms);
    if (chart.data[0].length > 500) { chart.data[0].shift(); chart.data[1].shift(); }
    chart.plot.setData(chart.data);
  });
  window.addEventListener("resize", () => charts.forEach((c, id) => {
    const el = document.querySelector(`[data-chart="${id}"]`);
    if (el) c.plot.setSize({ width: Math.max(el.clientWidth, 240), height: 160 });
  }));

  // --- host charts (uPlot): the agent's rollups, averages and the fullest disk -------
  // <div data-host-chart="{server id}">, with radio buttons name="host-period".
  async function initHostChart(el) {
    const picked = document.querySelector("input[name=host-period]:checked");
    const period = picked ? picked.value : "5m", hours = picked ? picked.dataset.hours : 24;
    const result = await api("GET", `/api/v1/servers/${el.dataset.hostChart}/host-metrics?period=${period}&hours=${hours}`);
    if (!result.ok || !window.uPlot) return;
    const items = result.data.items || [];
    const style = getComputedStyle(document.documentElement);
    const axis = { stroke: style.getPropertyValue("--muted"), grid: { stroke: style.getPropertyValue("--border") } };
    const pct = (u, v) => v == null ? "—" : v.toFixed(1) + " %";
    el.replaceChildren();
    new uPlot({
      width: Math.max(el.clientWidth, 240), height: 180,
      series: [{},
        { label: "CPU", stroke: style.getPropertyValue("--accent"), width: 1.5, value: pct, scale: "%" },
        { label: "memory", stroke: style.getPropertyValue("--degraded"), width: 1.5, value: pct, scale: "%" },
        { label: "fullest disk", stroke: style.getPropertyValue("--down"), width: 1.5, value: pct, scale: "%" },
        { label: "load per core", stroke: style.getPropertyValue("--up"), width: 1.5, scale: "load" }],
      axes: [axis, { ...axis, scale: "%", values: (u, vals) => vals.map((v) => v + " %"), size: 50 },
        { ...axis, scale: "load", side: 1, grid: { show: false } }],
      // The whole period shown, however few buckets it has yet.
      scales: { x: { time: true, range: () => [Date.now() / 1000 - hours * 3600, Date.now() / 1000] },
        "%": { range: [0, 100] } },
    }, [items.map((r) => Date.parse(r.start) / 1000), items.map((r) => r.cpu_avg),
        items.map((r) => r.memory_avg), items.map((r) => r.disk_max), items.map((r) => r.load_per_core_avg)], el);
  }
  document.addEventListener("change", (event) => {
    if (event.target.name === "host-period") document.querySelectorAll("[data-host-chart]").forEach(initHostChart);
  });

  // --- the overview's fleet chart (uPlot): uptime and response time of all monitors ----
  // <div data-fleet-chart='[[unix, uptime %, avg ms, p95 ms], ...]' data-range="24h">,
  // drawn from the page's own data, again each time the region is swapped in.
  function initFleetChart(el) {
    if (!window.uPlot || el.dataset.drawn) return;
    el.dataset.drawn = "1";
    const rows = JSON.parse(el.dataset.fleetChart || "[]");
    const style = getComputedStyle(document.documentElement);
    const axis = { stroke: style.getPropertyValue("--muted"), grid: { stroke: style.getPropertyValue("--border") } };
    const ms = (u, v) => v == null ? "—" : v.toFixed(0) + " ms";
    const span = RANGE_SECONDS[el.dataset.range] || 86400;
    el.replaceChildren();
    new uPlot({
      width: Math.max(el.clientWidth, 240), height: 180,
      series: [{},
        { label: "uptime", stroke: style.getPropertyValue("--up"), width: 1.5, scale: "%", value: (u, v) => v == null ? "—" : v.toFixed(2) + " %" },
        { label: "average", stroke: style.getPropertyValue("--accent"), width: 1.5, scale: "ms", value: ms },
        { label: "p95", stroke: style.getPropertyValue("--degraded"), width: 1, dash: [4, 3], scale: "ms", value: ms }],
      axes: [axis, { ...axis, scale: "%", values: (u, vals) => vals.map((v) => v + " %"), size: 56 },
        { ...axis, scale: "ms", side: 1, grid: { show: false }, values: (u, vals) => vals.map((v) => v + " ms"), size: 60 }],
      scales: { x: { time: true, range: () => [Date.now() / 1000 - span, Date.now() / 1000] },
        "%": { range: (u, lo, hi) => [Math.min(lo == null ? 90 : lo, 99) - 1, 100] } },
    }, [0, 1, 2, 3].map((i) => rows.map((r) => r[i])), el);
  }
  const drawFleetCharts = () => document.querySelectorAll("[data-fleet-chart]").forEach(initFleetChart);
  document.addEventListener("htmx:afterSettle", drawFleetCharts);

  // --- the host map: one cell per server on a canvas, coloured by state, grouped ----------
  // The map is columnar (GET /api/v1/servers/map: names[], cells "0123…" indexing
  // states[]), fetched again on inventory events at most every 5 s, with its ETag so
  // an unchanged inventory costs a 304. Cells shrink to keep 100,000 servers on a screen.
  const MAP_COLORS = { down: "--down", degraded: "--degraded", unknown: "--unknown", maintenance: "--maintenance", healthy: "--up" };
  const LABEL_HEIGHT = 20;
  function layoutMap(doc, width, maxHeight) {
    const labelled = doc.tag != null;
    const height = (cell) => doc.groups.reduce((h, g) => h + (labelled ? LABEL_HEIGHT : 0)
      + Math.ceil(g.count / Math.max(1, Math.floor(width / cell))) * cell + 6, 0);
    let cell = 18;
    while (cell > 2 && height(cell) > maxHeight) cell--;
    const perRow = Math.max(1, Math.floor(width / cell)), blocks = [];
    let y = 0, start = 0;
    for (const g of doc.groups) {
      const top = y + (labelled ? LABEL_HEIGHT : 0), rows = Math.ceil(g.count / perRow);
      blocks.push({ group: g, labelY: y, top, start, rows });
      y = top + rows * cell + 6; start += g.count;
    }
    return { cell, perRow, blocks, height: Math.max(y, 1) };
  }
  function drawMap(el, doc) {
    el.replaceChildren();
    if (!doc.total) {
      el.innerHTML = '<p class="muted">No servers yet. <a href="/servers">Add one</a> or import a file.</p>';
      return;
    }
    const width = Math.max(el.clientWidth, 200);
    const layout = layoutMap(doc, width, Math.max(260, Math.min(760, window.innerHeight * 0.7)));
    const canvas = document.createElement("canvas"), ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio); canvas.height = Math.round(layout.height * ratio);
    canvas.style.height = layout.height + "px";
    const down = doc.groups.reduce((n, g) => n + (g.states.down || 0), 0);
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `${doc.total} servers, ${down} down`);
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    const style = getComputedStyle(document.documentElement);
    const { cell, perRow } = layout, gap = cell >= 6 ? 1 : 0;
    ctx.font = "12px system-ui, sans-serif"; ctx.textBaseline = "middle";
    for (const b of layout.blocks) {
      if (doc.tag == null) break;
      const s = b.group.states, bad = [["down", s.down], ["degraded", s.degraded]].filter((p) => p[1]);
      ctx.fillStyle = style.getPropertyValue("--text");
      const name = b.group.name == null ? `no ${doc.tag} tag` : `${doc.tag}=${b.group.name}`;
      ctx.fillText(`${name} · ${b.group.count}${bad.map((p) => ` · ${p[1]} ${p[0]}`).join("")}`, 0, b.labelY + LABEL_HEIGHT / 2);
    }
    // One pass per state: five fillStyle changes rather than one per cell.
    doc.states.forEach((state, code) => {
      const mark = String(code);
      ctx.fillStyle = style.getPropertyValue(MAP_COLORS[state] || "--unknown");
      for (const b of layout.blocks) {
        for (let i = 0; i < b.group.count; i++) {
          if (doc.cells[b.start + i] !== mark) continue;
          ctx.fillRect((i % perRow) * cell, b.top + Math.floor(i / perRow) * cell, cell - gap, cell - gap);
        }
      }
    });
    const tip = document.createElement("div");
    tip.className = "map-tip"; tip.hidden = true;
    const at = (event) => {
      const box = canvas.getBoundingClientRect(), x = event.clientX - box.left, y = event.clientY - box.top;
      for (const b of layout.blocks) {
        if (y < b.top || y >= b.top + b.rows * cell) continue;
        const i = Math.floor((y - b.top) / cell) * perRow + Math.floor(x / cell);
        if (Math.floor(x / cell) < perRow && i < b.group.count) return { index: b.start + i, x, y };
      }
      return null;
    };
    canvas.addEventListener("mousemove", (event) => {
      const hit = at(event);
      tip.hidden = !hit;
      if (!hit) return;
      tip.textContent = `${doc.names[hit.index]} · ${doc.states[Number(doc.cells[hit.index])]}`;
      tip.style.left = Math.min(hit.x + 12, width - 160) + "px"; tip.style.top = hit.y + 14 + "px";
    });
    canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
    canvas.addEventListener("click", (event) => {
      const hit = at(event);
      if (hit) location.href = "/servers/by-name/" + encodeURIComponent(doc.names[hit.index]);
    });
    el.append(canvas, tip);
    el.hostMap = doc;
    const summary = document.querySelector("[data-map-summary]");
    if (summary) summary.textContent = `${doc.total} servers` + (down ? `, ${down} down` : "");
  }
  async function loadMap(el) {
    const url = "/api/v1/servers/map" + (el.dataset.tag ? "?tag=" + encodeURIComponent(el.dataset.tag) : "");
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", headers: el.etag ? { "If-None-Match": el.etag } : {} });
    } catch (e) { return; }  // offline: the live connection's resync brings it back
    if (response.status === 304) return;
    if (!response.ok) { el.innerHTML = '<p class="muted">The host map could not be loaded.</p>'; return; }
    el.etag = response.headers.get("ETag");
    const started = performance.now();
    drawMap(el, await response.json());
    el.dataset.drawMs = (performance.now() - started).toFixed(1);  // read by bench/hostmap.py
  }
  function initHostMap(el) {
    let last = 0, timer = null;
    const refresh = () => {
      if (timer) return;
      timer = setTimeout(() => { timer = null; last = Date.now(); loadMap(el); }, Math.max(0, last + 5000 - Date.now()));
    };
    el.addEventListener("iw:refresh", refresh);
    window.addEventListener("resize", () => { if (el.hostMap) drawMap(el, el.hostMap); });
    last = Date.now();
    loadMap(el);
  }

  // The monitor form's server field: a name typed or picked from matches,
  // sent as the server's id (empty: no server).
  window.iwServerPicker = function (id, name) {
    return {
      id, name, found: [], problem: "",
      async search() {
        const text = this.name.trim();
        if (!text) { this.id = ""; this.problem = ""; return; }
        const result = await api("GET", `/api/v1/servers?name=${encodeURIComponent(text.replace(/[*]/g, "") + "*")}&limit=20`);
        this.found = result.ok ? result.data.items : [];
        this.pick();
      },
      pick() {
        const text = this.name.trim();
        if (!text) { this.id = ""; this.problem = ""; return; }
        const match = this.found.find((s) => s.name === text);
        this.id = match ? match.id : "";
        this.problem = match ? "" : "no server has this name yet: pick one from the list";
      },
    };
  };

  window.iw = { api, toast, describe, resync, drawSpark, live, refreshSoon, parseTags, tagParts };
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("svg.spark[data-points]").forEach((s) => drawSpark(s, JSON.parse(s.dataset.points)));
    live.since = document.body.dataset.since || null;
    if ("live" in document.body.dataset) connect();  // signed-in pages only
  });
  // <input type="datetime-local" data-utc="ISO">: the stored instant shown in the
  // browser's own time, as the add forms take it.
  function localInputs() {
    document.querySelectorAll("input[type=datetime-local][data-utc]").forEach((el) => {
      if (!el.dataset.utc || el.value) return;
      const at = new Date(el.dataset.utc);
      el.value = new Date(at.getTime() - at.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
      el.dataset.initial = el.value;  // untouched, it is not sent (it lost its seconds)
    });
  }
  window.addEventListener("load", () => {
    localInputs();
    document.querySelectorAll("[data-chart]").forEach(initChart);
    document.querySelectorAll("[data-host-chart]").forEach(initHostChart);
    drawFleetCharts();
    document.querySelectorAll("[data-hostmap]").forEach(initHostMap);
  });
})();
