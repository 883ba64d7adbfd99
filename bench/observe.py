#!/usr/bin/env python3
"""What watching costs the registrar (issue 17): REGISTER CPU per request
at a refresh load, with nobody watching and with WATCHERS `kamrsctl --json
ul.watch` subscribers plus a `/metrics` scrape every SCRAPE_SECS.

Driven by bench/observe-bench.sh (which builds the binaries and documents
the knobs); uses bench/harness.py's SIPp runner, /proc readers and pid
bookkeeping. One kamrs, one refresh population; ROUNDS rounds of the two
modes, the order alternating each round (the machine is noisy: the ratio
within a round is the figure, the median over rounds the result).

Writes bench/observe-results.json and the section "## Watching and
scraping" of bench/RESULTS.md.
"""

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as H  # noqa: E402  (reads BENCH_WORK, KAMRS_BIN, ... at import)

RATE = H.env_int("RATE", 20000)
STEP_SECS = H.env_int("STEP_SECS", 10)
ROUNDS = H.env_int("ROUNDS", 3)
WATCHERS = H.env_int("WATCHERS", 10)
SCRAPE_SECS = H.env_int("SCRAPE_SECS", 1)
MODES = os.environ.get("MODES", "baseline observed filtered").split()
GOAL_PCT = 5.0
OUT_DIR = H.OUT_DIR


class ObservedKamrs(H.System):
    """kamrs with its control API on HTTP (ul.watch over WebSocket and
    /metrics on one listener), otherwise harness.py's configuration."""

    label = "kamrs"
    key = "kamrs"

    def __init__(self, name):
        self.dir = H.WORK / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = H.free_both_port()
        self.http = f"127.0.0.1:{H.free_port(H.socket.SOCK_STREAM)}"
        cfg = self.dir / "kamrs.toml"
        cfg.write_text(
            f'listen = ["udp:127.0.0.1:{self.port}"]\n'
            f"max_expires = 3600\nudp_workers = {H.WORKERS}\n"
            f'[ctl]\nlisten = "http://{self.http}"\n'
            f'[log]\nlevel = "info"\n')
        env = dict(os.environ)
        env["TOKIO_WORKER_THREADS"] = str(H.WORKERS)
        env.pop("RUST_LOG", None)
        self.proc = H.start([H.KAMRS, "--config", str(cfg)], name, env=env)
        out = H.WORK / f"{name}.out"
        deadline = time.time() + 60
        while not re.search(r"^ready$", out.read_text(), re.M):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"kamrs did not start: {(H.WORK / (name + '.err')).read_text()[-2000:]}")
            time.sleep(0.01)
        self.target = f"127.0.0.1:{self.port}"


def record_pid(p):
    with open(H.WORK / "pids", "a") as f:
        f.write(f"{p.pid} {H.start_time(p.pid)}\n")


class Watchers:
    """WATCHERS `kamrsctl --json ul.watch`, their output thrown away."""

    def __init__(self, kr, n, aor=None):
        self.procs = []
        for _ in range(n):
            p = subprocess.Popen(
                [H.KAMRSCTL, "--ctl", f"http://{kr.http}", "--json", "ul.watch"]
                + ([aor] if aor else []),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            record_pid(p)
            self.procs.append(p)

    def cpu_ticks(self):
        return H.cpu_ticks([p.pid for p in self.procs])

    def stop(self):
        """Stops them; returns how many had ended on their own (exit 4:
        cut off for lagging) before the stop."""
        ended = [p.poll() for p in self.procs]
        for p in self.procs:
            H.stop(p, signal.SIGTERM, grace=5)
        return {"lagged": sum(1 for r in ended if r == 4),
                "ended_otherwise": sum(1 for r in ended if r not in (None, 4))}


class Scraper(threading.Thread):
    """GET /metrics every SCRAPE_SECS until stopped; counts the scrapes."""

    def __init__(self, kr):
        super().__init__(daemon=True)
        self.url = f"http://{kr.http}/metrics"
        self.halt = threading.Event()
        self.ok = 0
        self.failed = 0
        self.bytes = 0

    def run(self):
        while not self.halt.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    self.bytes = len(r.read())
                    self.ok += 1
            except OSError:
                self.failed += 1
            self.halt.wait(SCRAPE_SECS)

    def stop(self):
        self.halt.set()
        self.join(10)


def step(kr, sipp_port, mode, cseq, rnd):
    watchers = scraper = None
    if mode != "baseline":
        # filtered: each watches one AoR the load never touches, so the
        # figure is what events cost the registrar itself, not shipping
        # every one of them to ten readers.
        watchers = Watchers(kr, WATCHERS, aor="nobody" if mode == "filtered" else None)
        scraper = Scraper(kr)
        scraper.start()
        # Let every watcher connect and subscribe before the load starts.
        time.sleep(1.5)
    w0 = watchers.cpu_ticks() if watchers else 0
    row = H.measured_step(kr, H.SCEN_REG, "p", RATE, RATE * STEP_SECS, cseq, sipp_port,
                          f"{mode}-{rnd}", STEP_SECS, probe=False)
    row["mode"] = mode
    row["subscribers"] = WATCHERS if watchers else 0
    row["round"] = rnd
    if watchers:
        row["watchers_cpu_s"] = (watchers.cpu_ticks() - w0) / H.CLK_TCK
        scraper.stop()
        row["scrapes"] = {"ok": scraper.ok, "failed": scraper.failed, "bytes": scraper.bytes}
        row["watchers"] = watchers.stop()
    H.log(f"  round {rnd} {mode:9}: {row['achieved']:8.0f}/s ok={row['ok']} "
          f"retr={row['retrans']} cpu={H.fmt_f(row['cpu_us_per_reg'], 2)} us/REGISTER"
          + (f" watchers_cpu={row['watchers_cpu_s']:.2f}s lagged={row['watchers']['lagged']}"
             f" scrapes={row['scrapes']['ok']}" if watchers else ""))
    return row


def main():
    kr = ObservedKamrs("kamrs")
    sipp_port = H.free_port()
    pop = RATE * STEP_SECS
    H.log(f"prefill: {pop:,} AoRs at {H.PREFILL_RATE}/s")
    pre = H.Sipp(kr, H.SCEN_REG, "p", H.PREFILL_RATE, pop, 1, sipp_port, "prefill",
                 timeout_s=pop / H.PREFILL_RATE * 3 + 30).wait()
    H.log(f"  {pre['ok']:,}/{pre['calls']:,} ok")
    rows = []
    cseq = 2
    for rnd in range(ROUNDS):
        order = MODES if rnd % 2 == 0 else MODES[::-1]
        for mode in order:
            rows.append(step(kr, sipp_port, mode, cseq, rnd))
            cseq += 1
            time.sleep(0.5)
    H.stop(kr.proc)
    ratios = {m: [] for m in MODES if m != "baseline"}
    for rnd in range(ROUNDS):
        by = {r["mode"]: r for r in rows if r["round"] == rnd}
        b = by["baseline"]["cpu_us_per_reg"]
        for m in ratios:
            o = by[m]["cpu_us_per_reg"]
            if b and o:
                ratios[m].append(o / b)
    result = {
        "config": {"rate": RATE, "step_secs": STEP_SECS, "rounds": ROUNDS,
                   "watchers": WATCHERS, "scrape_secs": SCRAPE_SECS, "workers": H.WORKERS},
        "machine": H.machine(),
        "date": H.utc(time.time()),
        "steps": rows,
        "ratios": ratios,
        "median_ratio": {m: statistics.median(v) for m, v in ratios.items() if v},
    }
    (OUT_DIR / "observe-results.json").write_text(json.dumps(result, indent=1))
    write_report(result)
    return 0


def write_report(r):
    c = r["config"]
    lines = ["## Watching and scraping", ""]
    lines.append(
        f"`bench/observe-bench.sh`, {r['date']}: one kamrs (release, {c['workers']} workers), "
        f"a refresh load of {c['rate']:,} REGISTER/s for {c['step_secs']} s per step; "
        f"*baseline*: nobody watching; *observed*: {c['watchers']} `kamrsctl --json ul.watch` "
        f"(every event, no AoR filter) and `GET /metrics` every {c['scrape_secs']} s; "
        f"*filtered*: the same {c['watchers']} watching one AoR the load never touches "
        f"(`ul.watch nobody`) and the same scrapes. "
        f"{c['rounds']} rounds, the order alternating. CPU is kamrs's own (utime+stime, /proc) "
        f"per answered REGISTER; the watchers' CPU is theirs.")
    lines.append("")
    lines.append("| round | mode | achieved/s | retrans | kamrs CPU µs/REGISTER | watchers' CPU s | watchers cut off (lagged) | scrapes |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for s in r["steps"]:
        lines.append(
            f"| {s['round']} | {s['mode']} | {s['achieved']:,.0f} | {s['retrans']} | "
            f"{H.fmt_f(s['cpu_us_per_reg'], 2)} | {s.get('watchers_cpu_s', 0):.2f} | "
            f"{s.get('watchers', {}).get('lagged', '-')} | {s.get('scrapes', {}).get('ok', '-')} |")
    lines.append("")
    for mode, m in r["median_ratio"].items():
        pct = (m - 1) * 100
        verdict = "met" if pct <= GOAL_PCT else "missed"
        lines.append(
            f"- {mode} / baseline CPU per REGISTER, per round: "
            + ", ".join(f"{x:.3f}" for x in r["ratios"][mode])
            + f"; median {m:.3f} ({pct:+.1f} %): goal of at most +{GOAL_PCT:.0f} % **{verdict}**.")
    lines.append("")
    H.replace_section(OUT_DIR / "RESULTS.md", "## Watching and scraping", "\n".join(lines))


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        H.stop_all()
