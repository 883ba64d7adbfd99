#!/usr/bin/python3
"""SIP over TLS, kamrs vs Kamailio 5.6's tls module, side by side in one
run. Started by bench/tls-bench.sh (which installs, builds and documents
the knobs); uses bench/harness.py's helpers (process start/stop and pid
list, free ports, PSS and CPU of a process tree from /proc).

Both servers get the same ECDSA P-256 certificate, TLS 1.2 and 1.3.
Kamailio runs its best memory configuration, not its defaults:
`ssl_release_buffers = 1` (OpenSSL frees idle read/write buffers) and
`ssl_freelist_max_len = 0`; with one TCP worker (KAM_TCP_CHILDREN), the
only count at which Debian's 5.6.3 with OpenSSL 3 survives concurrent
handshakes (kamailio/kamailio#3791). kamrs has WORKERS tokio worker
threads. Handshake capacity is therefore compared as server CPU per
handshake (handshakes per CPU-second), which does not depend on how many
cores each may use; the raw rate is reported beside it.

Per round, for each system (order alternating between rounds):
  memory: a fresh start; its PSS (all processes, shared memory counted
    once) once idle; bench/tls-load holds STEPS idle registered TLS
    connections from SOURCES addresses of 127.77.0.0/16 (each a full
    handshake and a REGISTER answered 200); after each step, once the PSS
    has settled, (PSS - idle PSS) / connections is the memory per idle
    connection;
  handshakes: a fresh start; CONCURRENCY clients each connect, complete a
    full handshake (no resumption) and close, for HS_SECS; the handshakes
    per second, and the server's CPU time (utime+stime, /proc) per
    handshake, which is the rate one core sustains and does not depend on
    how the two cores are shared with the load generator.
Writes OUT_DIR/tls-results.json and the section "## TLS, both systems" of
OUT_DIR/RESULTS.md.
"""

import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as H  # noqa: E402

LOAD = os.environ["LOAD_BIN"]
STEPS = [int(x) for x in os.environ.get("STEPS", "10000,50000").split(",")]
SOURCES = H.env_int("SOURCES", 200)
CONCURRENCY = H.env_int("CONCURRENCY", 64)
HOLD_CONCURRENCY = H.env_int("HOLD_CONCURRENCY", 256)
HS_SECS = H.env_int("HS_SECS", 20)
ROUNDS = H.env_int("ROUNDS", 2)
SYSTEMS = os.environ.get("SYSTEMS", "kamailio kamrs").split()
NOFILE = H.env_int("NOFILE", 200000)
KAM_SHM_MB = H.env_int("KAM_TLS_SHM_MB", 8192)
# Debian's Kamailio 5.6.3 with OpenSSL 3 corrupts its shared memory and
# aborts within seconds of concurrent TLS handshakes with more than one TCP
# worker (kamailio/kamailio#3791; the fix, `tls_threads_mode`, came in a
# later release): one TCP worker is the configuration that works.
KAM_TCP_CHILDREN = H.env_int("KAM_TCP_CHILDREN", 1)
WORKERS = H.WORKERS
WORK = H.WORK
OUT_DIR = H.OUT_DIR
log = H.log
MAXCONN = max(STEPS) + 1000

KAMAILIO_TLS_CFG = """#!KAMAILIO
# Written by bench/tls.py. The registrar tutorial's routing over TLS.
debug=1
log_stderror=yes
fork=yes
children={children}
tcp_children={tcp_children}
auto_aliases=no
enable_tls=yes
listen=udp:127.0.0.1:{port}
listen=tls:127.0.0.1:{tls_port}
tcp_max_connections={maxconn}
tls_max_connections={maxconn}
tcp_connection_lifetime=7200
open_files_limit={nofile}

mpath="{mpath}"
loadmodule "jsonrpcs.so"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "tls.so"

modparam("jsonrpcs", "transport", 2)
modparam("jsonrpcs", "fifo_name", "{fifo}")
modparam("jsonrpcs", "fifo_reply_dir", "{dir}/")
modparam("usrloc", "db_mode", 0)
modparam("tls", "certificate", "{cert}")
modparam("tls", "private_key", "{key}")
modparam("tls", "tls_method", "TLSv1.2+")
modparam("tls", "connection_timeout", 7200)
modparam("tls", "ssl_release_buffers", 1)
modparam("tls", "ssl_freelist_max_len", 0)
{extra}

request_route {{
    if (is_method("REGISTER")) {{
        save("location");
        exit;
    }}
    sl_send_reply("501", "Not Implemented");
}}
"""


def certificate():
    """One ECDSA P-256 certificate for both servers."""
    cert, key = WORK / "server.crt", WORK / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True)
    return cert, key


class KamrsTls(H.System):
    label = "kamrs"
    key = "kamrs"

    def __init__(self, name, cert, key):
        self.dir = WORK / name
        self.dir.mkdir(parents=True, exist_ok=True)
        port = H.free_both_port()
        self.tls_port = H.free_port(H.socket.SOCK_STREAM)
        cfg = self.dir / "kamrs.toml"
        cfg.write_text(
            f'listen = ["udp:127.0.0.1:{port}", "tls:127.0.0.1:{self.tls_port}"]\n'
            f"max_expires = 3600\nmax_bindings = {MAXCONN * 2}\n"
            f"tcp_max_connections = {MAXCONN}\ntcp_connection_lifetime = 7200\n"
            f"udp_workers = 1\n"
            f'[ctl]\nlisten = "unix:{self.dir}/ctl.sock"\n'
            f'[log]\nlevel = "warn"\n'
            f'[tls]\ncertificate = "{cert}"\nprivate_key = "{key}"\n')
        env = dict(os.environ)
        env["TOKIO_WORKER_THREADS"] = str(WORKERS)
        env.pop("RUST_LOG", None)
        self.proc = H.start([H.KAMRS, "--config", str(cfg)], name, env=env)
        out = WORK / f"{name}.out"
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kamrs exited: {(WORK / (name + '.err')).read_text()[-2000:]}")
            if "ready" in out.read_text().split():
                return
            time.sleep(0.02)
        raise RuntimeError("kamrs not ready")


def kamailio(name, cert, key):
    tls_port = H.free_port(H.socket.SOCK_STREAM)
    old = H.KAM_SHM_MB
    H.KAM_SHM_MB = KAM_SHM_MB
    try:
        k = H.Kamailio(name, template=KAMAILIO_TLS_CFG, tls_port=tls_port, maxconn=MAXCONN,
                       tcp_children=KAM_TCP_CHILDREN,
                       nofile=resource.getrlimit(resource.RLIMIT_NOFILE)[0], cert=cert, key=key)
    finally:
        H.KAM_SHM_MB = old
    k.tls_port = tls_port
    return k


def start(system, name, cert, key):
    return kamailio(name, cert, key) if system == "kamailio" else KamrsTls(name, cert, key)


def settled_pss(s, secs=3.0, tries=10):
    """The PSS once two readings SECS apart differ by under 0.5 %."""
    prev = s.pss_kb()
    for _ in range(tries):
        time.sleep(secs)
        cur = s.pss_kb()
        if abs(cur - prev) <= prev * 0.005:
            return cur
        prev = cur
    return prev


def memory_run(system, rnd, cert, key):
    name = f"{system}-mem-{rnd}"
    s = start(system, name, cert, key)
    try:
        idle = settled_pss(s, 1.0)
        load = subprocess.Popen(
            [LOAD, "hold", "--server", f"127.0.0.1:{s.tls_port}",
             "--steps", ",".join(map(str, STEPS)), "--sources", str(SOURCES),
             "--concurrency", str(HOLD_CONCURRENCY), "--prefix", f"m{rnd}x"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(WORK / f"{name}-load.err", "wb"),
            text=True)
        with open(WORK / "pids", "a") as f:
            f.write(f"{load.pid} {H.start_time(load.pid)}\n")
        out = {"idle_pss_kb": idle, "steps": []}
        for step in STEPS:
            line = load.stdout.readline().split()
            if not line or line[0] != "held":
                raise RuntimeError(f"{system}: load generator said {line}")
            held, failed, secs = int(line[1]), int(line[3]), float(line[5])
            pss = settled_pss(s)
            per_conn = (pss - idle) * 1024 / max(held, 1)
            log(f"{system} round {rnd}: {held} connections held ({failed} failed, {secs:.1f} s): "
                f"PSS {pss/1024:.1f} MiB, {per_conn/1024:.1f} KiB per connection")
            out["steps"].append({"target": step, "held": held, "failed": failed,
                                 "open_secs": secs, "pss_kb": pss,
                                 "bytes_per_conn": per_conn})
            load.stdin.write("next\n")
            load.stdin.flush()
        load.stdin.close()
        load.wait(timeout=120)
        return out
    finally:
        H.stop(s.proc)


def handshake_run(system, rnd, cert, key):
    name = f"{system}-hs-{rnd}"
    s = start(system, name, cert, key)
    try:
        time.sleep(1)
        cpu0 = s.cpu()
        r = subprocess.run(
            [LOAD, "handshake", "--server", f"127.0.0.1:{s.tls_port}", "--secs", str(HS_SECS),
             "--sources", str(SOURCES), "--concurrency", str(CONCURRENCY)],
            capture_output=True, text=True, timeout=HS_SECS + 120)
        cpu1 = s.cpu()
        res = json.loads(r.stdout.strip().splitlines()[-1])
        cpu_s = (cpu1 - cpu0) / H.CLK_TCK
        res["server_cpu_s"] = cpu_s
        res["cpu_us_per_handshake"] = cpu_s * 1e6 / max(res["handshakes"], 1)
        log(f"{system} round {rnd}: {res['per_sec']:.0f} handshakes/s ({res['failed']} failed), "
            f"{res['cpu_us_per_handshake']:.0f} µs server CPU each")
        return res
    finally:
        H.stop(s.proc)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2 if n else float("nan")


def report(res):
    runs = res["runs"]
    lines = ["## TLS, both systems", "",
             f"bench/tls-bench.sh, {res['date']}: {res['machine']}; "
             f"kamrs {WORKERS} worker threads, Kamailio {KAM_TCP_CHILDREN} TCP worker "
             "(more abort with OpenSSL 3, kamailio#3791); "
             f"{ROUNDS} rounds, order alternating; "
             "medians of the rounds. Kamailio 5.6 with `ssl_release_buffers = 1`, "
             "`ssl_freelist_max_len = 0`; kamrs with rustls (ring). Same ECDSA P-256 "
             "certificate, TLS 1.3 negotiated.", "",
             "| | " + " | ".join(SYSTEMS) + " | kamrs / Kamailio | goal |",
             "|---|" + "---|" * len(SYSTEMS) + "---|---|"]

    def med(system, f):
        return median([f(r) for r in runs[system]])

    for i, step in enumerate(STEPS):
        vals = {s: med(s, lambda r: r["memory"]["steps"][i]["bytes_per_conn"]) for s in SYSTEMS}
        ratio = vals.get("kamrs", 0) / vals["kamailio"] if vals.get("kamailio") else float("nan")
        lines.append(f"| memory per idle registered connection, {step:,} connections (KiB) | "
                     + " | ".join(f"{vals[s]/1024:.1f}" for s in SYSTEMS)
                     + f" | {ratio:.2f}× | ≤ 0.5× {'met' if ratio <= 0.5 else 'missed'} |")
    rate = {s: med(s, lambda r: r["handshake"]["per_sec"]) for s in SYSTEMS}
    cpu = {s: med(s, lambda r: r["handshake"]["cpu_us_per_handshake"]) for s in SYSTEMS}
    if "kamailio" in rate and "kamrs" in rate:
        rr = rate["kamrs"] / rate["kamailio"]
        cr = cpu["kamailio"] / cpu["kamrs"]
    else:
        rr = cr = float("nan")
    lines.append("| full handshakes per second (load generator on the other core) | "
                 + " | ".join(f"{rate[s]:.0f}" for s in SYSTEMS)
                 + f" | {rr:.2f}× | ≥ 1× {'met' if rr >= 1 else 'missed'} |")
    lines.append("| server CPU per handshake (µs), as handshakes per CPU-second | "
                 + " | ".join(f"{cpu[s]:.0f} ({1e6/cpu[s]:.0f}/s)" for s in SYSTEMS)
                 + f" | {cr:.2f}× the rate | ≥ 1× {'met' if cr >= 1 else 'missed'} |")
    if res.get("fd_limit"):
        fd = res["fd_limit"]
        lines += ["", f"This machine's descriptor limit is {fd['hard_limit']} per process and "
                  "cannot be raised (no CAP_SYS_RESOURCE), so the largest step was "
                  f"{max(fd['steps_capped_to']):,} connections instead of the "
                  f"{max(int(x) for x in os.environ.get('STEPS', '10000,50000').split(',')):,} asked for."]
    lines += ["", "Raw numbers: bench/tls-results.json.", ""]
    return "\n".join(lines)


def write_results(res):
    (OUT_DIR / "tls-results.json").write_text(json.dumps(res, indent=1) + "\n")
    section = report(res)
    H.replace_section(OUT_DIR / "RESULTS.md", "## TLS, both systems", section)
    print(section)


def raise_nofile():
    """Raises the descriptor limit to NOFILE (the servers and the load
    generator inherit it). Where the hard limit cannot be raised (no
    CAP_SYS_RESOURCE, as in some containers), steps above what it allows
    are lowered to it, and the report says so."""
    global STEPS, MAXCONN
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(NOFILE, soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
        return None
    except (ValueError, OSError) as e:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        cap = hard - 1500
        capped = sorted({min(s, cap) for s in STEPS})
        log(f"cannot raise the descriptor limit to {want} ({e}): the hard limit is {hard}, "
            f"so the steps {STEPS} become {capped}")
        STEPS = capped
        MAXCONN = max(STEPS) + 1000
        return {"hard_limit": hard, "asked": want, "steps_capped_to": capped}


def main():
    fd_cap = raise_nofile()
    cert, key = certificate()
    res = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": f"{os.cpu_count()} CPUs",
           "config": {"steps": STEPS, "sources": SOURCES, "concurrency": CONCURRENCY,
                      "hs_secs": HS_SECS, "rounds": ROUNDS, "workers": WORKERS},
           "runs": {s: [] for s in SYSTEMS}}
    if fd_cap:
        res["fd_limit"] = fd_cap
    try:
        for rnd in range(ROUNDS):
            order = SYSTEMS if rnd % 2 == 0 else list(reversed(SYSTEMS))
            for system in order:
                mem = memory_run(system, rnd, cert, key)
                hs = handshake_run(system, rnd, cert, key)
                res["runs"][system].append({"memory": mem, "handshake": hs})
    finally:
        H.stop_all()
    write_results(res)


if __name__ == "__main__":
    main()
