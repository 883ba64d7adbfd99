#!/usr/bin/env python3
"""Hostile-network figures for the README's security section.

Two attacks on a release kamrs with its default limits, on loopback only:

1. Table filling: new AoRs as fast as kamrs answers them, every string at
   the most kamrs accepts (Call-ID and User-Agent at their bounds, a long
   Contact URI, a 4 KB +sip.instance), until well past the table's bound.
   Reports what was accepted and refused, kamrs's own estimate of the
   table's bytes, and the process's RSS growth against `max_table_bytes`.
2. Pike under a full source table: one request from each of `max_tracked`
   + 1000 distinct 127/8 addresses (pike's `trusted` emptied so loopback
   counts), then a flood from one more address, then one request from a
   quiet address. Reports how much of the flood got through.

Run through bench/attack-bench.sh (builds the release binaries). Every
process it starts is ended by its pid; every loop is bounded.
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KAMRS = os.environ.get("KAMRS_BIN", os.path.join(ROOT, "target/release/kamrs"))
KAMRSCTL = os.environ.get("KAMRSCTL_BIN", os.path.join(ROOT, "target/release/kamrsctl"))
# Requests sent for the table-filling attack: past the default bound
# (about 500,000 bindings with every string at its maximum).
FILL = int(os.environ.get("FILL", "700000"))
WINDOW = 256  # requests in flight


class Kamrs:
    def __init__(self, toml_extra):
        self.dir = tempfile.mkdtemp(prefix="kamrs-attack-")
        self.ctl = os.path.join(self.dir, "ctl.sock")
        conf = os.path.join(self.dir, "kamrs.toml")
        with open(conf, "w") as f:
            f.write('listen = ["udp:127.0.0.1:0"]\n')
            f.write(toml_extra)
            f.write('\n[ctl]\nlisten = "unix:%s"\n' % self.ctl)
        self.err = open(os.path.join(self.dir, "stderr"), "w")
        self.proc = subprocess.Popen(
            [KAMRS, "--config", conf],
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
        )
        self.port = None
        deadline = time.time() + 20
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.match(r"listening udp:127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            if line.strip() == "ready":
                break
        if self.port is None:
            self.stop()
            sys.exit("kamrs did not start; see %s" % self.err.name)

    def rss(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stats(self, what="all"):
        out = subprocess.run(
            [KAMRSCTL, "--ctl", "unix:" + self.ctl, "call", "stats.get_statistics", what],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        got = {}
        for item in json.loads(out or "[]"):
            name, _, value = item.partition(" = ")
            try:
                got[name] = int(value)
            except ValueError:
                pass
        return got

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def register(i, port, local_port, long=True):
    user = "fill%07d" % i
    call_id = ("%d-" % i).ljust(255 if long else 20, "c")
    ua = ("attack-ua-%d-" % i).ljust(255 if long else 20, "u")
    host = "h%s.example.com" % ("x" * (400 if long else 1))
    instance = "u" * (4000 if long else 8)
    return (
        "REGISTER sip:example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%d;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:%s@example.com>;tag=%d\r\n"
        "To: <sip:%s@example.com>\r\n"
        "Call-ID: %s\r\n"
        "CSeq: 1 REGISTER\r\n"
        "User-Agent: %s\r\n"
        'Contact: <sip:%s@%s:5060>;+sip.instance="<urn:uuid:%s>"\r\n'
        "Expires: 3600\r\n"
        "Content-Length: 0\r\n\r\n"
        % (local_port, i, user, i, user, call_id, ua, user, host, instance)
    ).encode()


def status_of(reply):
    try:
        return int(reply[8:11])
    except ValueError:
        return 0


def table_fill():
    k = Kamrs("")
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.settimeout(2)
        lport = sock.getsockname()[1]
        rss0 = k.rss()
        counts = {}
        sent = answered = 0
        started = time.time()
        while sent < FILL:
            n = min(WINDOW, FILL - sent)
            for j in range(n):
                sock.sendto(register(sent + j, k.port, lport), ("127.0.0.1", k.port))
            sent += n
            for _ in range(n):
                try:
                    reply = sock.recv(65535)
                except socket.timeout:
                    break
                answered += 1
                s = status_of(reply)
                counts[s] = counts.get(s, 0) + 1
        secs = time.time() - started
        rss1 = k.rss()
        st = k.stats()
        return {
            "sent": sent,
            "answered": answered,
            "by_status": counts,
            "seconds": round(secs, 1),
            "rss_before": rss0,
            "rss_after": rss1,
            "table_bytes": st.get("usrloc:table_bytes"),
            "table_full": st.get("usrloc:table_full"),
            "contacts": st.get("usrloc:registered_contacts", st.get("usrloc:location_contacts")),
        }
    finally:
        k.stop()


def addr(i):
    # 127.1.0.1 upwards, never 127.0.0.x (the flooder and the quiet source
    # use 127.0.0.2 and 127.0.0.3).
    i += 1 << 16
    return "127.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, (i & 255) or 1)


def options(i, lport):
    return (
        "OPTIONS sip:example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKp%d;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:p@example.com>;tag=%d\r\n"
        "To: <sip:p@example.com>\r\n"
        "Call-ID: p%d\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n" % (lport, i, i, i)
    ).encode()


def pike_full():
    k = Kamrs("[pike]\ntrusted = []\n")
    try:
        tracked = int(os.environ.get("MAX_TRACKED", "200000"))
        rss0 = k.rss()
        started = time.time()
        seen = set()
        for i in range(tracked + 1000):
            a = addr(i)
            if a in seen:
                continue
            seen.add(a)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((a, 0))
            s.sendto(options(i, s.getsockname()[1]), ("127.0.0.1", k.port))
            s.close()
        fill_secs = time.time() - started
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        flood.bind(("127.0.0.2", 0))
        flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        lport = flood.getsockname()[1]
        sent = 2000
        for i in range(sent):
            flood.sendto(options(10_000_000 + i, lport), ("127.0.0.1", k.port))
            if i % 100 == 99:
                time.sleep(0.01)  # ~2000 in 0.2-0.5 s: a flood, not a kernel-buffer test
        flood.settimeout(1.0)
        answered = 0
        while True:
            try:
                flood.recv(65535)
                answered += 1
            except socket.timeout:
                break
        quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        quiet.bind(("127.0.0.3", 0))
        quiet.settimeout(2)
        quiet.sendto(options(20_000_000, quiet.getsockname()[1]), ("127.0.0.1", k.port))
        try:
            quiet.recv(65535)
            quiet_ok = True
        except socket.timeout:
            quiet_ok = False
        st = k.stats()
        return {
            "sources": len(seen),
            "fill_seconds": round(fill_secs, 1),
            "flood_sent": sent,
            "flood_answered": answered,
            "quiet_answered": quiet_ok,
            "evicted": st.get("pike:evicted"),
            "blocked_sources": st.get("pike:blocked_sources"),
            "dropped": st.get("pike:dropped_requests"),
            "rss_growth": k.rss() - rss0,
        }
    finally:
        k.stop()


def main():
    fill = table_fill()
    pike = pike_full()
    mib = 1 << 20
    growth = fill["rss_after"] - fill["rss_before"]
    lines = [
        "| attack | figure |",
        "|---|---|",
        "| table filling: REGISTERs sent / answered | %d / %d in %.1f s |"
        % (fill["sent"], fill["answered"], fill["seconds"]),
        "| table filling: 200 / 503 | %d / %d |"
        % (fill["by_status"].get(200, 0), fill["by_status"].get(503, 0)),
        "| table filling: table estimate (`usrloc:table_bytes`) | %.0f MiB (bound 1024 MiB) |"
        % ((fill["table_bytes"] or 0) / mib),
        "| table filling: RSS growth | %.0f MiB |" % (growth / mib),
        "| pike: distinct sources, one request each, before the flood | %d in %.1f s |"
        % (pike["sources"], pike["fill_seconds"]),
        "| pike: flood requests answered | %d of %d |"
        % (pike["flood_answered"], pike["flood_sent"]),
        "| pike: a quiet source answered | %s |" % ("yes" if pike["quiet_answered"] else "NO"),
        "| pike: `pike:evicted` / `pike:dropped_requests` | %s / %s |"
        % (pike["evicted"], pike["dropped"]),
        "| pike: RSS growth | %.1f MiB |" % (pike["rss_growth"] / mib),
    ]
    print("\n".join(lines))
    print(json.dumps({"fill": fill, "pike": pike}, indent=1), file=sys.stderr)


if __name__ == "__main__":
    main()
