#!/usr/bin/python3
"""kamrs vs Kamailio benchmark. Started by bench/run.sh, which
installs the tools, builds the binaries and documents the knobs; this file
runs the measurements and writes bench/RESULTS.md, bench/results.png and
bench/results.json.

Every process it starts is recorded (pid per line) in $BENCH_WORK/pids
before anything else happens to it, and stopped by that pid: by this file
when a phase ends or on any exit, and by run.sh's EXIT trap if this
process itself dies.
"""

import datetime
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = Path(os.environ["BENCH_WORK"])
KAMRS = os.environ["KAMRS_BIN"]
KAMRSCTL = os.environ["KAMRSCTL_BIN"]
PROBE = os.environ["PROBE_BIN"]
FLOOR_BIN = os.environ.get("FLOOR_BIN", "")
SCEN_REG = str(BENCH / "sipp" / "register.xml")
SCEN_UNREG = str(BENCH / "sipp" / "unregister.xml")
SCEN_AUTH = str(ROOT / "tests" / "sipp" / "register_auth.xml")
CLK_TCK = os.sysconf("SC_CLK_TCK")
T_START = time.time()


def env_list(name, default):
    return [int(x) for x in os.environ.get(name, default).split()]


def env_int(name, default):
    return int(os.environ.get(name, default))


RATES = env_list("RATES", "5000 10000 20000 40000 50000 60000")
STEP_SECS = env_int("STEP_SECS", 5)
WORKERS = env_int("WORKERS", os.cpu_count() or 2)
PREFILL_RATE = env_int("PREFILL_RATE", 10000)
PROBE_INTERVAL_US = env_int("PROBE_INTERVAL_US", 2000)
MEM_BINDINGS = env_list("MEM_BINDINGS", "100000 1000000")
MEM_RATE = env_int("MEM_RATE", 12000)
DUMP_AORS = env_int("DUMP_AORS", 100000)
DUMP_BG_RATE = env_int("DUMP_BG_RATE", 2000)
STARTUP_ROWS = env_int("STARTUP_ROWS", 1000000)
STORE_RATES = env_list("STORE_RATES", "2000 5000 10000 15000 20000 30000 40000 50000 60000")
STORE_STEP_SECS = env_int("STORE_STEP_SECS", 3)
STORE_SETUPS = os.environ.get(
    "STORE_SETUPS", "memory sqlite-wt sqlite-wb redis-wt redis-wb digest"
).split()
PROFILE_RATE = env_int("PROFILE_RATE", 40000)
PROFILE_SECS = env_int("PROFILE_SECS", 5)
PERF_FREQ = env_int("PERF_FREQ", 999)
SCHED_SECS = env_int("SCHED_SECS", 2)
KAM_SHM_MB = env_int("KAM_SHM_MB", 3072)
KAM_PKG_MB = env_int("KAM_PKG_MB", 64)
# The Kamailio every goal is judged against ("tuned") has its usrloc hash
# table sized for the phase's population: hash_size is the base-2 log of
# the number of slots (usrloc's README: 2^hash_size entries, default 10 =
# 1,024), taken as the smallest power of two >= population / 4 (2^17 slots
# for the 300,000 AoRs of the default matrix). KAM_HASH_SIZE=N forces
# hash_size N instead (here and in keepalive.py / tls.py, whose default
# stays usrloc's).
KAM_HASH_SIZE = env_int("KAM_HASH_SIZE", 0)
USRLOC_DEFAULT_HASH_SIZE = 10
# The tutorial's Kamailio (default hash_size) as a reference column: new
# AoRs and refresh only, at these rates only (each rate costs two steps;
# "" leaves it out).
TUTORIAL_RATES = env_list("TUTORIAL_RATES", "10000 20000 40000")
# The floor (bench/floor): refresh at every rate of RATES; FLOOR=0 leaves it out.
FLOOR = env_int("FLOOR", 1)
# Bytes of the floor's 200; 0: measured from kamrs's 200 to the bench's REGISTER.
FLOOR_REPLY_LEN = env_int("FLOOR_REPLY_LEN", 0)
PHASES = os.environ.get("PHASES", "matrix profile memory dump startup stores").split()
OUT_DIR = Path(os.environ.get("OUT_DIR", str(BENCH)))
OUT_DIR.mkdir(parents=True, exist_ok=True)
# SIPp's socket buffers (its default, 64 KiB, overflows at a few 10k/s and
# turns every hiccup of the load generator into retransmissions).
SIPP_BUFF = env_int("SIPP_BUFF", 4 * 1024 * 1024)


def log(msg):
    print(f"[{time.time() - T_START:7.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

STARTED = []  # Popen objects, in start order


def start(cmd, name, env=None, cwd=None):
    """Starts cmd with stdout/stderr in WORK/<name>.out/.err; records its pid."""
    out = open(WORK / f"{name}.out", "wb")
    err = open(WORK / f"{name}.err", "wb")
    p = subprocess.Popen(
        cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd
    )
    out.close()
    err.close()
    with open(WORK / "pids", "a") as f:
        f.write(f"{p.pid} {start_time(p.pid)}\n")
    STARTED.append(p)
    return p


def start_time(pid):
    """Field 22 of /proc/PID/stat: with the pid, names one process for good
    (run.sh's trap checks it before signalling a recorded pid)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return s[s.rindex(")") + 2:].split()[19]
    except (OSError, IndexError):
        return "?"


def start_plain(cmd, stdout, stderr):
    """Like start(), with the caller's stdout/stderr."""
    p = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
    with open(WORK / "pids", "a") as f:
        f.write(f"{p.pid} {start_time(p.pid)}\n")
    STARTED.append(p)
    return p


def wait_rusage(p, timeout):
    """Waits (bounded) for p; returns (exit code, its CPU seconds)."""
    deadline = time.time() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, ru.ru_utime + ru.ru_stime
        if time.time() > deadline:
            stop(p, signal.SIGKILL)
            return -9, None
        time.sleep(0.002)


def stop(p, sig=signal.SIGTERM, grace=15.0):
    """Stops one process we started, by its pid; SIGKILL after grace s."""
    if p is None or p.poll() is not None:
        return
    try:
        os.kill(p.pid, sig)
    except ProcessLookupError:
        return
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=5)


def stop_all():
    for p in reversed(STARTED):
        stop(p, grace=10.0)


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_both_port():
    """A port free for UDP and TCP (Kamailio's listen, kamrs's listen)."""
    for _ in range(50):
        port = free_port()
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
    raise RuntimeError("no free port")


# ------------------------------------------------------------ /proc readers

def proc_tree(root_pid):
    """root_pid and all its descendants (Kamailio's children)."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        parent[int(d)] = int(fields[1])
    tree, todo = [root_pid], [root_pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        tree += kids
        todo += kids
    return tree


def cpu_ticks(pids):
    """utime+stime of the processes (all their threads), in clock ticks."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def smaps_kb(pids, key):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def replace_section(path, heading, section):
    """Puts `section` (starting with `heading`) into the Markdown file at
    path in place of the one with that heading, up to the next `## `, or
    at its end when it has none yet."""
    text = path.read_text() if path.exists() else ""
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


# ------------------------------------------------------------------- systems

class System:
    label = ""

    def pids(self):
        return proc_tree(self.proc.pid)

    def cpu(self):
        return cpu_ticks(self.pids())

    def pss_kb(self):
        return smaps_kb(self.pids(), "Pss")

    def rss_kb(self):
        return smaps_kb(self.pids(), "Rss")

    def alive(self):
        return self.proc.poll() is None


def sip_ping(port, timeout=0.2):
    """True when something answers an OPTIONS on 127.0.0.1:port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(timeout)
    lp = s.getsockname()[1]
    msg = (
        f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bK-ping{time.time_ns()};rport\r\n"
        f"From: <sip:ping@example.com>;tag=p\r\nTo: <sip:ping@example.com>\r\n"
        f"Call-ID: ping-{time.time_ns()}@bench\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()
    try:
        s.sendto(msg, ("127.0.0.1", port))
        s.recvfrom(65536)
        return True
    except OSError:
        return False
    finally:
        s.close()


class Kamailio(System):
    label = "Kamailio"
    key = "kamailio"

    def __init__(self, name, hash_size=None, template=None, key=None, label=None, **fmt):
        """template: another config than the tutorial's (bench/keepalive.py),
        with the same {children} {port} {fifo} {dir} {mpath} {extra} fields
        and any in fmt. hash_size: usrloc's (log2 of its slots); 0: usrloc's
        default; None: KAM_HASH_SIZE (0 by default: usrloc's default)."""
        if key:
            self.key = key
        if label:
            self.label = label
        self.dir = WORK / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_both_port()
        self.fifo = self.dir / "rpc_fifo"
        self.cfg = self.dir / "kamailio.cfg"
        if hash_size is None:
            hash_size = KAM_HASH_SIZE
        self.hash_size = hash_size or USRLOC_DEFAULT_HASH_SIZE
        extra = f'modparam("usrloc", "hash_size", {hash_size})' if hash_size else ""
        self.cfg.write_text((template or KAMAILIO_CFG).format(
            children=WORKERS, port=self.port, fifo=self.fifo, dir=self.dir,
            mpath=KAM_MODULES, extra=extra, **fmt))
        t0 = time.time()
        self.proc = start(
            ["kamailio", "-f", str(self.cfg), "-DD", "-E", "-Y", str(self.dir),
             "-m", str(KAM_SHM_MB), "-M", str(KAM_PKG_MB)], name)
        for _ in range(300):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"kamailio exited: {(WORK / (name + '.err')).read_text()[-2000:]}")
            if sip_ping(self.port) and self.fifo.exists():
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("kamailio did not answer")
        self.startup_s = time.time() - t0
        self.target = f"127.0.0.1:{self.port}"
        self.rpc_n = 0

    def rpc(self, method, params=None, timeout=600):
        """One JSON-RPC call over jsonrpcs's FIFO; returns (raw bytes, seconds
        from writing the request to the reply's last byte)."""
        self.rpc_n += 1
        reply_name = f"reply_{self.rpc_n}"
        reply = self.dir / reply_name
        os.mkfifo(reply)
        chunks = []
        err = []

        def reader():
            try:
                fd = os.open(reply, os.O_RDONLY)  # blocks until Kamailio opens it
                try:
                    while True:
                        r, _, _ = select.select([fd], [], [], timeout)
                        if not r:
                            err.append("timeout")
                            return
                        b = os.read(fd, 1 << 20)
                        if not b:
                            return
                        chunks.append(b)
                finally:
                    os.close(fd)
            except OSError as e:
                err.append(str(e))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        time.sleep(0.02)  # the reader sits in open() before the request goes
        req = {"jsonrpc": "2.0", "method": method, "reply_name": reply_name, "id": 1}
        if params:
            req["params"] = params
        t0 = time.perf_counter()
        with open(self.fifo, "w") as f:
            f.write(json.dumps(req) + "\n")
        th.join(timeout + 5)
        dt = time.perf_counter() - t0
        if th.is_alive():
            # Unblock the reader (bounded): open the write end ourselves.
            try:
                fd = os.open(reply, os.O_WRONLY | os.O_NONBLOCK)
                os.close(fd)
            except OSError:
                pass
            th.join(5)
            err.append("no reply")
        reply.unlink(missing_ok=True)
        if err:
            raise RuntimeError(f"kamailio rpc {method}: {err}")
        return b"".join(chunks), dt

    def shm_used(self):
        raw, _ = self.rpc("core.shmmem", timeout=20)
        r = json.loads(raw)["result"]
        return int(r.get("real_used", r.get("used", 0)))


class Kamrs(System):
    label = "kamrs"
    key = "kamrs"

    def __init__(self, name, store="", auth="", port=None, extra_env=None,
                 ready_timeout=120, top=""):
        """top: more top-level config keys (e.g. ka_mode, bench/keepalive.py)."""
        self.dir = WORK / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_both_port()
        self.ctl = f"unix:{self.dir}/ctl.sock"
        cfg = self.dir / "kamrs.toml"
        cfg.write_text(
            f'listen = ["udp:127.0.0.1:{self.port}"]\n'
            f"max_expires = 3600\n"
            f"udp_workers = {WORKERS}\n{top}\n"
            f'[ctl]\nlisten = "{self.ctl}"\n'
            f'[log]\nlevel = "info"\n{store}\n{auth}\n')
        env = dict(os.environ)
        env["TOKIO_WORKER_THREADS"] = str(WORKERS)
        env.pop("RUST_LOG", None)
        if extra_env:
            env.update(extra_env)
        t0 = time.time()
        self.proc = start([KAMRS, "--config", str(cfg)], name, env=env)
        self.out = WORK / f"{name}.out"
        deadline = t0 + ready_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"kamrs ({name}) exited: {(WORK / (name + '.err')).read_text()[-2000:]}")
            text = self.out.read_text()
            if re.search(r"^ready$", text, re.M):
                break
            time.sleep(0.01)
        else:
            raise RuntimeError(f"kamrs ({name}) not ready in {ready_timeout}s")
        self.startup_s = time.time() - t0
        self.target = f"127.0.0.1:{self.port}"
        self.errfile = WORK / f"{name}.err"


class Floor(System):
    """bench/floor: answers every request with a fixed-length 200 and keeps
    no state, with kamrs's UDP threads and batching (WORKERS threads on one
    shared socket, recvmmsg/sendmmsg): the kernel's floor under the same
    SIPp load."""
    label = "floor"
    key = "floor"

    def __init__(self, name, reply_len):
        self.port = free_port()
        self.reply_len = reply_len
        self.proc = start([FLOOR_BIN, "--listen", f"127.0.0.1:{self.port}",
                           "--workers", str(WORKERS), "--reply-len", str(reply_len),
                           "--duration-s", "7200"], name)
        out = WORK / f"{name}.out"
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError(f"floor exited: {(WORK / (name + '.err')).read_text()[-2000:]}")
            if re.search(r"^ready$", out.read_text(), re.M):
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("floor not ready")
        self.target = f"127.0.0.1:{self.port}"


def tuned_hash_size(population):
    """usrloc hash_size (log2 of its slots) for a table of `population`
    AoRs: the smallest power of two >= population / 4 slots, unless
    KAM_HASH_SIZE forces one."""
    if KAM_HASH_SIZE:
        return KAM_HASH_SIZE
    slots = max(1, -(-population // 4))
    return max(1, (slots - 1).bit_length())


def register_reply_len(system, user):
    """Bytes of the 200 `system` sends to one REGISTER shaped like
    bench/sipp/register.xml's (SIPp's Via, From tag, Call-ID and Contact
    forms; `user` as long as the AoRs of the load), followed by its
    Expires: 0 so the AoR does not stay. None when it does not answer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(1.0)
    lp = s.getsockname()[1]
    n = user.lstrip("abcdefghijklmnopqrstuvwxyz")
    try:
        lens = []
        for cseq, expires in ((1, 3600), (2, 0)):
            msg = (
                f"REGISTER sip:example.com SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bK-{os.getpid()}-{n}-0;rport\r\n"
                f"From: <sip:{user}@example.com>;tag={os.getpid()}SIPpTag{n}\r\n"
                f"To: <sip:{user}@example.com>\r\n"
                f"Call-ID: {user[:1]}-{n}@bench\r\nCSeq: {cseq} REGISTER\r\n"
                f"Contact: <sip:{user}@127.0.0.1:{lp}>\r\nMax-Forwards: 70\r\n"
                f"Expires: {expires}\r\nUser-Agent: SIPp\r\nContent-Length: 0\r\n\r\n").encode()
            s.sendto(msg, ("127.0.0.1", system.port))
            reply = s.recv(65536)
            if not reply.startswith(b"SIP/2.0 200 "):
                return None
            lens.append(len(reply))
        return lens[0]
    except OSError:
        return None
    finally:
        s.close()


# ------------------------------------------------------------ the reference
# The Kamailio registrar tutorial's configuration: usrloc in memory
# (db_mode 0), no authentication; REGISTER -> save("location"),
# INVITE -> 480, ACK -> absorbed, anything else -> 501. Plus jsonrpcs over
# a FIFO for ul.dump and core.shmmem (what kamctl uses).

def _kam_modules():
    """Debian's module directory for this architecture."""
    import glob
    found = sorted(glob.glob("/usr/lib/*/kamailio/modules/")) + \
        sorted(glob.glob("/usr/lib/kamailio/modules/"))
    return found[0] if found else "/usr/lib/x86_64-linux-gnu/kamailio/modules/"


KAM_MODULES = os.environ.get("KAM_MODULES") or _kam_modules()
KAMAILIO_CFG = """#!KAMAILIO
# Written by bench/harness.py (kamrs bench/run.sh). The registrar tutorial's
# routing with usrloc in memory and no authentication.
debug=1
log_stderror=yes
fork=yes
children={children}
auto_aliases=no
disable_tcp=yes
listen=udp:127.0.0.1:{port}

mpath="{mpath}"
loadmodule "jsonrpcs.so"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"

modparam("jsonrpcs", "transport", 2)
modparam("jsonrpcs", "fifo_name", "{fifo}")
modparam("jsonrpcs", "fifo_reply_dir", "{dir}/")
modparam("jsonrpcs", "pretty_format", 0)
modparam("usrloc", "db_mode", 0)
{extra}

request_route {{
    if (is_method("REGISTER")) {{
        save("location");
        exit;
    }}
    if (is_method("INVITE")) {{
        sl_send_reply("480", "Temporarily Unavailable");
        exit;
    }}
    if (is_method("ACK")) {{
        exit;
    }}
    sl_send_reply("501", "Not Implemented");
}}
"""


# --------------------------------------------------------------- load tools

def parse_stat(path):
    """The cumulative (C) counters of SIPp's last -trace_stat line."""
    try:
        lines = [l for l in Path(path).read_text().splitlines() if l.strip()]
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    head = lines[0].split(";")
    last = lines[-1].split(";")
    out = {}
    for h, v in zip(head, last):
        try:
            out[h] = float(v)
        except ValueError:
            pass
    return out


class Sipp:
    """One SIPp run: REGISTERs for [prefix]1..[prefix]calls, Call-ID
    prefix-N@bench, CSeq base_cseq."""

    def __init__(self, system, scenario, prefix, rate, calls, base_cseq, local_port,
                 name, timeout_s=None, extra=None, limit=None):
        self.stat = WORK / f"{name}.csv"
        self.calls = calls
        self.rate = rate
        if timeout_s is None:
            timeout_s = calls / rate + 15
        limit = limit or (rate // 2 + 200)
        cmd = ["sipp", system.target, "-sf", scenario,
               "-key", "user_prefix", prefix, "-cid_str", f"{prefix}-%u@bench",
               "-base_cseq", str(base_cseq), "-m", str(calls), "-r", str(rate),
               "-rp", "1000", "-l", str(limit), "-i", "127.0.0.1", "-p", str(local_port),
               "-nostdin", "-buff_size", str(SIPP_BUFF), "-trace_stat", "-stf", str(self.stat), "-fd", "1",
               "-timeout", f"{int(timeout_s)}s"] + (extra or [])
        self.timeout_s = timeout_s
        self.t0 = time.perf_counter()
        self.proc = start(cmd, name, cwd=str(WORK))

    def wait(self):
        """Waits (bounded) for SIPp's exit; keeps its CPU time (wait4)."""
        deadline = time.time() + self.timeout_s + 30
        self.cpu_s = None
        while self.proc.returncode is None:
            pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.cpu_s = ru.ru_utime + ru.ru_stime
                break
            if time.time() > deadline:
                stop(self.proc, signal.SIGKILL)
                break
            time.sleep(0.005)
        self.t1 = time.perf_counter()
        return self.result()

    def interrupt(self):
        """Ends the run early the way SIPp finishes cleanly (SIGINT)."""
        stop(self.proc, signal.SIGINT, grace=20)
        self.t1 = time.perf_counter()
        return self.result()

    def result(self):
        s = parse_stat(self.stat)
        created = int(s.get("TotalCallCreated", 0))
        ok = int(s.get("SuccessfulCall(C)", 0))
        failed = int(s.get("FailedCall(C)", 0))
        return {
            "calls": self.calls, "created": created, "ok": ok, "failed": failed,
            "unfinished": max(0, created - ok - failed),
            "retrans": int(s.get("Retransmissions(C)", 0)),
            "secs": self.t1 - self.t0, "rc": self.proc.returncode,
            "sipp_cpu_s": getattr(self, "cpu_s", None),
        }


class Probe:
    def __init__(self, system, name, interval_us=PROBE_INTERVAL_US, cap_s=600,
                 samples=False):
        self.stopfile = WORK / f"{name}.stop"
        self.outfile = WORK / f"{name}.probe"
        self.samplefile = WORK / f"{name}.samples" if samples else None
        cmd = [PROBE, "--target", system.target, "--interval-us", str(interval_us),
               "--duration-s", str(int(cap_s)), "--stop-file", str(self.stopfile),
               "--timeout-ms", "1000", "--user", f"probe-{name}",
               "--out", str(self.outfile)]
        if self.samplefile:
            cmd += ["--samples", str(self.samplefile)]
        self.t0 = time.perf_counter()
        self.proc = start(cmd, name + "-probe")

    def finish(self):
        self.stopfile.touch()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            stop(self.proc)
        r = {}
        try:
            for kv in self.outfile.read_text().split():
                k, v = kv.split("=")
                r[k] = float(v) if "." in v else int(v)
        except (OSError, ValueError):
            pass
        return r

    def samples(self):
        out = []
        if self.samplefile and self.samplefile.exists():
            for line in self.samplefile.read_text().splitlines():
                t, l = line.split()
                out.append((int(t) / 1e6, int(l)))
        return out


def udp_rcvbuf_errors():
    """System-wide UDP receive-buffer overflows (datagrams dropped)."""
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def socket_drops(port):
    """Datagrams dropped by the UDP sockets bound to 127.0.0.1:port (the
    registrar's, per /proc/net/udp)."""
    total = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port:
                total += int(fields[-1])
    return total


def sustained(res, rate, step_secs):
    """SIPp got every 200, at most 0.1 % retransmissions, on time (5 % + 0.3 s)."""
    return (res["ok"] == res["calls"] and res["failed"] == 0
            and res["retrans"] * 1000 <= res["calls"]
            and res["secs"] <= step_secs * 1.05 + 0.3)


def measured_step(system, scenario, prefix, rate, calls, base_cseq, port, name,
                  step_secs, probe=True, count_per_call=1):
    """Runs one SIPp load with the probe beside it; returns the row."""
    pr = Probe(system, name) if probe else None
    time.sleep(0.05)
    c0 = system.cpu()
    d0 = udp_rcvbuf_errors()
    s0 = socket_drops(system.port)
    sp = Sipp(system, scenario, prefix, rate, calls, base_cseq, port, name,
              timeout_s=step_secs + 12)
    res = sp.wait()
    c1 = system.cpu()
    d1 = udp_rcvbuf_errors()
    s1 = socket_drops(system.port)
    pres = pr.finish() if pr else {}
    registers = res["ok"] * count_per_call + int(pres.get("ok", 0))
    # Every REGISTER that reached the registrar's socket: SIPp's first
    # sends and retransmissions, and the probe's.
    messages = (res["created"] + res["retrans"]) * count_per_call + int(pres.get("sent", 0))
    cpu_s = (c1 - c0) / CLK_TCK
    row = dict(res)
    row.update({
        "system": system.key, "rate": rate,
        "achieved": res["ok"] / res["secs"] if res["secs"] > 0 else 0,
        "cpu_s": cpu_s,
        "cpu_us_per_reg": cpu_s * 1e6 / registers if registers else None,
        "cpu_us_per_msg": cpu_s * 1e6 / messages if messages else None,
        "rcvbuf_drops": d1 - d0,
        "registrar_drops": s1 - s0,
        "probe": pres,
        "pss_kb": system.pss_kb(),
        "sustained": sustained(res, rate, step_secs),
    })
    return row


def fmt_int(x):
    return "-" if x is None else f"{x:,.0f}"


def fmt_f(x, nd=1):
    return "-" if x is None else f"{x:,.{nd}f}"


# ------------------------------------------------------------------- phases

RESULTS = {"steps": [], "phase_secs": {}}


def phase_matrix():
    """All systems, same load, same run: new AoRs, refresh, unregister at
    each rate for kamrs and the tuned Kamailio (usrloc sized for the
    population); new and refresh for the tutorial's Kamailio at
    TUTORIAL_RATES; refresh for the floor at every rate. Which system goes
    first rotates from rate to rate."""
    pop = max(RATES) * STEP_SECS
    hs = tuned_hash_size(pop)
    kam = Kamailio("kamailio", hash_size=hs, label=f"Kamailio tuned (hash_size {hs})")
    kr = Kamrs("kamrs")
    tut = None
    if TUTORIAL_RATES:
        tut = Kamailio("kamailio-tutorial", hash_size=0, key="kamailio-tutorial",
                       label="Kamailio tutorial")
    RESULTS["kamailio_configs"] = {
        "kamailio": {"config": "tuned", "hash_size": kam.hash_size, "population": pop,
                     "rule": "smallest power of two >= population / 4 slots"
                     if not KAM_HASH_SIZE else "KAM_HASH_SIZE"}}
    if tut:
        RESULTS["kamailio_configs"]["kamailio-tutorial"] = {
            "config": "tutorial", "hash_size": tut.hash_size, "population": pop,
            "rates": TUTORIAL_RATES}
    floor = None
    if FLOOR and FLOOR_BIN:
        measured = register_reply_len(kr, f"q{pop}")
        # 392: kamrs 0.1.0's 200 to the bench's REGISTER for p300000 from a
        # five-digit port (measured 2026-12-03), if kamrs does not answer.
        reply_len = FLOOR_REPLY_LEN or measured or 392
        floor = Floor("floor", reply_len)
        RESULTS["floor"] = {"reply_len": reply_len, "kamrs_reply_len": measured,
                            "workers": WORKERS,
                            "source": "set by FLOOR_REPLY_LEN" if FLOOR_REPLY_LEN
                            else ("measured from kamrs at the start of the run" if measured
                                  else "a default: kamrs did not answer the measuring REGISTER")}
        log(f"floor: 200 OK of {reply_len} bytes (kamrs's 200 to the bench's REGISTER: {measured})")
    elif FLOOR:
        log("floor: FLOOR_BIN not set, no floor row")
    registrars = [s for s in (kam, kr, tut) if s]
    systems = registrars + ([floor] if floor else [])
    ports = {s.key: free_port() for s in systems}  # SIPp's port: Contact URIs stay equal
    RESULTS["start_kb"] = {s.key: s.pss_kb() for s in systems}
    log(f"Kamailio tuned: hash_size {kam.hash_size} ({2 ** kam.hash_size:,} slots) for {pop:,} AoRs"
        + (f"; tutorial: hash_size {tut.hash_size} at {TUTORIAL_RATES}" if tut else ""))
    log(f"prefill: {pop:,} AoRs (refresh population) into each registrar at {PREFILL_RATE}/s each")
    runs = [Sipp(s, SCEN_REG, "p", PREFILL_RATE, pop, 1, ports[s.key], f"prefill-{s.key}",
                 timeout_s=pop / PREFILL_RATE * 3 + 30) for s in registrars]
    pre = {s.key: r.wait() for s, r in zip(registrars, runs)}
    RESULTS["prefill"] = pre
    for k, v in pre.items():
        log(f"  prefill {k}: {v['ok']:,}/{v['calls']:,} ok in {v['secs']:.1f}s, "
            f"{v['retrans']} retransmissions")
    time.sleep(1)
    for i, rate in enumerate(RATES):
        calls = rate * STEP_SECS
        here = [s for s in systems if s is not tut or rate in TUTORIAL_RATES]
        k = i % len(here)
        order = here[k:] + here[:k]
        plan = [
            ("new", SCEN_REG, f"n{rate}x", 1, (kam, kr, tut)),
            ("refresh", SCEN_REG, "p", 2 + i, (kam, kr, tut, floor)),
            ("unregister", SCEN_UNREG, f"n{rate}x", 2, (kam, kr)),
        ]
        for wl, scen, prefix, cseq, who in plan:
            for s in order:
                if s not in who:
                    continue
                if not s.alive():
                    raise RuntimeError(f"{s.label} died")
                row = measured_step(s, scen, prefix, rate, calls, cseq, ports[s.key],
                                    f"{wl}-{rate}-{s.key}", STEP_SECS)
                row["workload"] = wl
                RESULTS["steps"].append(row)
                p = row["probe"]
                log(f"  {wl:10} {rate:6} {s.label:8}: {row['achieved']:8.0f}/s ok={row['ok']}"
                    f" fail={row['failed'] + row['unfinished']} retr={row['retrans']}"
                    f" cpu={fmt_f(row['cpu_us_per_reg'])}us/REG p50={p.get('p50_us')}"
                    f" p99={p.get('p99_us')} max={p.get('max_us')} pss={row['pss_kb'] // 1024}MiB")
                time.sleep(0.5)
    RESULTS["matrix_tables"] = {s.key: pop for s in registrars}
    for s in (tut, floor):
        if s:
            stop(s.proc)
    return kam, kr, ports


def phase_profile(kr, port):
    """perf record (cpu-clock, DWARF call graphs) on kamrs during refresh."""
    if not shutil.which("perf"):
        RESULTS["profile"] = {"error": "perf not installed"}
        return
    rate = PROFILE_RATE
    calls = rate * PROFILE_SECS
    data = WORK / "perf.data"
    perf = start(["perf", "record", "-e", "cpu-clock", "-F", str(PERF_FREQ), "--call-graph",
                  "dwarf,16384", "-p", str(kr.proc.pid), "-o", str(data)], "perf")
    # Beside it, the syscall pattern: how many datagrams each recvmmsg and
    # sendmmsg actually carried and how often kamrs's threads slept.
    counts = WORK / "perf-stat.csv"
    stat = start(["perf", "stat", "-x", ",", "-o", str(counts), "-e", ",".join(SYSCALL_EVENTS),
                  "-p", str(kr.proc.pid)], "perf-stat")
    time.sleep(1.0)
    c0 = kr.cpu()
    sp = Sipp(kr, SCEN_REG, "p", rate, calls, 2 + len(RATES), port, "profile-refresh",
              timeout_s=PROFILE_SECS + 12)
    res = sp.wait()
    c1 = kr.cpu()
    stop(stat, signal.SIGINT, grace=30)
    stop(perf, signal.SIGINT, grace=60)
    prof = {"rate": rate, "sipp": res, "cpu_s": (c1 - c0) / CLK_TCK}
    prof["syscalls"] = read_perf_stat(counts, (res or {}).get("ok") or 0)
    sc = prof["syscalls"]
    if sc.get("per_register"):
        log("  syscalls per REGISTER: " + ", ".join(
            f"{k} {v:.3f}" for k, v in sc["per_register"].items())
            + f"; datagrams per recvmmsg {sc.get('recv_batch') or 0:.2f},"
              f" per sendmmsg {sc.get('send_batch') or 0:.2f}")
    if perf.returncode not in (0, None) and not data.exists():
        prof["error"] = (WORK / "perf.err").read_text()[-500:]
        RESULTS["profile"] = prof
        return

    t0 = time.time()
    prof.update(analyse_perf(data))
    prof["report_secs"] = time.time() - t0
    log(f"  perf: {prof.get('error') or str(prof.get('samples')) + ' samples'}"
        f" ({prof['cpu_s']:.2f} s of kamrs CPU during the load)")
    RESULTS["profile"] = prof
    write_profile_text(prof, OUT_DIR / "profile-refresh.txt")
    data.unlink(missing_ok=True)
    phase_sched(kr, port)


# Counted by `perf stat` on kamrs during the profile's load (tracepoints and
# the scheduler's software events: needs root or perf_event_paranoid <= 1).
SYSCALL_EVENTS = ["syscalls:sys_enter_recvmmsg", "syscalls:sys_enter_sendmmsg",
                  "syscalls:sys_enter_recvfrom", "syscalls:sys_enter_sendto",
                  "syscalls:sys_enter_futex", "context-switches"]


def read_perf_stat(path, registers):
    """`perf stat -x ,` output → counts, per REGISTER, and the batch sizes
    achieved (answered REGISTERs over recvmmsg / sendmmsg calls: each
    REGISTER is one datagram in and one out)."""
    counts = {}
    try:
        for line in path.read_text().splitlines():
            f = line.split(",")
            if len(f) >= 3 and f[0].strip().isdigit():
                counts[f[2].split(":")[-1].replace("sys_enter_", "")] = int(f[0])
    except OSError as e:
        return {"error": str(e)}
    if not counts:
        return {"error": "perf stat counted nothing (tracepoints unavailable?)"}
    out = {"counts": counts, "registers": registers}
    if registers:
        out["per_register"] = {k: v / registers for k, v in counts.items()}
        for k, name in (("recvmmsg", "recv_batch"), ("sendmmsg", "send_batch")):
            if counts.get(k):
                out[name] = registers / counts[k]
    return out


def phase_sched(kr, port):
    """A second refresh load at PROFILE_RATE with the probe beside it and
    `perf sched record -a` for SCHED_SECS in its middle: how kamrs's threads
    and SIPp share the CPUs, i.e. what the probe's tail waits for."""
    rate = PROFILE_RATE
    data = WORK / "sched.data"
    pr = Probe(kr, "sched")
    time.sleep(0.05)
    sp = Sipp(kr, SCEN_REG, "p", rate, rate * PROFILE_SECS, 3 + len(RATES), port,
              "sched-refresh", timeout_s=PROFILE_SECS + 12)
    time.sleep(max(0.0, (PROFILE_SECS - SCHED_SECS) / 2))
    rec = start(["perf", "sched", "record", "-a", "-o", str(data), "--",
                 "sleep", str(SCHED_SECS)], "perf-sched")
    try:
        rec.wait(timeout=SCHED_SECS + 30)
    except subprocess.TimeoutExpired:
        stop(rec)
    res = sp.wait()
    pres = pr.finish()
    out = {"rate": rate, "secs": SCHED_SECS, "sipp": res, "probe": pres}
    try:
        r = subprocess.run(["perf", "sched", "timehist", "-i", str(data)],
                           capture_output=True, text=True, timeout=300)
        out.update(analyse_sched(r.stdout, kr.proc.pid))
    except (OSError, subprocess.TimeoutExpired) as e:
        out["error"] = str(e)
    data.unlink(missing_ok=True)
    RESULTS["sched"] = out
    k = (out.get("tasks") or {}).get("kamrs") or {}
    log(f"  sched: probe p99={pres.get('p99_us')} kamrs busy stretches (length-weighted)"
        f" p50={k.get('stretch_w50_us')} p90={k.get('stretch_w90_us')} max={k.get('stretch_max_us')} us")


TIMEHIST = re.compile(r"^\s*(\d+\.\d+)\s+\[(\d+)\]\s+(\S.*?)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s*$")


def pctl(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None


def analyse_sched(text, kamrs_pid):
    """From `perf sched timehist` (one line per switch-out: time, CPU, task,
    wait, scheduling delay, run time, in ms): per task group its CPU, its
    on-CPU slices and its wakeup-to-running delay; for kamrs also its busy
    stretches (the union of its threads' slices, gaps under 50 µs closed),
    whose length-weighted quantiles say how long the stretch is that a
    request arriving at a random busy moment has to wait out."""
    slices = {"kamrs": [], "sipp": [], "probe": []}
    delays = {"kamrs": [], "sipp": [], "probe": []}
    t_first = t_last = None
    for line in text.splitlines():
        m = TIMEHIST.match(line)
        if not m:
            continue
        t, _cpu, task, _wait, delay, run = m.groups()
        t, delay, run = float(t), float(delay) * 1e3, float(run) * 1e3
        t_first = t if t_first is None else t_first
        t_last = t
        ids = re.search(r"\[(\d+)(?:/(\d+))?\]$", task)
        pid = int(ids.group(2) or ids.group(1)) if ids else None
        name = task[:ids.start()] if ids else task
        if pid == kamrs_pid:
            g = "kamrs"
        elif name == "sipp":
            g = "sipp"
        elif name == "kamrs-probe":
            g = "probe"
        else:
            continue
        slices[g].append((t * 1e6 - run, t * 1e6))
        if delay > 0:
            delays[g].append(delay)
    if t_first is None or t_last <= t_first:
        return {"error": "perf sched timehist gave no events"}
    span = t_last - t_first
    out = {}
    for g in slices:
        runs = [b - a for a, b in slices[g]]
        d = delays[g]
        out[g] = {"cpu_ms_per_s": sum(runs) / 1e3 / span, "slices": len(runs),
                  "slice_p50_us": pctl(runs, 0.5), "slice_p90_us": pctl(runs, 0.9),
                  "slice_max_us": max(runs) if runs else None,
                  "delay_mean_us": sum(d) / len(d) if d else None,
                  "delay_p99_us": pctl(d, 0.99), "delay_max_us": max(d) if d else None}
    stretches = []
    for a, b in sorted(slices["kamrs"]):
        if stretches and a <= stretches[-1][1] + 50:
            stretches[-1][1] = max(stretches[-1][1], b)
        else:
            stretches.append([a, b])
    lens = sorted(b - a for a, b in stretches)

    def weighted(q):
        # Weighted by length: the stretch a request arriving at a random
        # moment of kamrs's busy time falls into.
        total, acc = sum(lens), 0.0
        for x in lens:
            acc += x
            if acc >= q * total:
                return x
        return None

    out["kamrs"].update({"stretches_per_s": len(lens) / span,
                         "stretch_w50_us": weighted(0.5), "stretch_w90_us": weighted(0.9),
                         "stretch_w99_us": weighted(0.99),
                         "stretch_max_us": max(lens) if lens else None})
    return {"span_s": span, "tasks": out}


# Frames that only carry a kamrs type in their generics (tokio's and std's
# wrappers around the UDP task), not kamrs code.
WRAPPER = re.compile(r"^(poll|poll_inner|poll_future|with_mut|do_call|catch_unwind|call_once|"
                     r"\{closure#\d+\}|budget|with_budget|run|set|enter_runtime)<")


# Inclusive groups: share of samples whose call chain contains a match.
INCLUSIVE_GROUPS = [
    ("UDP send: sendmmsg / sendto (on loopback it includes delivering to the receiver's socket and waking it)",
     r"^(__libc_sendto|(__GI___|__)?sendmmsg)"),
    ("UDP receive: recvmmsg / recvfrom", r"^(__libc_recvfrom|(__)?recvmmsg)"),
    ("idle/park: epoll_wait (runtime waiting for packets)", r"^epoll_wait"),
    # parse_message is inlined into Router::handle: its frame is then named
    # without its path.
    ("SIP parsing: kamrs::sip::message::parse_message",
     r"(^|kamrs::sip::message::)parse_message( \(inlined\))?$"),
    ("registrar: kamrs::registrar::Registrar::handle", r"kamrs::registrar::Registrar::handle"),
    ("location table: kamrs::usrloc::table::*", r"kamrs::usrloc::table::"),
    ("reply building: kamrs::sip::reply / kamrs::registrar::reply", r"kamrs::sip::reply|kamrs::registrar::reply"),
    ("memory allocation: malloc/free/realloc", r"malloc|_int_free|__libc_free|cfree|realloc"),
    ("formatting: core::fmt / alloc::fmt", r"core::fmt|alloc::fmt"),
    ("hashing: SipHash (std RandomState)", r"core::hash::sip::Hasher"),
    ("clock: clock_gettime", r"clock_gettime"),
]


def analyse_perf(data):
    """Self and inclusive shares per function from `perf script` (DWARF
    call chains, inlined frames resolved)."""
    r = subprocess.run(["perf", "script", "-i", str(data), "-F", "tid,ip,sym"],
                       capture_output=True, text=True, timeout=600)
    samples, cur = [], None
    for line in r.stdout.splitlines():
        if not line.strip():
            if cur:
                samples.append(cur)
            cur = None
            continue
        if not line.startswith("\t"):
            # A sample's header (the tid, right-aligned: it may start with
            # spaces); its frames follow, one per line, each after a tab.
            cur = []
            continue
        parts = line.strip().split(None, 1)
        if cur is None or not parts:
            continue
        addr = parts[0]
        sym = parts[1] if len(parts) > 1 else "[unknown]"
        sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
        cur.append((sym, len(addr) == 16 and addr.startswith("ffff")))
    if cur:
        samples.append(cur)
    total = len(samples)
    if not total:
        return {"error": f"no samples: {r.stderr[-300:]}"}
    selfc, inclc, pairs, kernel_of = {}, {}, {}, {}
    for st in samples:
        leaf, kern = st[0]
        selfc[leaf] = selfc.get(leaf, 0) + 1
        kernel_of[leaf] = kern
        for sym in {sym for sym, _ in st}:
            inclc[sym] = inclc.get(sym, 0) + 1
        caller = next((sym for sym, _ in st
                       if "kamrs::" in sym and not WRAPPER.match(sym)), None)
        if caller and caller != leaf and not kern:
            key = (caller, leaf)
            pairs[key] = pairs.get(key, 0) + 1

    def pct(c):
        return round(100.0 * c / total, 2)

    flat_all = [{"pct": pct(c), "sym": s, "kernel": kernel_of[s]}
                for s, c in sorted(selfc.items(), key=lambda kv: -kv[1])]
    kamrs_incl = [{"pct": pct(c), "self": pct(selfc.get(s, 0)), "sym": s}
                  for s, c in sorted(inclc.items(), key=lambda kv: -kv[1])
                  if "kamrs::" in s and not WRAPPER.match(s)]
    groups = {}
    for label, rx in INCLUSIVE_GROUPS:
        rx = re.compile(rx)
        groups[label] = pct(sum(1 for st in samples if any(rx.search(sym) for sym, _ in st)))
    callee_pairs = [{"pct": pct(c), "caller": k[0], "leaf": k[1]}
                    for k, c in sorted(pairs.items(), key=lambda kv: -kv[1])]
    return {"samples": total, "kernel_pct": pct(sum(1 for st in samples if st[0][1])),
            "flat_all": flat_all, "flat": flat_all[:30],
            "children": kamrs_incl[:60], "groups": groups, "pairs": callee_pairs[:60]}


def write_profile_text(prof, path):
    if prof.get("error"):
        return
    L = [f"# kamrs under the refresh load: perf record -e cpu-clock -F {PERF_FREQ} "
         f"--call-graph dwarf, refresh offered at {prof['rate']}/s for {PROFILE_SECS} s "
         f"({prof['samples']} samples; written by bench/run.sh)", "",
         "## self time (leaf function of each sample)", ""]
    L += [f"{r['pct']:6.2f}%  {'[k] ' if r['kernel'] else ''}{r['sym'][:200]}"
          for r in prof["flat_all"][:80]]
    L += ["", "## kamrs frames by inclusive time (inlined frames included)", ""]
    L += [f"{r['pct']:6.2f}% (self {r['self']:5.2f}%)  {r['sym'][:220]}" for r in prof["children"]]
    L += ["", "## user-space leaves under kamrs code: innermost kamrs frame -> leaf function", ""]
    L += [f"{r['pct']:6.2f}%  {r['caller'][:120]}  ->  {r['leaf'][:100]}" for r in prof["pairs"]]
    L += ["", "## inclusive share of samples whose stack contains ...", ""]
    L += [f"{v:6.2f}%  {k}" for k, v in prof["groups"].items()]
    sc = prof.get("syscalls") or {}
    L += ["", "## syscall pattern during the same load (perf stat on kamrs)", ""]
    if sc.get("error"):
        L.append(f"perf stat failed: {sc['error']}")
    else:
        L += [f"{v:12,d}  {k}  ({v / sc['registers']:.3f} per REGISTER)" if sc.get("registers")
              else f"{v:12,d}  {k}" for k, v in sc.get("counts", {}).items()]
        L.append(f"datagrams per recvmmsg: {sc.get('recv_batch') or 0:.2f}; "
                 f"per sendmmsg: {sc.get('send_batch') or 0:.2f}")
    path.write_text("\n".join(L) + "\n")


def register_parallel(systems, prefix, n, rate, tag):
    ports = {s.key: free_port() for s in systems}
    runs = [Sipp(s, SCEN_REG, prefix, rate, n, 1, ports[s.key], f"{tag}-{s.key}",
                 timeout_s=n / rate * 4 + 60, limit=max(2000, rate)) for s in systems]
    return {s.key: r.wait() for s, r in zip(systems, runs)}, ports


def phase_memory():
    """Fresh instances; PSS of all processes before and after N new AoRs."""
    hs = tuned_hash_size(max(MEM_BINDINGS))
    kam = Kamailio("kamailio-mem", hash_size=hs, label=f"Kamailio tuned (hash_size {hs})")
    kr = Kamrs("kamrs-mem")
    systems = [kam, kr]
    time.sleep(1.0)
    base = {s.key: s.pss_kb() for s in systems}
    base_rss = {s.key: s.rss_kb() for s in systems}
    shm0 = kam.shm_used()
    out = {"base_pss_kb": base, "base_rss_kb": base_rss, "points": [],
           "kamailio_hash_size": kam.hash_size}
    done = {s.key: 0 for s in systems}
    have = 0
    for i, n in enumerate(sorted(MEM_BINDINGS)):
        add = n - have
        log(f"memory: registering {add:,} more AoRs into both (to {n:,})")
        res, _ = register_parallel(systems, f"m{i}x", add, MEM_RATE, f"mem{n}")
        for s in systems:
            done[s.key] += res[s.key]["ok"]
        have = n
        time.sleep(1.5)
        point = {"n": n, "ok": dict(done), "sipp": res}
        for s in systems:
            pss = s.pss_kb()
            point[s.key] = {"pss_kb": pss, "rss_kb": s.rss_kb(),
                            "bytes_per_binding": (pss - base[s.key]) * 1024 / max(1, done[s.key])}
        point["kamailio"]["shm_bytes_per_binding"] = (kam.shm_used() - shm0) / max(1, done["kamailio"])
        out["points"].append(point)
        log(f"  {n:,}: kamrs {point['kamrs']['bytes_per_binding']:.0f} B/binding,"
            f" Kamailio {point['kamailio']['bytes_per_binding']:.0f} B/binding"
            f" (shm {point['kamailio']['shm_bytes_per_binding']:.0f})")
    RESULTS["memory"] = out
    for s in systems:
        stop(s.proc)


def phase_dump():
    """ul.dump of DUMP_AORS AoRs over JSON-RPC while the probe (1 ms) and a
    SIPp refresh load run; stall = the probe's longest wait meanwhile."""
    hs = tuned_hash_size(DUMP_AORS)
    kam = Kamailio("kamailio-dump", hash_size=hs, label=f"Kamailio tuned (hash_size {hs})")
    kr = Kamrs("kamrs-dump")
    systems = [kam, kr]
    log(f"dump: registering {DUMP_AORS:,} AoRs into both")
    res, ports = register_parallel(systems, "d", DUMP_AORS, MEM_RATE, "dumpfill")
    out = {"aors": DUMP_AORS, "fill": res, "kamailio_hash_size": kam.hash_size}
    time.sleep(1.0)
    for s in systems:
        pr = Probe(s, f"dump-{s.key}", interval_us=1000, samples=True)
        bg = Sipp(s, SCEN_REG, "d", DUMP_BG_RATE, DUMP_AORS, 2, ports[s.key],
                  f"dumpbg-{s.key}", timeout_s=DUMP_AORS / DUMP_BG_RATE + 15)
        time.sleep(1.0)
        t_start = time.perf_counter() - pr.t0
        err = None
        extra = {}
        c0 = s.cpu()
        if s is kam:
            try:
                raw, secs = kam.rpc("ul.dump", timeout=300)
            except RuntimeError as e:
                raw, secs, err = b"", None, str(e)
        else:
            dump = WORK / "kamrs-dump.json"
            t0 = time.perf_counter()
            with open(dump, "wb") as f, open(WORK / "kamrsctl-dump.err", "wb") as ef:
                ctl = start_plain([KAMRSCTL, "--ctl", kr.ctl, "--json", "ul.dump"], f, ef)
                rc, ctl_cpu = wait_rusage(ctl, 300)
            secs = time.perf_counter() - t0
            raw = dump.read_bytes()
            extra["client_cpu_s"] = ctl_cpu
            if rc != 0:
                err = (WORK / "kamrsctl-dump.err").read_text()[-300:]
        t_end = time.perf_counter() - pr.t0
        extra["server_cpu_s"] = (s.cpu() - c0) / CLK_TCK
        if s is kr and shutil.which("curl"):
            # The same call without kamrsctl: server time plus transfer.
            t0 = time.perf_counter()
            r = subprocess.run(
                ["curl", "-s", "-o", str(WORK / "kamrs-dump-raw.json"), "--unix-socket",
                 kr.ctl[len("unix:"):], "-H", "Content-Type: application/json", "-d",
                 '{"jsonrpc":"2.0","method":"ul.dump","params":[],"id":1}', "http://localhost/"],
                capture_output=True, timeout=300)
            if r.returncode == 0:
                extra["raw_secs"] = time.perf_counter() - t0
                extra["raw_bytes"] = (WORK / "kamrs-dump-raw.json").stat().st_size
        time.sleep(0.5)
        bgres = bg.interrupt()
        pres = pr.finish()
        samp = pr.samples()
        during = [l for t, l in samp if t_start - 0.002 <= t <= t_end]
        lost_during = sum(1 for l in during if l < 0)
        ok_during = [l for l in during if l >= 0]
        aors = contacts = None
        try:
            doc = json.loads(raw)
            doc = doc.get("result", doc)
            aors = contacts = 0
            for d in doc["Domains"]:
                for a in d["Domain"]["AoRs"]:
                    aors += 1
                    contacts += len(a["Info"]["Contacts"])
        except (ValueError, KeyError, TypeError) as e:
            err = err or f"unparsable dump: {e}"
        out[s.key] = {
            "secs": secs, "bytes": len(raw), "aors": aors, "contacts": contacts,
            "error": err, "probe_all": pres,
            "stall_max_ms": (max(ok_during) / 1000 if ok_during else None),
            "probe_during": len(during), "lost_during": lost_during,
            "bg": bgres, **extra,
        }
        log(f"  {s.label}: ul.dump {fmt_f(secs, 2)}s, {aors} AoRs, {len(raw):,} bytes;"
            f" probe max {out[s.key]['stall_max_ms']} ms, lost {lost_during};"
            f" bg {bgres['ok']}/{bgres['created']} ok, {bgres['retrans']} retrans")
    RESULTS["dump"] = out
    for s in systems:
        stop(s.proc)


def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def phase_startup():
    """kamrs start-up with STARTUP_ROWS bindings in its sqlite store."""
    d = WORK / "startup"
    d.mkdir(exist_ok=True)
    db = d / "location.db"
    store = f'[store]\nbackend = "sqlite"\npath = "{db}"\nmode = "write-through"'
    k = Kamrs("kamrs-schema", store=store)  # creates the schema (Kamailio's)
    stop(k.proc)
    now = time.time()
    t0 = time.time()
    con = sqlite3.connect(db)
    con.execute(
        """INSERT INTO location (ruid, username, domain, contact, received, path, expires, q,
        callid, cseq, last_modified, flags, cflags, user_agent, socket, methods, instance,
        reg_id, server_id, connection_id, keepalive, partition)
        WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?)
        SELECT 'uloc-bench-' || i, 'db' || i, NULL, 'sip:db' || i || '@127.0.0.1:5061',
        'sip:127.0.0.1:5061', NULL, ?, -1.0, 'db-' || i || '@bench', 1, ?, 0, 0, 'SIPp',
        'udp:127.0.0.1:5060', 4294967295, NULL, 0, 0, -1, 0, 0 FROM c""",
        (STARTUP_ROWS, utc(now + 3600), utc(now)))
    con.commit()
    con.close()
    gen = time.time() - t0
    size = sum(p.stat().st_size for p in d.glob("location.db*"))
    log(f"startup: {STARTUP_ROWS:,} rows written in {gen:.1f}s ({size / 2**20:.0f} MiB); starting kamrs")
    k = Kamrs("kamrs-startup", store=store, ready_timeout=300)
    rss = k.rss_kb()
    m = re.search(r"preloaded (\d+) bindings .* in (\d+) ms", k.errfile.read_text())
    RESULTS["startup"] = {"rows": STARTUP_ROWS, "secs": k.startup_s, "rss_kb": rss,
                          "db_bytes": size, "gen_secs": gen,
                          "preloaded": int(m.group(1)) if m else None,
                          "preload_ms": int(m.group(2)) if m else None}
    log(f"  ready after {k.startup_s:.2f}s, preloaded {m.group(1) if m else '?'} bindings, RSS {rss // 1024} MiB")
    stop(k.proc)


def phase_stores():
    """New-AoR ladders for kamrs with each store mode and digest auth."""
    out = {}
    redis = None
    if any(s.startswith("redis") for s in STORE_SETUPS) and shutil.which("redis-server"):
        rport = free_both_port()
        redis = start(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                       "--save", "", "--appendonly", "no"], "redis")
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", rport), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        redis_url = f"redis://127.0.0.1:{rport}"
    users_csv = WORK / "users.csv"
    subs = WORK / "subscribers.toml"
    if "digest" in STORE_SETUPS:
        import hashlib
        n = max(STORE_RATES) * STORE_STEP_SECS
        with open(subs, "w") as sf, open(users_csv, "w") as cf:
            cf.write("SEQUENTIAL\n")
            for i in range(n):
                u, p = f"b{i}", f"pw{i}"
                ha1 = hashlib.md5(f"{u}:example.com:{p}".encode()).hexdigest()
                sf.write(f'[[subscriber]]\nusername = "{u}"\ndomain = "example.com"\nha1 = "{ha1}"\n\n')
                cf.write(f"{u};[authentication username={u} password={p}];\n")
    for setup in STORE_SETUPS:
        d = WORK / f"store-{setup}"
        d.mkdir(exist_ok=True)
        store, auth, scen = "", "", SCEN_REG
        if setup == "memory":
            store = '[store]\nbackend = "none"'
        elif setup.startswith("sqlite"):
            mode = "write-through" if setup.endswith("wt") else "write-back"
            store = f'[store]\nbackend = "sqlite"\npath = "{d}/location.db"\nmode = "{mode}"'
        elif setup.startswith("redis"):
            if redis is None:
                out[setup] = {"error": "redis-server not installed"}
                continue
            mode = "write-through" if setup.endswith("wt") else "write-back"
            store = f'[store]\nbackend = "redis"\nurl = "{redis_url}"\nmode = "{mode}"'
            if mode == "write-back":
                store += "\nwrite_back_interval = 200"
        elif setup == "digest":
            auth = (f'[auth]\nmode = "digest"\nalgorithms = ["MD5"]\nsubscribers = "{subs}"\n'
                    f'secret_file = "{d}/secret"')
            scen = SCEN_AUTH
        k = Kamrs(f"kamrs-{setup}", store=store, auth=auth)
        port = free_port()
        steps, best = [], None
        for rate in STORE_RATES:
            calls = rate * STORE_STEP_SECS
            # Two tries: one hiccup of a shared machine does not end the climb.
            for attempt in ("a", "b"):
                name = f"store-{setup}-{rate}{attempt}"
                if setup == "digest":
                    # No probe here: it does not answer challenges, and its
                    # 401s would count in the CPU of the registrations.
                    c0 = k.cpu()
                    sp = Sipp(k, scen, "x", rate, calls, 1, port, name,
                              timeout_s=STORE_STEP_SECS + 12, extra=["-inf", str(users_csv)])
                    res = sp.wait()
                    c1 = k.cpu()
                    row = dict(res)
                    row.update({"rate": rate, "achieved": res["ok"] / res["secs"],
                                "cpu_s": (c1 - c0) / CLK_TCK, "probe": {},
                                "sustained": sustained(res, rate, STORE_STEP_SECS)})
                    # Per registration: REGISTER, 401, REGISTER with credentials, 200.
                    row["cpu_us_per_reg"] = row["cpu_s"] * 1e6 / res["ok"] if res["ok"] else None
                else:
                    row = measured_step(k, scen, f"s{rate}{attempt}x", rate, calls, 1, port,
                                        name, STORE_STEP_SECS)
                row["attempt"] = attempt
                log(f"  {setup:10} {rate:6}/s ({attempt}): {row['achieved']:8.0f}/s ok={row['ok']}/{calls}"
                    f" retr={row['retrans']} cpu={fmt_f(row['cpu_us_per_reg'])}us"
                    f" p99={row['probe'].get('p99_us')} {'ok' if row['sustained'] else 'NOT sustained'}")
                time.sleep(0.3)
                if row["sustained"]:
                    break
            steps.append(row)
            if row["sustained"]:
                best = row
            else:
                break
        errs = [l for l in k.errfile.read_text().splitlines() if " ERROR " in l or " WARN " in l]
        out[setup] = {"steps": steps, "best": best, "log": errs[:5]}
        stop(k.proc)
    if redis is not None:
        stop(redis)
    RESULTS["stores"] = out


# -------------------------------------------------------------------- report

def machine():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            mem = int(line.split()[1])

    def first(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            return (r.stdout + r.stderr).strip().splitlines()[0].strip()
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    git = first(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                            "kamrs", "kamrsctl", "common", "Cargo.toml", "Cargo.lock"],
                           capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "ram_gib": mem / 2**20,
        "kernel": platform.release(),
        "kamrs": first([KAMRS, "--version"]) + f" (git {git}{' + uncommitted changes' if dirty else ''})",
        "kamailio": first(["kamailio", "-v"]),
        "sipp": first(["sipp", "-v"]).replace("SIPp ", "SIPp ").strip(),
        "rustc": first(["rustc", "--version"]),
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }


def main():
    for f in ("pids",):
        (WORK / f).touch()
    RESULTS["machine"] = machine()
    RESULTS["knobs"] = {k: os.environ.get(k) for k in (
        "RATES", "STEP_SECS", "WORKERS", "PREFILL_RATE", "PROBE_INTERVAL_US", "MEM_BINDINGS",
        "MEM_RATE", "DUMP_AORS", "DUMP_BG_RATE", "STARTUP_ROWS", "STORE_RATES",
        "STORE_STEP_SECS", "STORE_SETUPS", "PROFILE_RATE", "PROFILE_SECS", "PHASES",
        "KAM_HASH_SIZE", "TUTORIAL_RATES", "FLOOR", "FLOOR_REPLY_LEN", "SIPP_BUFF", "PERF_FREQ",
        "SCHED_SECS")}
    RESULTS["config"] = {"rates": RATES, "step_secs": STEP_SECS, "workers": WORKERS,
                         "prefill_rate": PREFILL_RATE, "probe_interval_us": PROBE_INTERVAL_US,
                         "mem_bindings": MEM_BINDINGS, "mem_rate": MEM_RATE,
                         "dump_aors": DUMP_AORS, "dump_bg_rate": DUMP_BG_RATE,
                         "startup_rows": STARTUP_ROWS, "store_rates": STORE_RATES,
                         "store_step_secs": STORE_STEP_SECS, "store_setups": STORE_SETUPS,
                         "profile_rate": PROFILE_RATE, "profile_secs": PROFILE_SECS,
                         "kam_shm_mb": KAM_SHM_MB, "kam_pkg_mb": KAM_PKG_MB,
                         "kam_hash_size": KAM_HASH_SIZE, "tutorial_rates": TUTORIAL_RATES,
                         "floor": FLOOR, "sipp_buff": SIPP_BUFF,
                         "perf_freq": PERF_FREQ, "sched_secs": SCHED_SECS}
    RESULTS["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS["build_secs"] = float(os.environ.get("BUILD_SECS", "0") or 0)
    try:
        if "matrix" in PHASES or "profile" in PHASES:
            t = time.time()
            log(f"matrix: rates {RATES}, {STEP_SECS}s per step, workers {WORKERS}")
            kam, kr, ports = phase_matrix() if "matrix" in PHASES else (None, None, None)
            RESULTS["phase_secs"]["matrix"] = time.time() - t
            if "profile" in PHASES and kr is not None:
                t = time.time()
                log(f"profile: perf on kamrs, refresh at {PROFILE_RATE}/s for {PROFILE_SECS}s")
                phase_profile(kr, ports["kamrs"])
                RESULTS["phase_secs"]["profile"] = time.time() - t
            for s in (kam, kr):
                if s:
                    stop(s.proc)
        if "kamtuned" in PHASES:
            log("kamtuned: no longer a phase: the matrix's Kamailio is the tuned one and the "
                "tutorial's is its TUTORIAL_RATES column")
        for name, fn in (("memory", phase_memory), ("dump", phase_dump),
                         ("startup", phase_startup), ("stores", phase_stores)):
            if name in PHASES:
                t = time.time()
                log(f"{name}:")
                fn()
                RESULTS["phase_secs"][name] = time.time() - t
    finally:
        stop_all()
    RESULTS["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    RESULTS["total_secs"] = time.time() - T_START + RESULTS["build_secs"]
    (OUT_DIR / "results.json").write_text(json.dumps(RESULTS, indent=1, default=str))
    import report
    report.write(RESULTS, OUT_DIR)
    log(f"done in {time.time() - T_START:.0f}s: {OUT_DIR / 'RESULTS.md'}, {OUT_DIR / 'results.png'}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    sys.path.insert(0, str(BENCH))
    main()
