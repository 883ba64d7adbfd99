// Drives Debian's chromium (headless, through puppeteer-core) against
// kamrs's web view for tests/tests/webview.rs.
//
//   node webview.mjs '{"mode": "live", "base": "http://127.0.0.1:PORT", "token": "…", "screenshot": "…/webview.png"}'
//   node webview.mjs '{"mode": "unconfigured", "base": "http://127.0.0.1:PORT"}'
//
// Talks to the Rust test in JSON lines: prints {"step": "ready"} once the
// page is live, then reads one line {"aor": "…", "ua": "…"} from stdin (the
// test has registered that AoR meanwhile) and prints {"step": "done", …}
// with what it saw, or {"step": "failed", "error": "…"} and exits non-zero.
// Every wait is bounded; the browser is closed on every way out.
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

const config = JSON.parse(process.argv[2] ?? "{}");
const WAIT = config.waitMs ?? 20000;
const TOTAL = config.totalMs ?? 90000;

const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

let browser = null;
async function finish(code, obj) {
  say(obj);
  if (browser) {
    await browser.close().catch(() => {});
  }
  process.exit(code);
}

// However it hangs, it ends.
setTimeout(() => finish(2, { step: "failed", error: `no result within ${TOTAL} ms` }), TOTAL).unref();

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function nextLine() {
  const { value, done } = await lines.next();
  if (done) {
    throw new Error("stdin closed before the test said which AoR it registered");
  }
  return JSON.parse(value);
}

// A page with everything it logs, fails and loads recorded.
async function open(url) {
  const page = await browser.newPage();
  page.setDefaultTimeout(WAIT);
  const seen = { console: [], errors: [], api: [], sockets: [] };
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") {
      seen.console.push(`${m.type()}: ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  page.on("response", async (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith("/ui")) {
      let body = "";
      try {
        body = await r.text();
      } catch {}
      seen.api.push({ path: u.pathname, method: r.request().method(), status: r.status(), body: body.slice(0, 300) });
    }
  });
  const cdp = await page.createCDPSession();
  await cdp.send("Network.enable");
  cdp.on("Network.webSocketHandshakeResponseReceived", (e) =>
    seen.sockets.push({ status: e.response.status, protocol: e.response.headers["Sec-WebSocket-Protocol"] ?? e.response.headers["sec-websocket-protocol"] ?? null }),
  );
  const resp = await page.goto(url, { waitUntil: "load" });
  seen.shell = { status: resp.status(), headers: resp.headers() };
  return { page, seen };
}

const state = (page) => page.evaluate(() => ({ state: document.body.dataset.state, status: document.getElementById("status").textContent }));

async function live() {
  // 1. No token: the page asks for one and gets no data.
  const anon = await open(`${config.base}/ui`);
  await anon.page.waitForFunction(() => document.body.dataset.state === "needs-token" && !document.getElementById("login").hidden);
  await anon.page.waitForNetworkIdle({ idleTime: 300, timeout: WAIT });
  const noToken = {
    ...(await state(anon.page)),
    login: await anon.page.$eval("#login", (e) => e.textContent),
    viewHidden: await anon.page.$eval("#view", (e) => e.hidden),
    api: anon.seen.api,
    sockets: anon.seen.sockets,
    errors: anon.seen.errors,
    shell: anon.seen.shell,
  };
  await anon.page.close();

  // 2. With the token in the fragment: live, the token out of the URL.
  const { page, seen } = await open(`${config.base}/ui#token=${encodeURIComponent(config.token)}`);
  await page.waitForFunction(() => document.body.dataset.state === "live");
  const href = await page.evaluate(() => location.href);
  const stored = await page.evaluate(() => sessionStorage.getItem("kamrs.token") !== null);
  say({ step: "ready", href });

  // 3. The test registers an AoR; it must show up without a reload.
  const { aor, ua } = await nextLine();
  await page.waitForFunction(
    (aor) => Array.from(document.querySelectorAll("#events td.aor"), (td) => td.textContent).includes(aor),
    {},
    aor,
  );
  await page.waitForFunction(
    () => Number(document.getElementById("c-aors").textContent.replace(/,/g, "")) >= 1 && Number(document.getElementById("c-accepted").textContent.replace(/,/g, "")) >= 1,
  );
  // A bar in the chart: pixels of the accent colour.
  await page.waitForFunction(() => {
    const c = document.getElementById("chart");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] === 0x2a && d[i + 1] === 0x6f && d[i + 2] === 0xdb && d[i + 3] === 255) {
        return true;
      }
    }
    return false;
  });
  const counters = await page.evaluate(() =>
    Object.fromEntries(["c-aors", "c-bindings", "c-accepted", "c-rejected", "c-uptime"].map((id) => [id, document.getElementById(id).textContent])),
  );

  // 4. Search: the AoR's beginning finds it, with its contact, and the
  // User-Agent's markup stays text.
  await page.type("#search", aor.slice(0, aor.length - 2));
  await page.click("#search-form button[type=submit]");
  await page.waitForFunction(
    (aor) => Array.from(document.querySelectorAll("#bindings td.aor"), (td) => td.textContent).includes(aor),
    {},
    aor,
  );
  const bindings = await page.evaluate(() => ({
    text: document.getElementById("bindings").innerText,
    elements: document.querySelectorAll("#bindings *:not(tr):not(td)").length,
    info: document.getElementById("page-info").textContent,
  }));
  const uaShown = await page.evaluate(
    (ua) => Array.from(document.querySelectorAll("#bindings td"), (td) => td.textContent).includes(ua),
    ua,
  );
  const events = await page.$eval("#events", (e) => e.rows.length);

  if (config.screenshot) {
    await page.setViewport({ width: 1200, height: 900 });
    await page.evaluate(() => document.fonts.ready);
    await page.screenshot({ path: config.screenshot, fullPage: true });
  }
  const final = await state(page);
  await finish(0, {
    step: "done",
    noToken,
    stored,
    final,
    counters,
    bindings,
    uaShown,
    events,
    api: seen.api.map(({ path, method, status }) => ({ path, method, status })),
    sockets: seen.sockets,
    console: [...seen.console, ...noToken.errors],
    errors: seen.errors,
  });
}

async function unconfigured() {
  const result = {};
  for (const [name, url] of [
    ["plain", `${config.base}/ui`],
    ["withToken", `${config.base}/ui#token=0123456789abcdef-not-configured`],
  ]) {
    const { page, seen } = await open(url);
    await page.waitForFunction(() => document.body.dataset.state === "no-token-file");
    await page.waitForNetworkIdle({ idleTime: 300, timeout: WAIT });
    result[name] = {
      ...(await state(page)),
      login: await page.$eval("#login", (e) => e.textContent),
      formHidden: await page.$eval("#login-form", (e) => e.hidden),
      viewHidden: await page.$eval("#view", (e) => e.hidden),
      api: seen.api,
      errors: seen.errors,
    };
    await page.close();
  }
  await finish(0, { step: "done", ...result });
}

try {
  browser = await puppeteer.launch({
    executablePath: config.chromium ?? "/usr/bin/chromium",
    headless: true,
    // CI runs as root, where chromium's sandbox cannot start.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check"],
    timeout: WAIT,
    protocolTimeout: WAIT,
  });
  if (config.mode === "live") {
    await live();
  } else if (config.mode === "unconfigured") {
    await unconfigured();
  } else {
    throw new Error(`unknown mode ${config.mode}`);
  }
} catch (e) {
  await finish(1, { step: "failed", error: String(e && e.stack ? e.stack : e) });
}
