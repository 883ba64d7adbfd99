// kamrs web view: plain JavaScript, no framework, no build step, nothing
// loaded from anywhere but this kamrs (docs/ctl.md, "Web view").
//
// Every value shown comes from the JSON-RPC API with the bearer token, and
// is put in the page with textContent, never as markup: AoRs, Contacts and
// User-Agents are whatever a SIP client sent.
"use strict";

(() => {
  // Kept for this tab only (sessionStorage): closing the tab forgets it.
  const TOKEN_KEY = "kamrs.token";
  // What the server's auth layer looks for on a WebSocket (http.rs): a
  // browser's WebSocket cannot send Authorization.
  const WS_PROTOCOL = "kamrs";
  const WS_TOKEN_PREFIX = "kamrs.bearer.";
  const POLL_MS = 1000;
  const CALL_TIMEOUT_MS = 10000;
  // Bounds: the page must not grow however long it stays open.
  const EVENT_ROWS = 100;
  const CHART_POINTS = 120;
  const PAGE = 50;
  const MAX_BACK = 1000;

  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat("en-US");

  let token = null;
  // Bumped on every (re)connect and on forgetting the token: loops and
  // sockets of an older session see it and stop.
  let session = 0;
  let statsOk = false;
  let subscribed = false;

  class Failure extends Error {
    constructor(kind, message) {
      super(message);
      this.kind = kind;
    }
  }

  // ------------------------------------------------------------ token

  // `#token=…` (a fragment never reaches a server) or this tab's stored
  // token. A token from the address bar is taken out of it and out of the
  // history, so it is not left on screen or in a bookmark.
  function takeToken() {
    const hash = location.hash.startsWith("#") ? location.hash.slice(1) : "";
    // Read by hand: URLSearchParams turns a "+" (base64 tokens) into a space.
    const pair = hash.split("&").find((p) => p.startsWith("token="));
    let fromUrl = null;
    if (pair !== undefined) {
      try {
        fromUrl = decodeURIComponent(pair.slice("token=".length));
      } catch {
        fromUrl = "";
      }
    }
    if (fromUrl !== null) {
      history.replaceState(null, "", location.pathname + location.search);
      if (fromUrl.trim() !== "") {
        sessionStorage.setItem(TOKEN_KEY, fromUrl.trim());
      }
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function hex(text) {
    return Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // ------------------------------------------------------------ calls

  let nextId = 1;

  // One JSON-RPC call: same origin, JSON, the token in Authorization.
  async function rpc(method, params, withToken = true) {
    const headers = { "Content-Type": "application/json" };
    if (withToken) {
      headers.Authorization = "Bearer " + token;
    }
    let resp;
    try {
      resp = await fetch("/", {
        method: "POST",
        headers,
        body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params }),
        cache: "no-store",
        credentials: "omit",
        redirect: "error",
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
    } catch (e) {
      throw new Failure("unreachable", `kamrs did not answer (${e.message})`);
    }
    if (resp.status === 401) {
      throw new Failure("unauthorized", "kamrs refused the token");
    }
    if (resp.status === 403) {
      const why = await resp.text();
      throw new Failure(why.includes("token_file") ? "no-token-file" : "forbidden", why.trim());
    }
    if (!resp.ok) {
      throw new Failure("http", `HTTP ${resp.status}: ${(await resp.text()).trim()}`);
    }
    const body = await resp.json();
    if (body.error) {
      throw new Failure("rpc", `${method}: ${body.error.message}`);
    }
    return body.result;
  }

  // ------------------------------------------------------------ states

  function setState(state, text) {
    document.body.dataset.state = state;
    $("status").textContent = text;
  }

  function showLogin(state, why) {
    session++;
    statsOk = false;
    subscribed = false;
    closeEvents();
    $("view").hidden = true;
    $("forget").hidden = true;
    $("login").hidden = false;
    // Without a token file no token can work: no form to fill.
    $("login-form").hidden = state === "no-token-file";
    $("login-why").textContent = why;
    setState(state, {
      "needs-token": "needs the token",
      "no-token-file": "needs [ctl] token_file",
      unauthorized: "token refused",
    }[state] || state);
  }

  // Without a token: one call without it, which kamrs refuses either way
  // (no data comes back), to tell "give me the token" from "this kamrs has
  // no token_file, so browsers are never served".
  async function askForToken() {
    showLogin("needs-token", "The web view needs the control API's bearer token.");
    try {
      await rpc("core.version", [], false);
    } catch (e) {
      if (e.kind === "no-token-file") {
        showLogin(
          "no-token-file",
          "This kamrs has no [ctl] token_file, and browsers are served only with a token: " +
            "add `token_file = \"/etc/kamrs/ctl.token\"` to [ctl] in kamrs's config " +
            "(make one with `openssl rand -hex 32 > /etc/kamrs/ctl.token`), restart kamrs, " +
            "and open this page with the token.",
        );
      }
    }
  }

  function failed(e, gen) {
    if (gen !== session) {
      return;
    }
    if (e.kind === "unauthorized") {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin("unauthorized", "kamrs refused that token: give the contents of its [ctl] token_file.");
    } else if (e.kind === "no-token-file") {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(
        "no-token-file",
        "This kamrs has no [ctl] token_file, and browsers are served only with a token: set one in its config and restart it.",
      );
    } else if (e.kind === "forbidden") {
      // A rule no retry changes (an Origin not in [ctl] allowed_origins):
      // stop, and say which.
      session++;
      closeEvents();
      setState("forbidden", e.message);
    } else {
      statsOk = false;
      setState("error", `${e.message}; retrying`);
    }
  }

  function updateLive() {
    if (statsOk && subscribed) {
      setState("live", "live");
    } else if (statsOk) {
      setState("connecting", "counters live, event stream connecting…");
    } else {
      setState("connecting", "connecting…");
    }
  }

  function connect() {
    const gen = ++session;
    statsOk = false;
    subscribed = false;
    $("login").hidden = true;
    $("view").hidden = false;
    $("forget").hidden = false;
    setState("connecting", "connecting…");
    chart.points.length = 0;
    chart.last = null;
    poll(gen);
    openEvents(gen);
    pager.reset();
    loadBindings(gen);
  }

  // ------------------------------------------------------------ counters

  const STATS = [
    "registrar:accepted_regs",
    "registrar:rejected_regs",
    "usrloc:location_users",
    "usrloc:location_contacts",
  ];

  // `["group:name = 12", …]` → Map name → number.
  function parseStats(lines) {
    const out = new Map();
    for (const line of lines) {
      const at = line.lastIndexOf(" = ");
      if (at > 0) {
        out.set(line.slice(0, at), Number(line.slice(at + 3)));
      }
    }
    return out;
  }

  function uptime(seconds) {
    const d = Math.floor(seconds / 86400);
    const pad = (n) => String(n).padStart(2, "0");
    const hms = `${pad(Math.floor((seconds % 86400) / 3600))}:${pad(Math.floor((seconds % 3600) / 60))}:${pad(seconds % 60)}`;
    return d > 0 ? `${d}d ${hms}` : hms;
  }

  async function poll(gen) {
    if (gen !== session) {
      return;
    }
    try {
      const [lines, up] = await Promise.all([rpc("stats.get_statistics", STATS), rpc("core.uptime", [])]);
      if (gen !== session) {
        return;
      }
      const s = parseStats(lines);
      const show = (id, v) => {
        $(id).textContent = Number.isFinite(v) ? number.format(v) : "?";
      };
      show("c-aors", s.get("usrloc:location_users"));
      show("c-bindings", s.get("usrloc:location_contacts"));
      show("c-accepted", s.get("registrar:accepted_regs"));
      show("c-rejected", s.get("registrar:rejected_regs"));
      $("c-uptime").textContent = uptime(up.uptime);
      chart.add(performance.now(), s.get("registrar:accepted_regs"));
      statsOk = true;
      updateLive();
    } catch (e) {
      failed(e, gen);
      if (gen !== session) {
        return;
      }
    }
    setTimeout(() => poll(gen), POLL_MS);
  }

  // ------------------------------------------------------------ chart

  // REGISTERs accepted per second, from the growth of
  // registrar:accepted_regs between two polls; the last CHART_POINTS.
  const chart = {
    points: [],
    last: null,
    add(at, accepted) {
      if (!Number.isFinite(accepted)) {
        return;
      }
      if (this.last !== null) {
        const seconds = (at - this.last.at) / 1000;
        // Fewer than before: the statistics were reset.
        const grown = Math.max(0, accepted - this.last.accepted);
        this.points.push(seconds > 0 ? grown / seconds : 0);
        while (this.points.length > CHART_POINTS) {
          this.points.shift();
        }
        const now = this.points[this.points.length - 1];
        $("rate").textContent = `now ${now.toFixed(1)}/s`;
      }
      this.last = { at, accepted };
      this.draw();
    },
    draw() {
      const canvas = $("chart");
      const ratio = window.devicePixelRatio || 1;
      const width = canvas.clientWidth || 900;
      const height = canvas.clientHeight || 160;
      if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
        canvas.width = Math.round(width * ratio);
        canvas.height = Math.round(height * ratio);
      }
      const g = canvas.getContext("2d");
      g.setTransform(ratio, 0, 0, ratio, 0, 0);
      g.clearRect(0, 0, width, height);
      const left = 48;
      const bottom = height - 18;
      const top = 8;
      const peak = Math.max(1, ...this.points);
      const scale = niceCeiling(peak);
      const style = getComputedStyle(document.body);
      g.font = "11px system-ui, sans-serif";
      g.fillStyle = style.getPropertyValue("--muted") || "#667";
      g.strokeStyle = style.getPropertyValue("--grid") || "#dde";
      g.lineWidth = 1;
      for (let i = 0; i <= 4; i++) {
        const y = bottom - ((bottom - top) * i) / 4;
        g.beginPath();
        g.moveTo(left, Math.round(y) + 0.5);
        g.lineTo(width - 4, Math.round(y) + 0.5);
        g.stroke();
        g.fillText(formatRate((scale * i) / 4), 4, y + 4);
      }
      g.fillText(`last ${CHART_POINTS} s`, left, height - 4);
      const slot = (width - 4 - left) / CHART_POINTS;
      g.fillStyle = style.getPropertyValue("--accent") || "#2a6fdb";
      const first = CHART_POINTS - this.points.length;
      this.points.forEach((v, i) => {
        const h = ((bottom - top) * v) / scale;
        g.fillRect(left + (first + i) * slot + 1, bottom - h, Math.max(1, slot - 2), h);
      });
    },
  };

  function niceCeiling(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) {
      if (v <= m * p) {
        return m * p;
      }
    }
    return 10 * p;
  }

  function formatRate(v) {
    return v >= 1000 ? `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k` : `${Math.round(v * 100) / 100}`;
  }

  // ------------------------------------------------------------ events

  let ws = null;
  let backoff = 1000;

  function closeEvents() {
    if (ws) {
      const old = ws;
      ws = null;
      old.onclose = null;
      old.close();
    }
  }

  function eventsState(text) {
    $("events-state").textContent = text;
  }

  function subscribe(socket) {
    socket.send(JSON.stringify({ jsonrpc: "2.0", id: nextId++, method: "ul.subscribe", params: [] }));
  }

  function openEvents(gen) {
    if (gen !== session) {
      return;
    }
    closeEvents();
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/";
    let socket;
    try {
      socket = new WebSocket(url, [WS_PROTOCOL, WS_TOKEN_PREFIX + hex(token)]);
    } catch (e) {
      eventsState(`cannot open the event stream: ${e.message}`);
      return;
    }
    ws = socket;
    eventsState("connecting…");
    socket.onopen = () => subscribe(socket);
    socket.onmessage = (m) => {
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch {
        return;
      }
      if (msg.method === "ul.events" && msg.params && Array.isArray(msg.params.result)) {
        // A batch: what happened since the previous notification, in order.
        for (const ev of msg.params.result) {
          addEvent(ev);
          if (ev && ev.Event === "lagged") {
            // kamrs ended the subscription: this page read too slowly.
            subscribe(socket);
          }
        }
      } else if ("id" in msg) {
        if (msg.error) {
          eventsState(`ul.subscribe: ${msg.error.message}`);
          subscribed = false;
          // Try again later (e.g. every subscription slot is taken).
          socket.close();
        } else {
          subscribed = true;
          backoff = 1000;
          eventsState(`subscribed, last ${EVENT_ROWS} shown`);
        }
        updateLive();
      }
    };
    socket.onclose = () => {
      if (gen !== session || ws !== socket) {
        return;
      }
      ws = null;
      subscribed = false;
      updateLive();
      eventsState(`disconnected; reconnecting in ${backoff / 1000} s`);
      setTimeout(() => openEvents(gen), backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
  }

  function clock(seconds) {
    const t = new Date(seconds * 1000);
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    return `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${pad(t.getMilliseconds(), 3)}`;
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text;
    if (className) {
      td.className = className;
    }
    return td;
  }

  function addEvent(ev) {
    if (!ev || typeof ev !== "object") {
      return;
    }
    const body = $("events");
    const row = body.insertRow(0);
    row.className = `ev ev-${String(ev.Event).replace(/[^a-z-]/g, "")}`;
    cell(row, typeof ev.Time === "number" ? clock(ev.Time) : "");
    cell(row, String(ev.Event ?? ""));
    if (ev.Event === "lagged") {
      cell(row, "");
      cell(row, `${ev.Lost} events lost: this page fell behind; resubscribed`);
      cell(row, "");
    } else {
      cell(row, String(ev.AoR ?? ""), "aor");
      cell(row, String(ev.Contact?.Address ?? ""), "contact");
      cell(row, String(ev.Contact?.Expires ?? ""));
    }
    while (body.rows.length > EVENT_ROWS) {
      body.deleteRow(body.rows.length - 1);
    }
  }

  // ------------------------------------------------------------ bindings

  // Pages of ul.dump_prefix (the empty prefix: every AoR), in name order;
  // `back` holds the cursors of the pages before, for Previous.
  const pager = {
    query: "",
    cursor: "",
    next: null,
    back: [],
    index: 0,
    reset() {
      this.cursor = "";
      this.next = null;
      this.back = [];
      this.index = 0;
    },
  };

  async function loadBindings(gen = session) {
    const body = $("bindings");
    $("page-info").textContent = "loading…";
    for (const b of ["first", "prev", "next"]) {
      $(b).disabled = true;
    }
    let page;
    try {
      page = await rpc("ul.dump_prefix", [pager.query, pager.cursor, PAGE]);
      // Nothing begins with it: perhaps an AoR written another way
      // (`alice@example.com` where keys have no domain); ul.lookup
      // normalises it as a REGISTER would.
      if (pager.query !== "" && pager.cursor === "" && page.AoRs.length === 0) {
        try {
          const found = await rpc("ul.lookup", ["location", pager.query]);
          page = { Next: null, AoRs: [{ Info: { AoR: found.AoR, Contacts: found.Contacts } }] };
        } catch (e) {
          if (e.kind !== "rpc") {
            throw e;
          }
        }
      }
    } catch (e) {
      $("page-info").textContent = e.message;
      failed(e, gen);
      return;
    }
    if (gen !== session) {
      return;
    }
    pager.next = page.Next;
    body.replaceChildren();
    let contacts = 0;
    for (const entry of page.AoRs) {
      const info = entry.Info || { AoR: entry.AoR, Contacts: [] };
      const list = Array.isArray(info.Contacts) && info.Contacts.length > 0 ? info.Contacts : [null];
      list.forEach((c, i) => {
        const row = body.insertRow();
        if (i === 0) {
          const td = cell(row, String(info.AoR ?? ""), "aor");
          td.rowSpan = list.length;
        }
        const k = c ? c.Contact : {};
        cell(row, String(k.Address ?? ""), "contact");
        cell(row, String(k.Expires ?? ""));
        cell(row, String(k.Received ?? ""));
        cell(row, String(k["User-Agent"] ?? ""));
        contacts += c ? 1 : 0;
      });
    }
    if (page.AoRs.length === 0) {
      const row = body.insertRow();
      const td = cell(row, pager.query ? `no AoR begins with “${pager.query}”` : "no bindings");
      td.colSpan = 5;
      td.className = "empty";
    }
    const from = pager.index * PAGE;
    $("page-info").textContent =
      page.AoRs.length === 0
        ? ""
        : `AoRs ${number.format(from + 1)}–${number.format(from + page.AoRs.length)}, ${number.format(contacts)} bindings`;
    $("first").disabled = pager.index === 0;
    $("prev").disabled = pager.back.length === 0;
    $("next").disabled = pager.next === null;
  }

  // ------------------------------------------------------------ wiring

  function wire() {
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const t = $("token").value.trim();
      $("token").value = "";
      if (t !== "") {
        sessionStorage.setItem(TOKEN_KEY, t);
        token = t;
        connect();
      }
    });
    $("forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      token = null;
      showLogin("needs-token", "Token forgotten. The web view needs the control API's bearer token.");
    });
    $("search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      pager.query = $("search").value.trim();
      pager.reset();
      loadBindings();
    });
    $("refresh").addEventListener("click", () => loadBindings());
    $("first").addEventListener("click", () => {
      pager.reset();
      loadBindings();
    });
    $("next").addEventListener("click", () => {
      if (pager.next === null) {
        return;
      }
      pager.back.push(pager.cursor);
      if (pager.back.length > MAX_BACK) {
        pager.back.shift();
      }
      pager.cursor = pager.next;
      pager.index++;
      loadBindings();
    });
    $("prev").addEventListener("click", () => {
      if (pager.back.length === 0) {
        return;
      }
      pager.cursor = pager.back.pop();
      pager.index = Math.max(0, pager.index - 1);
      loadBindings();
    });
    window.addEventListener("resize", () => chart.draw());
  }

  wire();
  token = takeToken();
  if (token) {
    connect();
  } else {
    askForToken();
  }
})();
