#!/usr/bin/python3
"""NAT keepalive, kamrs vs Kamailio 5.6. Started by bench/keepalive-bench.sh
(which builds the binaries and documents the knobs); uses bench/harness.py's
helpers (process start/stop and pid list, free ports, CPU of a process tree
from /proc, Kamailio with a generated config and its JSON-RPC FIFO, the
latency probe).

For each system, twice (keepalive off, then on; a fresh start each time,
same population): start it, let bench/probe's kamrs-ka-responder register
POPULATION NATed bindings and answer the pings, wait SETTLE_SECS (off) or
KA_SETTLE_SECS (on), then measure for MEASURE_SECS, starting on a whole
second: the registrar's CPU (utime+stime of all its processes/threads),
the OPTIONS the responder received in each wall-clock second, the probe's
REGISTER latency; afterwards what the registrar says about its pings
(kamrs: usrloc:ka_* statistics; Kamailio: KA-Roundtrip in ul.lookup).
Writes OUT_DIR/keepalive-results.json and the section "## NAT keepalive,
both systems" of OUT_DIR/RESULTS.md.
"""

import datetime
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__" and sys.argv[1:2] == ["--report"]:
    # `keepalive.py --report FILE.json`: rewrites the RESULTS.md section from
    # a saved run (its knobs, not the environment's), measuring nothing.
    _cfg = json.loads(Path(sys.argv[2]).read_text())["config"]
    for _k, _v in (("POPULATION", "population"), ("KA_INTERVAL", "ka_interval"),
                   ("MEASURE_SECS", "measure_secs"), ("REG_RATE", "reg_rate"),
                   ("RESP_SOCKETS", "resp_sockets"), ("SETTLE_SECS", "settle_secs"),
                   ("KA_SETTLE_SECS", "ka_settle_secs"), ("WORKERS", "workers"),
                   ("PROBE_INTERVAL_US", "probe_interval_us"), ("KAM_MAXBUFFER", "kam_maxbuffer")):
        if _v in _cfg:
            os.environ[_k] = str(_cfg[_v])
    os.environ["SYSTEMS"] = " ".join(_cfg.get("systems", ["kamailio", "kamrs"]))
    os.environ["KA_RANDOMIZE"] = "1" if _cfg.get("ka_randomize", True) else "0"
    for _k in ("BENCH_WORK", "KAMRS_BIN", "KAMRSCTL_BIN", "PROBE_BIN", "RESPONDER_BIN"):
        os.environ.setdefault(_k, "/nonexistent")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as H  # noqa: E402  (reads BENCH_WORK, KAMRS_BIN, ... at import)

RESPONDER = os.environ["RESPONDER_BIN"]
POPULATION = H.env_int("POPULATION", 100000)
KA_INTERVAL = H.env_int("KA_INTERVAL", 30)
MEASURE_SECS = H.env_int("MEASURE_SECS", 3 * KA_INTERVAL)
REG_RATE = H.env_int("REG_RATE", 10000)
RESP_SOCKETS = H.env_int("RESP_SOCKETS", 10)
SETTLE_SECS = H.env_int("SETTLE_SECS", 3)
KA_SETTLE_SECS = H.env_int("KA_SETTLE_SECS", KA_INTERVAL)
SYSTEMS = os.environ.get("SYSTEMS", "kamailio kamrs").split()
# Kamailio's UDP receive buffer ceiling (core `maxbuffer`, default 256 KiB):
# the size kamrs asks for its sockets (4 MiB), so neither drops the burst of
# 200 OKs to Kamailio's all-at-once pings for want of a buffer.
KAM_MAXBUFFER = H.env_int("KAM_MAXBUFFER", 4 * 1024 * 1024)
# perf record on kamrs after its keepalive-on window (0: none).
PROFILE_SECS = H.env_int("KA_PROFILE_SECS", 10)
# Before each window, wait (at most QUIET_WAIT_SECS) for a second in which
# the rest of the machine used under QUIET_MAX_CPU of a CPU: this bench runs
# on a shared machine, and other work there is noise in both CPU and latency.
QUIET_WAIT_SECS = H.env_int("QUIET_WAIT_SECS", 120)
QUIET_MAX_CPU = float(os.environ.get("QUIET_MAX_CPU", "0.15"))
# kamrs's ka_randomize (1: pings spread over the interval, the default; 0: all
# at the round's start, like Kamailio: how much of the cost is the spreading).
KA_RANDOMIZE = H.env_int("KA_RANDOMIZE", 1)
OUT_DIR = H.OUT_DIR
WORK = H.WORK
log = H.log

# Kamailio 5.6 as a keepalive registrar: usrloc in memory pinging NATed
# contacts from its own timer process every timer_interval; nathelper marks a
# REGISTER NATed (nat_uac_test 19: private Contact, Via != source, rport) and
# fix_nated_register() stores the source as `received`, where the pings go.
KAMAILIO_KA_CFG = """#!KAMAILIO
# Written by bench/keepalive.py (kamrs bench/keepalive-bench.sh).
debug=1
log_stderror=yes
fork=yes
children={children}
auto_aliases=no
disable_tcp=yes
listen=udp:127.0.0.1:{port}
maxbuffer={maxbuffer}

#!define FLB_NATB 6

mpath="{mpath}"
loadmodule "jsonrpcs.so"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "nathelper.so"

modparam("jsonrpcs", "transport", 2)
modparam("jsonrpcs", "fifo_name", "{fifo}")
modparam("jsonrpcs", "fifo_reply_dir", "{dir}/")
modparam("jsonrpcs", "pretty_format", 0)
modparam("usrloc", "db_mode", 0)
modparam("usrloc", "nat_bflag", FLB_NATB)
modparam("usrloc", "timer_interval", {ka_interval})
modparam("usrloc", "timer_procs", 1)
modparam("usrloc", "ka_mode", {ka_mode})
modparam("usrloc", "ka_from", "sip:keepalive@kamailio.bench")
modparam("usrloc", "ka_timeout", 0)
modparam("nathelper", "received_avp", "$avp(RECEIVED)")
modparam("nathelper", "natping_interval", 0)
modparam("registrar", "received_avp", "$avp(RECEIVED)")
{extra}

request_route {{
    if (is_method("REGISTER")) {{
        if (nat_uac_test("19")) {{
            setbflag(FLB_NATB);
            fix_nated_register();
        }}
        save("location");
        exit;
    }}
    if (is_method("ACK")) {{
        exit;
    }}
    sl_send_reply("501", "Not Implemented");
}}
"""


def kamrs_top(ka_mode):
    return (f"ka_mode = {ka_mode}\nka_interval = {KA_INTERVAL}\nka_randomize = {'true' if KA_RANDOMIZE else 'false'}\n"
            f'ka_method = "OPTIONS"\nka_from = "sip:keepalive@kamrs.bench"\nka_timeout = 0')


def start_system(key, ka_on, name):
    ka_mode = 2 if ka_on else 0
    if key == "kamailio":
        return H.Kamailio(name, template=KAMAILIO_KA_CFG, ka_interval=KA_INTERVAL,
                          ka_mode=ka_mode, maxbuffer=KAM_MAXBUFFER)
    return H.Kamrs(name, top=kamrs_top(ka_mode))


def kamrs_stats(kr):
    try:
        r = subprocess.run([H.KAMRSCTL, "--ctl", kr.ctl, "--json", "stats.get_statistics", "all"],
                           capture_output=True, text=True, timeout=20)
        data = json.loads(r.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError) as e:
        return {"error": str(e)}
    out = {}
    items = data if isinstance(data, list) else data.get("result", data)
    if isinstance(items, dict):
        items = [f"{k} = {v}" for k, v in items.items()]
    for item in items:
        if isinstance(item, str) and "=" in item:
            k, v = item.split("=", 1)
            try:
                out[k.strip()] = int(v.strip())
            except ValueError:
                pass
    return out


def kamrs_lookup(kr, aor):
    try:
        r = subprocess.run([H.KAMRSCTL, "--ctl", kr.ctl, "--json", "ul.lookup", aor],
                           capture_output=True, text=True, timeout=20)
        c = json.loads(r.stdout)["Contacts"][0]["Contact"]
        return {k: c.get(k) for k in ("Address", "Received", "Last-Keepalive", "KA-Roundtrip")}
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, IndexError) as e:
        return {"error": str(e)}


def kamailio_lookup(kam, aor):
    try:
        raw, _ = kam.rpc("ul.lookup", ["location", aor], timeout=20)
        r = json.loads(raw)["result"]
        c = r["Contacts"][0]["Contact"]
        return {k: c.get(k) for k in ("Address", "Received", "Last-Keepalive", "KA-Roundtrip")}
    except (RuntimeError, ValueError, KeyError, IndexError, TypeError) as e:
        return {"error": str(e)}


def read_status(path):
    out = {}
    try:
        for kv in Path(path).read_text().split():
            k, v = kv.split("=", 1)
            out[k] = v if k == "ports" else int(v)
    except (OSError, ValueError):
        pass
    return out


def read_counts(path):
    counts = {}
    try:
        for line in Path(path).read_text().splitlines():
            s, o, a = map(int, line.split())
            counts[s] = (o, a)
    except (OSError, ValueError):
        pass
    return counts


def busy_ticks():
    """Non-idle clock ticks of the whole machine (/proc/stat, all CPUs)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]  # minus idle, iowait


def tick_phase(samples, p99_us, tick_ms=20):
    """The probe's samples slower than p99_us by their phase in a tick of
    tick_ms (10 bins): the busiest bin's share (uniform: 0.10). kamrs pings
    each 20 ms tick's AoRs at once (keepalive/schedule.rs TICK); a tail made by those bursts piles up in
    one bin."""
    slow = [t for t, l in samples if l < 0 or l > p99_us]
    if not slow:
        return None
    bins = [0] * 10
    for t in slow:
        bins[int((t * 1000) % tick_ms * 10 // tick_ms)] += 1
    return {"slow": len(slow), "max_bin_share": max(bins) / len(slow), "bins": bins}


def wait_quiet(sysm, resp):
    """Waits (bounded) for a quiet second; returns the seconds waited."""
    t0 = time.time()
    while time.time() - t0 < QUIET_WAIT_SECS:
        ours = lambda: sysm.cpu() + H.cpu_ticks(H.proc_tree(resp.pid))  # noqa: E731
        b0, o0 = busy_ticks(), ours()
        time.sleep(1.0)
        other = ((busy_ticks() - b0) - (ours() - o0)) / H.CLK_TCK
        if other < QUIET_MAX_CPU:
            break
    return time.time() - t0


def ctx_switches(pids):
    """Voluntary and involuntary context switches of all the threads of pids."""
    total = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{pid}/task/{t}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            total += int(line.split()[1])
            except OSError:
                pass
    return total


def profile_kamrs(kr):
    """perf record (cpu-clock, DWARF call graphs) on kamrs for PROFILE_SECS
    with its keepalive running: OUT_DIR/profile-keepalive.txt."""
    if not PROFILE_SECS or not H.shutil.which("perf"):
        return {"skipped": True}
    data = WORK / "perf-ka.data"
    c0 = kr.cpu()
    perf = H.start(["perf", "record", "-e", "cpu-clock", "-F", str(H.PERF_FREQ), "--call-graph",
                    "dwarf,16384", "-p", str(kr.proc.pid), "-o", str(data)], "perf-ka")
    time.sleep(PROFILE_SECS)
    H.stop(perf, signal.SIGINT, grace=60)
    prof = {"secs": PROFILE_SECS, "cpu_s": (kr.cpu() - c0) / H.CLK_TCK}
    if not data.exists():
        prof["error"] = (WORK / "perf-ka.err").read_text()[-500:]
        return prof
    prof.update(H.analyse_perf(data))
    data.unlink(missing_ok=True)
    if not prof.get("error"):
        path = OUT_DIR / "profile-keepalive.txt"
        prof["rate"] = 0
        H.write_profile_text(prof, path)
        lines = path.read_text().splitlines()
        lines[0] = (f"# kamrs with its NAT keepalive on ({POPULATION:,} NATed bindings, ka_interval "
                    f"{KA_INTERVAL} s, ~{POPULATION / KA_INTERVAL:,.0f} pings/s answered, nothing "
                    f"else): perf record -e cpu-clock -F {H.PERF_FREQ} --call-graph dwarf for "
                    f"{PROFILE_SECS} s ({prof['samples']} samples, {prof['cpu_s']:.2f} s of kamrs "
                    "CPU; written by bench/keepalive-bench.sh)")
        path.write_text("\n".join(lines) + "\n")
    log(f"  perf: {prof.get('error') or str(prof.get('samples')) + ' samples'} -> profile-keepalive.txt")
    return {k: v for k, v in prof.items() if k in ("secs", "cpu_s", "samples", "kernel_pct",
                                                   "groups", "error", "flat")}


def port_drops(ports):
    """Datagrams dropped at these 127.0.0.1 UDP ports (/proc/net/udp)."""
    want = set(ports)
    total = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) in want:
                total += int(fields[-1])
    return total


def one_run(key, ka_on):
    """One fresh start of one system: register, settle, measure."""
    tag = f"{key}-{'on' if ka_on else 'off'}"
    log(f"{tag}: starting")
    sysm = start_system(key, ka_on, tag)
    status = WORK / f"{tag}.status"
    counts = WORK / f"{tag}.counts"
    stopf = WORK / f"{tag}.resp-stop"
    reg_timeout = POPULATION / REG_RATE * 4 + 60
    settle = KA_SETTLE_SECS if ka_on else SETTLE_SECS
    cap = int(reg_timeout + settle + MEASURE_SECS + 120)
    resp = H.start([RESPONDER, "--target", sysm.target, "--population", str(POPULATION),
                    "--sockets", str(RESP_SOCKETS), "--rate", str(REG_RATE),
                    "--expires", "3600", "--duration-s", str(cap), "--stop-file", str(stopf),
                    "--status", str(status), "--counts", str(counts)], f"{tag}-responder")
    row = {"system": key, "ka": ka_on, "population": POPULATION}
    probe = None
    try:
        t_reg = time.time()
        deadline = t_reg + reg_timeout
        st = {}
        while time.time() < deadline:
            st = read_status(status)
            if st.get("reg_done") == 1:
                break
            if resp.poll() is not None or not sysm.alive():
                raise RuntimeError(f"{tag}: responder or registrar exited while registering")
            time.sleep(0.2)
        row["register_secs"] = time.time() - t_reg
        row["registered"] = st.get("registered", 0)
        row["reg_failed"] = st.get("reg_failed", 0)
        log(f"  {tag}: {row['registered']:,}/{POPULATION:,} registered "
            f"({row['reg_failed']} failed) in {row['register_secs']:.1f}s")
        if st.get("reg_done") != 1:
            row["error"] = "registration did not finish in time"
        ports = [int(p) for p in str(st.get("ports", "")).split(",") if p]
        # Settle, then start the window on a whole second.
        time.sleep(settle)
        row["quiet_wait_secs"] = wait_quiet(sysm, resp)
        time.sleep(math.ceil(time.time()) - time.time())
        probe = H.Probe(sysm, tag, cap_s=MEASURE_SECS + 60, samples=True)
        s0 = kamrs_stats(sysm) if key == "kamrs" else {}
        rd0, pd0 = H.socket_drops(sysm.port), port_drops(ports)
        t0 = round(time.time())
        c0 = sysm.cpu()
        x0 = ctx_switches(sysm.pids())
        b0, r0 = busy_ticks(), H.cpu_ticks(H.proc_tree(resp.pid)) + H.cpu_ticks([probe.proc.pid])
        while time.time() < t0 + MEASURE_SECS:
            if not sysm.alive():
                raise RuntimeError(f"{tag}: {sysm.label} died during the window")
            time.sleep(min(0.5, max(0.0, t0 + MEASURE_SECS - time.time())))
        c1 = sysm.cpu()
        x1 = ctx_switches(sysm.pids())
        b1, r1 = busy_ticks(), H.cpu_ticks(H.proc_tree(resp.pid)) + H.cpu_ticks([probe.proc.pid])
        t1 = time.time()
        pres = probe.finish()
        psamples = probe.samples()
        probe = None
        s1 = kamrs_stats(sysm) if key == "kamrs" else {}
        rd1, pd1 = H.socket_drops(sysm.port), port_drops(ports)
        time.sleep(2.2)  # the responder's counts file catches up
        cnt = read_counts(counts)
        per_sec = [cnt.get(s, (0, 0))[0] for s in range(t0, t0 + MEASURE_SECS)]
        ans_sec = [cnt.get(s, (0, 0))[1] for s in range(t0, t0 + MEASURE_SECS)]
        pings = sum(per_sec)
        mean = pings / MEASURE_SECS if MEASURE_SECS else 0
        row.update({
            "window_start": t0, "window_secs": t1 - t0,
            "cpu_s": (c1 - c0) / H.CLK_TCK,
            "ctx_switches": x1 - x0,
            # Everything else the machine ran meanwhile (other work on a shared
            # machine: noise): all CPUs' busy time minus registrar, phones, probe.
            "phones_probe_cpu_s": (r1 - r0) / H.CLK_TCK,
            "other_cpu_s": ((b1 - b0) - (c1 - c0) - (r1 - r0)) / H.CLK_TCK,
            "loadavg_end": open("/proc/loadavg").read().split()[:3],
            "probe_tick_phase": tick_phase(psamples, pres.get("p99_us") or 0),
            "pings": pings, "answered": sum(ans_sec),
            "per_sec": per_sec,
            "per_sec_max": max(per_sec) if per_sec else 0,
            "per_sec_mean": mean,
            "spread": (max(per_sec) / mean) if mean else None,
            "seconds_with_pings": sum(1 for x in per_sec if x),
            "probe": pres,
            "registrar_drops": rd1 - rd0, "responder_drops": pd1 - pd0,
            "pss_kb": sysm.pss_kb(),
            "responder_total": read_status(status),
        })
        if key == "kamrs":
            names = ("usrloc:ka_sent", "usrloc:ka_answered", "usrloc:ka_timeouts",
                     "usrloc:ka_ignored", "core:flow_queue_full", "core:flow_failed")
            row["kamrs_stats"] = {n: (s1.get(n, 0) - s0.get(n, 0))
                                  if n in s1 or n in s0 else None for n in names}
            if "error" in s1:
                row["kamrs_stats"]["error"] = s1["error"]
            row["sample_binding"] = kamrs_lookup(sysm, "ka1")
            if ka_on:
                row["profile"] = profile_kamrs(sysm)
        else:
            row["sample_binding"] = kamailio_lookup(sysm, "ka1")
        log(f"  {tag}: quiet wait {row['quiet_wait_secs']:.0f}s, cpu {row['cpu_s']:.2f}s other {row['other_cpu_s']:.2f}s pings {pings:,} answered {row['answered']:,} "
            f"max/s {row['per_sec_max']:,} mean/s {mean:,.0f} probe p99 {pres.get('p99_us')}us "
            f"drops reg {row['registrar_drops']} resp {row['responder_drops']} "
            f"{row.get('kamrs_stats', '')} sample {row['sample_binding']}")
    finally:
        if probe is not None:
            probe.finish()
        stopf.touch()
        try:
            resp.wait(timeout=10)
        except subprocess.TimeoutExpired:
            H.stop(resp)
        H.stop(sysm.proc)
    return row


def summarize(runs):
    out = {}
    for key in SYSTEMS:
        on, off = runs.get((key, True)), runs.get((key, False))
        if not on or not off or "cpu_s" not in on or "cpu_s" not in off:
            continue
        cost = on["cpu_s"] - off["cpu_s"]
        p_on = (on.get("probe") or {}).get("p99_us")
        p_off = (off.get("probe") or {}).get("p99_us")
        out[key] = {
            "pings": on["pings"], "answered": on["answered"],
            "cpu_on_s": on["cpu_s"], "cpu_off_s": off["cpu_s"], "cost_s": cost,
            "ctx_on": on.get("ctx_switches"), "ctx_off": off.get("ctx_switches"),
            "drops_on": on.get("registrar_drops"), "resp_drops_on": on.get("responder_drops"),
            "other_cpu_on_s": on.get("other_cpu_s"), "other_cpu_off_s": off.get("other_cpu_s"),
            "tick_phase_on": (on.get("probe_tick_phase") or {}).get("max_bin_share"),
            "tick_phase_off": (off.get("probe_tick_phase") or {}).get("max_bin_share"),
            "cost_ms_per_1000": cost * 1e6 / on["pings"] if on["pings"] else None,
            "spread": on["spread"], "per_sec_max": on["per_sec_max"],
            "per_sec_mean": on["per_sec_mean"],
            "probe_p99_on_us": p_on, "probe_p99_off_us": p_off,
            "probe_p50_on_us": (on.get("probe") or {}).get("p50_us"),
            "probe_p50_off_us": (off.get("probe") or {}).get("p50_us"),
            "probe_p99_ratio": (p_on / p_off) if p_on and p_off else None,
            "probe_p999_on_us": (on.get("probe") or {}).get("p999_us"),
            "probe_p999_off_us": (off.get("probe") or {}).get("p999_us"),
            "seconds_with_pings": on.get("seconds_with_pings"),
        }
    k, m = out.get("kamrs"), out.get("kamailio")
    if k and m and k["cost_ms_per_1000"] and m["cost_ms_per_1000"]:
        out["cost_ratio_per_ping"] = k["cost_ms_per_1000"] / m["cost_ms_per_1000"]
        out["cost_ratio_window"] = k["cost_s"] / m["cost_s"] if m["cost_s"] else None
    return out


def n(x, nd=0):
    if x is None:
        return "-"
    return f"{x:,.{nd}f}"


def goal(ok):
    return "met" if ok else "missed"


def section(res):
    s = res["summary"]
    k, m = s.get("kamrs", {}), s.get("kamailio", {})
    L = []
    a = L.append
    a("## NAT keepalive, both systems")
    a("")
    a(f"{res['date']}, {res['machine'].get('nproc')} CPUs. {POPULATION:,} NATed UDP bindings per "
      f"system (Contact `sip:kaN@10.x.y.z:5060` registered from 127.0.0.1, spread over "
      f"{RESP_SOCKETS} source sockets), pinged every {KA_INTERVAL} s (`ka_mode=2`); each system "
      f"measured for {MEASURE_SECS} s with keepalive on and, on a fresh start with the same "
      f"population, {MEASURE_SECS} s with it off (`ka_mode=0`). Cost = CPU(on) − CPU(off) of all "
      "the registrar's processes/threads; pings = OPTIONS the phones received in the window.")
    a("")
    a("| | Kamailio 5.6 | kamrs |")
    a("|---|---:|---:|")
    a(f"| pings in the window (answered) | {n(m.get('pings'))} ({n(m.get('answered'))}) "
      f"| {n(k.get('pings'))} ({n(k.get('answered'))}) |")
    a(f"| CPU, keepalive on / off (s) | {n(m.get('cpu_on_s'), 2)} / {n(m.get('cpu_off_s'), 2)} "
      f"| {n(k.get('cpu_on_s'), 2)} / {n(k.get('cpu_off_s'), 2)} |")
    a(f"| keepalive cost (CPU s in {MEASURE_SECS} s) | {n(m.get('cost_s'), 2)} | {n(k.get('cost_s'), 2)} |")
    a(f"| CPU ms per 1000 pings | {n(m.get('cost_ms_per_1000'), 1)} | {n(k.get('cost_ms_per_1000'), 1)} |")
    a(f"| context switches, keepalive on / off | {n(m.get('ctx_on'))} / {n(m.get('ctx_off'))} "
      f"| {n(k.get('ctx_on'))} / {n(k.get('ctx_off'))} |")
    a(f"| datagrams dropped at the registrar's / phones' sockets (on) | {n(m.get('drops_on'))} / "
      f"{n(m.get('resp_drops_on'))} | {n(k.get('drops_on'))} / {n(k.get('resp_drops_on'))} |")
    a(f"| other CPU on the machine meanwhile, on / off (s; noise) | {n(m.get('other_cpu_on_s'), 2)} / "
      f"{n(m.get('other_cpu_off_s'), 2)} | {n(k.get('other_cpu_on_s'), 2)} / {n(k.get('other_cpu_off_s'), 2)} |")
    a(f"| pings per second: max / mean (spread) | {n(m.get('per_sec_max'))} / "
      f"{n(m.get('per_sec_mean'))} ({n(m.get('spread'), 1)}) | {n(k.get('per_sec_max'))} / "
      f"{n(k.get('per_sec_mean'))} ({n(k.get('spread'), 1)}) |")
    a(f"| probe REGISTER p50, keepalive on / off (µs) | {n(m.get('probe_p50_on_us'))} / "
      f"{n(m.get('probe_p50_off_us'))} | {n(k.get('probe_p50_on_us'))} / {n(k.get('probe_p50_off_us'))} |")
    a(f"| probe REGISTER p99, keepalive on / off (µs) | {n(m.get('probe_p99_on_us'))} / "
      f"{n(m.get('probe_p99_off_us'))} ({n(m.get('probe_p99_ratio'), 2)}×) | "
      f"{n(k.get('probe_p99_on_us'))} / {n(k.get('probe_p99_off_us'))} "
      f"({n(k.get('probe_p99_ratio'), 2)}×) |")
    a(f"| probe REGISTER p99.9, keepalive on / off (µs) | {n(m.get('probe_p999_on_us'))} / "
      f"{n(m.get('probe_p999_off_us'))} | {n(k.get('probe_p999_on_us'))} / {n(k.get('probe_p999_off_us'))} |")
    a(f"| seconds of the window with pings | {n(m.get('seconds_with_pings'))} of {MEASURE_SECS} "
      f"| {n(k.get('seconds_with_pings'))} of {MEASURE_SECS} |")
    a("")
    a("Other CPU is the machine's busy time (/proc/stat) minus the registrar's, the phones' and the "
      "probe's (per-process accounting): approximate, ±1–2 s over a window; a large positive value "
      "means other work shared the machine.")
    a("")
    noisy = [f"{key}-{'on' if on else 'off'} ({r.get('other_cpu_s'):.0f} s)"
             for key in SYSTEMS for on in (False, True)
             for r in [res["runs"].get(f"{key}-{'on' if on else 'off'}", {})]
             if (r.get("other_cpu_s") or 0) > 5]
    if noisy:
        a("**Noisy run**: other work used the machine during " + ", ".join(noisy)
          + " (it started after the quiet second, or QUIET_WAIT_SECS ran out): CPU and latency figures of those windows are disturbed.")
        a("")
    cr = s.get("cost_ratio_per_ping")
    pr = k.get("probe_p99_ratio")
    sp = k.get("spread")
    a("Goals:")
    a(f"- keepalive cost per ping, kamrs / Kamailio: {n(cr, 2)} (goal ≤ 0.33: "
      f"{goal(cr is not None and cr <= 0.33)}); per window: {n(s.get('cost_ratio_window'), 2)}.")
    a(f"- kamrs probe p99 with keepalive on / off: {n(pr, 2)} (goal ≤ 1.10: "
      f"{goal(pr is not None and pr <= 1.10)}).")
    a(f"- kamrs pings per second, max / mean: {n(sp, 2)} (goal ≤ 2.0: "
      f"{goal(sp is not None and sp <= 2.0)}). Kamailio 5.6 sends its whole population's pings "
      "in each timer run: that is its spread, as it is.")
    if k.get("tick_phase_on") is not None:
        a(f"- kamrs's probe samples slower than their window's p99, by phase in a 20 ms keepalive "
          f"tick (10 bins of 2 ms; the last run's phase was measured against the tick it ran with): the busiest bin holds {n(100 * k['tick_phase_on'], 0)} % of them "
          f"with keepalive on, {n(100 * (k.get('tick_phase_off') or 0), 0)} % off (uniform: 10 %).")
    ctx = [(x.get("ctx_on") - x.get("ctx_off")) / x["pings"] if x.get("pings") and x.get("ctx_on") is not None
           and x.get("ctx_off") is not None else None for x in (m, k)]
    a(f"- Context switches added per ping (on − off, all the registrar's threads): Kamailio "
      f"{n(ctx[0], 2)}, kamrs {n(ctx[1], 2)}.")
    kon = res["runs"].get("kamrs-on", {})
    ks = kon.get("kamrs_stats") or {}
    if ks:
        a(f"- kamrs's own counters over its window: ka_sent {n(ks.get('usrloc:ka_sent'))}, "
          f"ka_answered {n(ks.get('usrloc:ka_answered'))}, ka_timeouts {n(ks.get('usrloc:ka_timeouts'))}, "
          f"ka_ignored {n(ks.get('usrloc:ka_ignored'))}, flow_queue_full "
          f"{n(ks.get('core:flow_queue_full'))}, flow_failed {n(ks.get('core:flow_failed'))}.")
    mon = res["runs"].get("kamailio-on", {})
    if mon.get("sample_binding"):
        a(f"- Kamailio answered pings: `ul.lookup location ka1` after its window: "
          f"`KA-Roundtrip` {mon['sample_binding'].get('KA-Roundtrip')} µs, `Received` "
          f"`{mon['sample_binding'].get('Received')}`.")
    prof = kon.get("profile") or {}
    if prof.get("flat"):
        a(f"- Where kamrs's keepalive CPU goes ([profile-keepalive.txt](profile-keepalive.txt), "
          f"perf for {prof['secs']} s after its window, {n(prof.get('kernel_pct'), 0)} % of "
          "samples in the kernel), top self time: "
          + "; ".join(f"{r['pct']:.1f} % `{r['sym'][:70]}`" for r in prof["flat"][:8]) + ".")
    a("")
    a("Method and knobs:")
    a("")
    a("- Kamailio 5.6 (written by `bench/keepalive.py`): `usrloc` in memory (`db_mode=0`), "
      f"`ka_mode=2`, `timer_interval={KA_INTERVAL}` (its ping period: 5.6 has no `ka_interval`), "
      "`timer_procs=1` (a timer process of usrloc's own: its best setting for keepalive, the "
      "pings leave the core timer), `ka_timeout=0`; nathelper `nat_uac_test(\"19\")` → "
      "`setbflag(FLB_NATB)` (usrloc `nat_bflag`) + `fix_nated_register()` (`received_avp`) before "
      "`save(\"location\")`, so `received` is the source and pings go there; nathelper's own "
      f"pinger off. `maxbuffer={KAM_MAXBUFFER}` (the UDP receive buffer kamrs asks for; "
      f"Kamailio's default, 256 KiB, drops part of the burst of 200s). `children` = {res['config']['workers']}. The off run: the same with `ka_mode=0`.")
    a(f"- kamrs: release build, harness.py's config plus `ka_mode = 2`, `ka_interval = {KA_INTERVAL}`, "
      f"`ka_randomize = {'true' if KA_RANDOMIZE else 'false'}`, `ka_timeout = 0` (default `nat_uac_test = 51`); `udp_workers` = "
      f"tokio worker threads = {res['config']['workers']}. The off run: `ka_mode = 0`.")
    a(f"- The phones: `bench/probe`'s second binary `kamrs-ka-responder` (Rust): {RESP_SOCKETS} UDP "
      "sockets on 127.0.0.1 (receive buffers 64 MiB, SO_RCVBUFFORCE), one thread each; registers "
      f"the population at ≤ {REG_RATE:,}/s (64 outstanding per socket, Expires 3600), answers every "
      "OPTIONS with a 200 (Via, From, To + tag, Call-ID, CSeq) and counts them per wall-clock second. "
      "Its CPU is not measured (it shares the 2 cores with the registrar).")
    a(f"- Each run: a fresh start, registration, {SETTLE_SECS} s (off) or {KA_SETTLE_SECS} s (on: "
      "one interval, past the first round) of settling, then the window, starting on a whole "
      f"second after a quiet one (≤ {QUIET_MAX_CPU} CPU used by anything else; waited for at most "
      f"{QUIET_WAIT_SECS} s: the machine is shared). Spread = the busiest second's pings / the mean second's over the window. The probe "
      f"(REGISTER refresh every {H.PROBE_INTERVAL_US} µs) runs beside each window on both systems; "
      "the latency goal is kamrs's.")
    a("")
    a(f"How to run: `bench/keepalive-bench.sh` (defaults `POPULATION=100000 KA_INTERVAL=30 "
      "MEASURE_SECS=90`; also `NO_INSTALL=1`, `OUT_DIR`, `REG_RATE`, `RESP_SOCKETS`, `WORKERS`, "
      "`SYSTEMS`, `KA_RANDOMIZE`, `KAM_MAXBUFFER`, `KA_PROFILE_SECS`, `QUIET_WAIT_SECS`, `QUIET_MAX_CPU`, `KEEP_WORK=1`). This run: `POPULATION=" + str(POPULATION) + f" KA_INTERVAL={KA_INTERVAL} "
      f"MEASURE_SECS={MEASURE_SECS}`, {res['total_secs']:.0f} s. Raw data: "
      "[keepalive-results.json](keepalive-results.json).")
    a("")
    return "\n".join(L)


def write_section(text, path):
    """Replaces (or appends) the section in RESULTS.md, up to the next `## `."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        lines = []
    head = "## NAT keepalive, both systems"
    out, i, done = [], 0, False
    while i < len(lines):
        if lines[i].strip() == head:
            i += 1
            while i < len(lines) and not lines[i].startswith("## "):
                i += 1
            out += text.rstrip("\n").splitlines() + [""]
            done = True
            continue
        out.append(lines[i])
        i += 1
    if not done:
        if out and out[-1].strip():
            out.append("")
        out += text.rstrip("\n").splitlines()
    path.write_text("\n".join(out).rstrip("\n") + "\n")


def main():
    (WORK / "pids").touch()
    res = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": H.machine(),
           "config": {"population": POPULATION, "ka_interval": KA_INTERVAL,
                      "measure_secs": MEASURE_SECS, "reg_rate": REG_RATE,
                      "resp_sockets": RESP_SOCKETS, "settle_secs": SETTLE_SECS,
                      "ka_settle_secs": KA_SETTLE_SECS, "workers": H.WORKERS,
                      "probe_interval_us": H.PROBE_INTERVAL_US, "systems": SYSTEMS,
                      "ka_randomize": bool(KA_RANDOMIZE), "kam_maxbuffer": KAM_MAXBUFFER},
           "runs": {}}
    runs = {}
    try:
        for key in SYSTEMS:
            for ka_on in (False, True):
                row = one_run(key, ka_on)
                runs[(key, ka_on)] = row
                res["runs"][f"{key}-{'on' if ka_on else 'off'}"] = row
    finally:
        H.stop_all()
    res["summary"] = summarize(runs)
    res["total_secs"] = time.time() - H.T_START
    (OUT_DIR / "keepalive-results.json").write_text(json.dumps(res, indent=1, default=str))
    write_section(section(res), OUT_DIR / "RESULTS.md")
    s = res["summary"]
    for key in SYSTEMS:
        if key in s:
            v = s[key]
            log(f"{key}: pings {v['pings']:,} cpu on {v['cpu_on_s']:.2f}s off {v['cpu_off_s']:.2f}s "
                f"cost {v['cost_s']:.2f}s = {n(v['cost_ms_per_1000'], 1)} ms/1000 pings; "
                f"spread {n(v['spread'], 2)}; probe p99 on {v['probe_p99_on_us']} off "
                f"{v['probe_p99_off_us']} ({n(v['probe_p99_ratio'], 2)}x)")
    log(f"cost ratio kamrs/Kamailio per ping {n(s.get('cost_ratio_per_ping'), 3)}, "
        f"per window {n(s.get('cost_ratio_window'), 3)}; "
        f"{OUT_DIR / 'keepalive-results.json'}, {OUT_DIR / 'RESULTS.md'}")


def report_only(path):
    res = json.loads(Path(path).read_text())
    runs = {(v["system"], v["ka"]): v for v in res["runs"].values()}
    res["summary"] = summarize(runs)
    write_section(section(res), OUT_DIR / "RESULTS.md")
    log(f"{OUT_DIR / 'RESULTS.md'}: section rewritten from {path}")


if __name__ == "__main__" and sys.argv[1:2] == ["--report"]:
    report_only(sys.argv[2])
elif __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    main()
