// sensorgate status page: reads the daemon's JSON API every few seconds
// and renders it. Plain DOM, no framework, no build step. Every value
// from the API goes in through textContent or an attribute, never
// innerHTML, so a device name or a dead letter's detail cannot inject
// markup into the page that holds the token.
"use strict";

(function () {
  const REFRESH_MS = 5000;
  const TOKEN_KEY = "sensorgate.token";
  const LETTERS = 50; // newest dead letters listed
  const LAST_ERRORS = 5;

  const $ = (sel) => document.querySelector(sel);
  let timer = null;
  let refreshes = 0;
  let models = null; // decoder models, loaded once
  // Rows of the unknown-device table by DevEUI, kept across refreshes so
  // a half-typed name or a chosen model survives the next refresh.
  const unknownRows = new Map();

  // ---- API ----

  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const t = token();
    if (t) headers.Authorization = "Bearer " + t;
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    // The API takes a change only with a JSON Content-Type, body or not.
    if (method !== "GET") headers["Content-Type"] = "application/json";
    if (body !== undefined) init.body = JSON.stringify(body);
    const resp = await fetch(path, init);
    let data = null;
    const text = await resp.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = { error: text };
      }
    }
    if (!resp.ok) {
      throw new APIError(resp.status, (data && data.error) || resp.status + " " + resp.statusText);
    }
    return data;
  }

  // ---- formatting ----

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.includes("-")) e.setAttribute(k, v); // data-*, aria-*
      else e[k] = v;
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function setText(sel, v) {
    const e = $(sel);
    if (e) e.textContent = v;
  }

  // bytes is a size in binary units with at most 3 significant digits
  // and no trailing zeros ("0", "512 B", "1.5 KiB", "0.977 MiB"): a
  // figure that moves to the next unit at 1000 never shows four digits.
  function bytes(n) {
    if (typeof n !== "number" || !isFinite(n) || n < 0) return "–";
    if (n === 0) return "0";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    let v = i === 0 ? Math.round(n) : Number(n.toPrecision(3));
    if (v >= 1000 && i < units.length - 1) {
      // 999.7 KiB rounds to 1000: one unit up instead.
      v = Number((v / 1024).toPrecision(3));
      i++;
    }
    return v + " " + units[i];
  }

  function duration(s) {
    if (s < 1) return "0 s";
    if (s < 90) return Math.round(s) + " s";
    if (s < 90 * 60) return Math.round(s / 60) + " min";
    if (s < 36 * 3600) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  }

  function ago(iso) {
    if (!iso) return "–";
    const t = Date.parse(iso);
    if (isNaN(t) || t <= 0) return "–";
    return duration(Math.max(0, (Date.now() - t) / 1000)) + " ago";
  }

  function timeCell(iso) {
    return el("td", { text: ago(iso), title: iso || "" });
  }

  // clock is a local time as 2026-05-04 08:30:12: sortable, one width.
  function clock(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return "–";
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  function rate(v) {
    if (v === 0) return "0";
    return v < 10 ? v.toFixed(2) : v.toFixed(1);
  }

  // ---- health ----

  // health is the colour of a device: red when silent (no uplink for
  // devices.silent_factor intervals, decided by the daemon) or losing 20 %
  // of its frames; amber when late by more than half an interval, losing
  // 5 %, or with dead letters today; green otherwise; grey when never
  // heard from.
  function health(h) {
    if (!h) return "grey";
    if (h.silent || h.loss_pct >= 20) return "red";
    const late = h.interval_s > 0 && h.last_seen_age_s > 1.5 * h.interval_s;
    if (late || h.loss_pct >= 5 || h.dead_letters_24h > 0) return "amber";
    return "green";
  }

  const healthText = {
    green: "reporting",
    amber: "late, losing frames or dead letters",
    red: "silent or losing many frames",
    grey: "never heard from",
  };

  // sparkline draws uplinks per hour over the last 24 hours as bars, the
  // current hour on the right.
  function sparkline(hourly) {
    const ns = "http://www.w3.org/2000/svg";
    const w = 4, gap = 1, h = 20;
    const n = hourly ? hourly.length : 0;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("width", String(Math.max(n, 24) * (w + gap)));
    svg.setAttribute("height", String(h));
    svg.setAttribute("role", "img");
    const max = Math.max(1, ...(hourly || [0]));
    const total = (hourly || []).reduce((a, b) => a + b, 0);
    const title = document.createElementNS(ns, "title");
    title.textContent = total + " uplinks in the last 24 h (per hour, now on the right)";
    svg.append(title);
    for (let i = 0; i < n; i++) {
      const v = hourly[i];
      const bh = v > 0 ? Math.max(2, Math.round((v / max) * (h - 1))) : 1;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("x", String(i * (w + gap)));
      r.setAttribute("y", String(h - bh));
      r.setAttribute("width", String(w));
      r.setAttribute("height", String(bh));
      r.setAttribute("data-count", String(v));
      if (v === 0) r.setAttribute("class", "zero");
      svg.append(r);
    }
    return svg;
  }

  // ---- rendering ----

  // renderInstances lists the instances sharing the registry, from their
  // heartbeats; the card stays hidden on a single instance.
  function renderInstances(st) {
    const list = st.instances || [];
    $("#card-instances").hidden = list.length === 0;
    $("#instances tbody").replaceChildren(
      ...list.map((i) => {
        const srcs = i.sources || [];
        const withConn = srcs.filter((s) => s.connected !== null);
        const up = withConn.filter((s) => s.connected).length;
        const conn = withConn.length ? up + " / " + withConn.length : srcs.length + " listening";
        const names = srcs.map((s) => s.name + (s.connected === null ? "" : s.connected ? " ✓" : " ✗")).join(", ");
        return el("tr", { "data-instance": i.id, "data-self": i.id === st.instance ? "true" : "false" },
          el("td", { text: i.id + (i.id === st.instance ? " (this one)" : "") }),
          el("td", { text: i.version }),
          timeCell(i.last_heartbeat),
          el("td", { text: conn, title: names }));
      }),
    );
  }

  // renderRedecode lists re-decode jobs since start, newest first; the
  // card stays hidden until one ran.
  function renderRedecode(st) {
    const jobs = st.redecode || [];
    $("#card-redecode").hidden = jobs.length === 0;
    $("#redecode tbody").replaceChildren(
      ...jobs.map((j) => {
        const p = j.progress || {};
        const pct = p.uplinks > 0 ? " (" + Math.floor((100 * p.uplinks_done) / p.uplinks) + " %)" : "";
        const r = j.request || {};
        const state = j.state + (r.dry_run ? ", dry run" : "");
        return el("tr", { "data-job": String(j.id), "data-state": j.state },
          el("td", { text: String(j.id) }),
          el("td", { text: state, title: j.error || "" }),
          el("td", { text: (r.since || "") + " – " + (r.until || "") }),
          el("td", { class: "uplinks", text: p.uplinks_done + " / " + p.uplinks + pct }),
          el("td", { text: rate(j.uplinks_per_second) }),
          el("td", { class: "eta", text: j.eta_s === undefined || j.eta_s === null ? "–" : duration(j.eta_s) }),
          el("td", { text: p.devices_done + " / " + p.devices + (p.skipped ? ", " + p.skipped + " skipped" : "") }));
      }),
    );
  }

  function renderStatus(st) {
    const withConn = st.sources.filter((s) => s.connected !== null);
    const up = withConn.filter((s) => s.connected).length;
    setText("#sources-connected", withConn.length ? up + " / " + withConn.length + " connected" : st.sources.length + " listening");
    const ul = $("#sources");
    ul.replaceChildren(
      ...st.sources.map((s) => {
        const cls = s.connected === null ? "none" : s.connected ? "connected" : "disconnected";
        const state = s.connected === null ? "no connection" : s.connected ? "connected" : "disconnected";
        return el("li", { "data-source": s.name, "data-state": cls },
          el("span", { class: "dot " + cls, title: state }),
          el("span", { text: s.name }),
          el("span", { class: "muted", text: s.format || s.type }));
      }),
    );
    renderInstances(st);
    renderRedecode(st);
    const tp = st.throughput;
    setText("#throughput-rate", rate(tp.uplinks_per_second));
    setText("#throughput-minute", String(tp.uplinks_last_minute));
    setText("#throughput-total", String(tp.uplinks_total));
    if (st.spool) {
      // The segment files keep acknowledged records until they rotate:
      // with nothing pending the backlog is 0, whatever is on disk.
      const sb = $("#spool-bytes");
      sb.textContent = st.spool.records > 0 ? bytes(st.spool.bytes) : "0";
      sb.title = bytes(st.spool.bytes) + " of segment files on disk";
      setText("#spool-records", String(st.spool.records));
      setText("#spool-age", st.spool.records > 0 ? duration(st.spool.oldest_age_s) : "–");
      const dropped = $("#spool-dropped");
      dropped.hidden = !st.spool.dropped_records;
      dropped.textContent = st.spool.dropped_records + " records dropped at spool.max_bytes";
    }
    setText("#dead-since", String(st.dead_letters));
    renderDeviceTiles(st.devices);
    if (st.influx) {
      setText("#influx-points", String(st.influx.points_written));
      const retries = Object.values(st.influx.retries || {}).reduce((a, b) => a + b, 0);
      setText("#influx-retries", String(retries));
      const ie = $("#influx-error");
      ie.hidden = !st.influx.last_error;
      ie.textContent = st.influx.last_error ? "InfluxDB, " + ago(st.influx.last_error_time) + ": " + st.influx.last_error : "";
    }
  }

  function renderErrors(letters) {
    const ul = $("#errors-list");
    if (!letters.length) {
      ul.replaceChildren(el("li", { class: "muted", text: "No dead letters." }));
      return;
    }
    ul.replaceChildren(
      ...letters.slice(0, LAST_ERRORS).map((l) =>
        el("li", { "data-id": String(l.id) },
          el("span", { text: clock(l.time), title: l.time }),
          el("span", { class: "reason", text: l.reason }),
          el("span", { text: l.source }),
          el("span", { class: "detail", text: l.detail, title: l.detail })),
      ),
    );
  }

  // ---- device tiles and the paged device table ----

  // renderDeviceTiles shows the device counts of /api/v1/status: the
  // daemon counts them (per health colour, silent), so the page never
  // downloads every device for a total.
  function renderDeviceTiles(d) {
    setText("#devices-registered", String(d.registered));
    setText("#devices-unknown", String(d.unknown));
    setText("#devices-silent", String(d.silent));
    const colours = d.colours || {};
    for (const c of ["green", "amber", "red", "grey"]) {
      const e = $("#devices-" + c);
      if (!e) continue;
      e.textContent = String(colours[c] || 0);
      e.title = (colours[c] || 0) + " " + healthText[c];
    }
  }

  // The device table shows one page of the registry at a time, in DevEUI
  // order, searched by the daemon (q): a fleet of 100,000 devices costs
  // the page one request of DEVICE_PAGE devices. cursors[i] is the cursor
  // of page i (the first is ""), so Previous goes back without the API
  // paging backwards. seq drops an answer overtaken by a newer request.
  const DEVICE_PAGE = 50;
  const SEARCH_DELAY_MS = 250;
  const devicePager = { cursors: [""], index: 0, q: "", next: "", seq: 0, searchTimer: null };

  async function loadDevicePage() {
    const seq = ++devicePager.seq;
    const params = new URLSearchParams({ limit: String(DEVICE_PAGE), health: "true" });
    const cursor = devicePager.cursors[devicePager.index];
    if (cursor) params.set("cursor", cursor);
    if (devicePager.q) params.set("q", devicePager.q);
    const page = await api("GET", "/api/v1/devices?" + params);
    if (seq !== devicePager.seq) return; // a newer page or search is on its way
    renderDevicePage(page);
  }

  function renderDevicePage(page) {
    devicePager.next = page.next_cursor || "";
    const health = page.health || {};
    // Accepted unknown devices have health but no registry entry: they
    // are listed under unknown devices, not here.
    const rows = page.devices.map((d) => deviceRow({ d, h: health[d.dev_eui] }));
    const tbody = $("#devices tbody");
    if (!rows.length) {
      tbody.replaceChildren(el("tr", null, el("td", { class: "empty", colSpan: 11, text: devicePager.q ? "No device matches." : page.registered ? "No device on this page." : "No device registered." })));
    } else {
      tbody.replaceChildren(...rows);
    }
    const first = devicePager.index * DEVICE_PAGE + 1;
    const range = rows.length ? first + "–" + (first + rows.length - 1) + " of " : "";
    setText("#devices-count", devicePager.q ? range + page.total + " matching of " + page.registered : range + page.registered + " devices");
    $("#devices-prev").disabled = devicePager.index === 0;
    $("#devices-next").disabled = !devicePager.next;
    const table = $("#devices");
    table.dataset.pages = String(Number(table.dataset.pages || 0) + 1);
    // When the first page showed, in ms since the page started loading:
    // the browser test reports it.
    if (!table.dataset.firstRenderMs) table.dataset.firstRenderMs = String(Math.round(performance.now()));
  }

  function deviceRow({ d, h }) {
    const c = health(h);
    const radio = h && h.rssi !== undefined ? h.rssi.toFixed(0) + " dBm" + (h.snr !== undefined ? " / " + h.snr.toFixed(1) + " dB" : "") : "–";
    let battery = "–";
    if (h && h.battery_level !== undefined) battery = h.battery_level.toFixed(0) + " %";
    else if (h && h.battery !== undefined) battery = h.battery.toFixed(2) + " V";
    return el("tr", { "data-eui": d.dev_eui, "data-health": c },
      el("td", null, el("span", { class: "dot health-" + c, title: healthText[c] })),
      el("td", { text: d.name }),
      el("td", { class: "eui", text: d.dev_eui }),
      el("td", { text: d.model || (h && h.model) || "–" }),
      el("td", { text: (h && h.source) || "–" }),
      h ? timeCell(h.last_seen) : el("td", { class: "muted", text: "never" }),
      el("td", { class: "num", text: h ? String(h.uplinks_24h) : "0" }),
      el("td", { class: "num", text: h ? h.loss_pct.toFixed(1) + " %" : "–" }),
      el("td", { class: "num", text: radio }),
      el("td", { class: "num", text: battery }),
      el("td", null, sparkline(h ? h.uplinks_hourly : new Array(24).fill(0))),
    );
  }

  // showDevicePage loads the current page now, reporting a failure in
  // the banner as a refresh does.
  async function showDevicePage() {
    try {
      await loadDevicePage();
    } catch (e) {
      if (e.status === 401) {
        askToken("The token was refused.");
        return;
      }
      const banner = $("#error");
      banner.hidden = false;
      banner.textContent = "Cannot read the devices: " + e.message;
    }
  }

  // searchDevices asks the daemon once typing pauses, from the first page.
  function searchDevices() {
    clearTimeout(devicePager.searchTimer);
    devicePager.searchTimer = setTimeout(() => {
      const q = $("#device-search").value.trim();
      if (q === devicePager.q) return;
      devicePager.q = q;
      devicePager.cursors = [""];
      devicePager.index = 0;
      showDevicePage();
    }, SEARCH_DELAY_MS);
  }

  function nextDevicePage() {
    if (!devicePager.next) return;
    devicePager.cursors = devicePager.cursors.slice(0, devicePager.index + 1);
    devicePager.cursors.push(devicePager.next);
    devicePager.index++;
    showDevicePage();
  }

  function previousDevicePage() {
    if (devicePager.index === 0) return;
    devicePager.index--;
    showDevicePage();
  }

  function bindDeviceTable() {
    $("#device-search").addEventListener("input", searchDevices);
    $("#devices-next").addEventListener("click", nextDevicePage);
    $("#devices-prev").addEventListener("click", previousDevicePage);
  }

  function modelSelect() {
    const sel = el("select", { class: "adopt-model", title: "decoder model" },
      el("option", { value: "", text: "no model: NS data" }));
    for (const m of models || []) sel.append(el("option", { value: m, text: m }));
    return sel;
  }

  function renderUnknown(list) {
    const tbody = $("#unknown tbody");
    const seen = new Set();
    for (const u of list) {
      seen.add(u.dev_eui);
      let row = unknownRows.get(u.dev_eui);
      if (!row) {
        row = newUnknownRow(u);
        unknownRows.set(u.dev_eui, row);
      }
      const cells = row.tr.cells;
      cells[1].textContent = u.name || "–";
      cells[2].textContent = u.profile || "–";
      cells[3].textContent = u.source;
      cells[4].textContent = String(u.count);
      cells[5].textContent = ago(u.last_seen);
      cells[5].title = u.last_seen;
      cells[6].textContent = u.accepted ? "written as " + (u.name || u.dev_eui) : "dead-lettered";
    }
    for (const [eui, row] of unknownRows) {
      if (!seen.has(eui) && !row.busy) unknownRows.delete(eui);
    }
    const rows = list.map((u) => unknownRows.get(u.dev_eui).tr);
    if (!rows.length) {
      tbody.replaceChildren(el("tr", null, el("td", { class: "empty", colSpan: 9, text: "No unknown device." })));
    } else {
      tbody.replaceChildren(...rows);
    }
    setText("#unknown-count", list.length ? list.length + " waiting for adoption" : "");
  }

  function newUnknownRow(u) {
    const name = el("input", { class: "adopt-name", value: u.name || "", placeholder: u.dev_eui, "aria-label": "name" });
    const model = modelSelect();
    const result = el("span", { class: "result" });
    const button = el("button", { type: "button", class: "adopt", text: "Adopt" });
    const tr = el("tr", { "data-eui": u.dev_eui },
      el("td", { class: "eui", text: u.dev_eui }),
      el("td"), el("td"), el("td"), el("td", { class: "num" }), el("td"), el("td"),
      el("td", { class: "adopt-as" }, name, " ", model),
      el("td", { class: "actions" }, button, result));
    const row = { tr, busy: false };
    button.addEventListener("click", async () => {
      row.busy = true;
      button.disabled = true;
      result.className = "result";
      result.textContent = "adopting…";
      const body = {};
      if (name.value.trim()) body.name = name.value.trim();
      if (model.value) body.model = model.value;
      try {
        const d = await api("POST", "/api/v1/unknown-devices/" + encodeURIComponent(u.dev_eui) + "/adopt", body);
        result.className = "result ok";
        result.textContent = "adopted as " + d.name;
        tr.classList.add("adopted");
        row.busy = false;
        await refresh();
      } catch (e) {
        row.busy = false;
        button.disabled = false;
        result.className = "result error";
        result.textContent = e.message;
        if (e.status === 401) askToken("The token was refused.");
      }
    });
    return row;
  }

  function renderLetters(letters) {
    const tbody = $("#deadletters tbody");
    if (!letters.length) {
      tbody.replaceChildren(el("tr", null, el("td", { class: "empty", colSpan: 7, text: "No dead letters." })));
    } else {
      tbody.replaceChildren(...letters.map(letterRow));
    }
    setText("#deadletters-count", letters.length >= LETTERS ? "newest " + LETTERS : letters.length ? letters.length + " kept" : "");
  }

  // replayResults keeps the outcome of replays across refreshes.
  const replayResults = new Map();

  function letterRow(l) {
    const result = el("span", { class: "result" });
    const button = el("button", { type: "button", class: "replay secondary", text: "Replay" });
    const prior = replayResults.get(l.id);
    if (prior) {
      result.className = "result " + (prior.ok ? "ok" : "error");
      result.textContent = prior.text;
      result.title = prior.detail;
    } else if (l.replayed_at) {
      result.className = "result ok";
      result.textContent = "replayed " + ago(l.replayed_at);
    } else if (l.last_replay_error) {
      result.className = "result error";
      result.textContent = "failed: " + l.last_replay_error.split(":")[0];
      result.title = l.last_replay_error;
    }
    button.addEventListener("click", async () => {
      button.disabled = true;
      result.className = "result";
      result.textContent = "replaying…";
      try {
        const resp = await api("POST", "/api/v1/deadletters/" + l.id + "/replay?force=true");
        const r = (resp.results || [])[0] || {};
        const ok = r.status === "replayed";
        // The outcome in a few words; the error in full on hover.
        const text = ok ? "replayed (" + (r.points || 0) + " points)" : r.status + (r.reason ? ": " + r.reason : "");
        replayResults.set(l.id, { ok, text, detail: r.detail || "" });
        result.className = "result " + (ok ? "ok" : "error");
        result.textContent = text;
        result.title = r.detail || "";
      } catch (e) {
        result.className = "result error";
        result.textContent = e.message;
        if (e.status === 401) askToken("The token was refused.");
      } finally {
        button.disabled = false;
      }
    });
    return el("tr", { "data-id": String(l.id), "data-reason": l.reason },
      el("td", { class: "num", text: String(l.id) }),
      el("td", { text: clock(l.time), title: l.time }),
      el("td", { class: "reason", text: l.reason }),
      el("td", { text: l.source }),
      el("td", { class: "eui", text: l.dev_eui || "–" }),
      el("td", { class: "detail", text: l.detail }),
      el("td", { class: "actions" }, button, result));
  }

  // ---- gateways ----

  // GATEWAYS bounds the gateways listed (one page of the API's).
  const GATEWAYS = 500;

  function renderGateways(page) {
    const gws = page.gateways || [];
    const tbody = $("#gateways tbody");
    if (!gws.length) {
      tbody.replaceChildren(el("tr", null, el("td", { class: "empty", colSpan: 9, text: "No gateway heard from or configured." })));
    } else {
      tbody.replaceChildren(...gws.map(gatewayRow));
    }
    const shown = gws.length < page.total ? gws.length + " of " + page.total : String(page.total);
    setText("#gateways-count", shown + " gateways · " + page.silent + " silent");
  }

  function gatewayRow(g) {
    const c = !g.last_seen ? "grey" : g.silent ? "red" : "green";
    const tags = Object.entries(g.tags || {}).map(([k, v]) => k + "=" + v).join(", ");
    return el("tr", { "data-gateway": g.id, "data-health": c },
      el("td", null, el("span", { class: "dot health-" + c, title: { grey: "never heard from", red: "silent", green: "reporting" }[c] })),
      el("td", { text: g.name || "–" }),
      el("td", { class: "eui", text: g.id }),
      el("td", { text: tags || "–" }),
      el("td", { text: g.source || "–" }),
      g.last_seen ? timeCell(g.last_seen) : el("td", { class: "muted", text: "never" }),
      el("td", { class: "num", text: duration(g.stats_interval_s) }),
      el("td", { class: "num", text: g.stats ? g.rx + " / " + g.rx_ok : "–" }),
      el("td", { class: "num", text: g.stats ? g.tx + " / " + g.tx_ok : "–" }),
    );
  }

  // ---- refresh loop ----

  async function refresh() {
    clearTimeout(timer);
    try {
      if (models === null) {
        models = (await api("GET", "/api/v1/models")).models || [];
      }
      const [st, unk, dl, gws] = await Promise.all([
        api("GET", "/api/v1/status"),
        api("GET", "/api/v1/unknown-devices"),
        api("GET", "/api/v1/deadletters?order=newest&limit=" + LETTERS),
        api("GET", "/api/v1/gateways?limit=" + GATEWAYS),
        loadDevicePage(),
      ]);
      renderStatus(st);
      renderGateways(gws);
      renderUnknown(unk.devices);
      renderLetters(dl.dead_letters);
      renderErrors(dl.dead_letters);
      $("#error").hidden = true;
      refreshes++;
      document.body.dataset.refreshes = String(refreshes);
      setText("#updated", "updated " + new Date().toLocaleTimeString());
    } catch (e) {
      if (e.status === 401) {
        askToken(token() ? "The token was refused." : "");
        return;
      }
      const banner = $("#error");
      banner.hidden = false;
      banner.textContent = "Cannot read the daemon's state: " + e.message;
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  function askToken(message) {
    clearTimeout(timer);
    sessionStorage.removeItem(TOKEN_KEY);
    $("#main").hidden = true;
    $("#login").hidden = false;
    $("#signout").hidden = true;
    const err = $("#login-error");
    err.hidden = !message;
    err.textContent = message || "";
    $("#token").focus();
  }

  function start() {
    $("#login").hidden = true;
    $("#main").hidden = false;
    $("#signout").hidden = !token();
    refresh();
  }

  // The formatters, read-only, for the browser test to check in
  // Chromium's own JavaScript engine.
  window.sensorgateFormat = Object.freeze({ bytes });

  document.addEventListener("DOMContentLoaded", () => {
    bindDeviceTable();
    $("#login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
      $("#token").value = "";
      start();
    });
    $("#signout").addEventListener("click", () => askToken(""));
    // Every daemon has a token (configured or generated): ask for it
    // before the first call.
    if (!token()) askToken("");
    else start();
  });
})();
