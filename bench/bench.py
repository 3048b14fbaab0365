#!/usr/bin/env python3
"""Side-by-side benchmark of the gateway against the floors it is measured by (BENCHMARKS.md).

In one sitting, with the same load generator (`loadgen`) and the same pacing for every path:

  direct   the mock population database called directly (mutual TLS)
  gateway  LookupCitizen through the gateway: mutual TLS both sides, officer token, limits set
           not to trip, policy, field filtering, an fsynced audit record per call
  bare     a bare tonic pass-through proxy (bench/bare-proxy) forwarding GetCitizen
  nginx    nginx grpc_pass with mutual TLS on the front, in front of the same database
  canned   a bare tonic server answering GetCitizen with one fixed record of the same size (the
           floor for the mock database's own cost)

Each phase (closed loop at saturation, open loop at 1,000 and 2,000 calls/s) runs every path in
turn, and the whole is repeated `--rounds` times, so paths are interleaved. CPU per call comes
from /proc/<pid>/stat of each server process (utime + stime), peak RSS from VmHWM. The machine's
other load (busy CPU not spent by the servers or the load generator) is recorded for every run,
and a run disturbed by more than --max-other is repeated once.

`--long`: only the database and the gateway; the gateway's trail grows to --long-records and
CPU per call, RSS and the audit directory's size are reported at each stage.

Only loopback addresses are used; every load is bounded in calls and seconds.
"""

import argparse
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REL = os.path.join("target", "release")
TICK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: {what} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"bench: {what} did not listen on {port} within {timeout}s")


def ticks(pid):
    """utime + stime of one process, in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])
    except (OSError, IndexError, ValueError):
        return 0


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
                if int(rest[1]) == pid:
                    out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


class Server:
    def __init__(self, name, cmd, port, env=None, log=None, tree=False):
        self.name, self.port, self.tree = name, port, tree
        self.log = open(log, "w") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            cmd, env={**os.environ, **(env or {})}, stdout=self.log, stderr=self.log
        )
        wait_port(port, self.proc, name)

    def pids(self):
        pids = [self.proc.pid]
        if self.tree:
            pids += children(self.proc.pid)
        return pids

    def ticks(self):
        return sum(ticks(p) for p in self.pids())

    def rss_peak_kb(self):
        return max(status_kb(p, "VmHWM") for p in self.pids())

    def rss_now_kb(self):
        return sum(status_kb(p, "VmRSS") for p in self.pids())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(2 if not self.tree else 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


RESULT = re.compile(r": (\d+) calls \((\d+) errors\) in ([\d.]+)s = (\d+) calls/s")
LATENCY = re.compile(
    r"p50 ([\d.]+)\s+p90 ([\d.]+)\s+p99 ([\d.]+)\s+p99\.9 ([\d.]+)\s+max ([\d.]+)"
)


def loadgen(args):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [os.path.join(REL, "loadgen")] + args, capture_output=True, text=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit(f"bench: loadgen {' '.join(args)} failed:\n{out.stderr}")
    m, lat = RESULT.search(out.stdout), LATENCY.search(out.stdout)
    if not m or not lat:
        sys.exit(f"bench: cannot read loadgen's output:\n{out.stdout}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "calls": int(m.group(1)),
        "errors": int(m.group(2)),
        "seconds": float(m.group(3)),
        "rate": int(m.group(4)),
        "p50": float(lat.group(1)),
        "p99": float(lat.group(3)),
        "p999": float(lat.group(4)),
        "loadgen_cpu": cpu,
        "first_error": next(
            (l for l in out.stderr.splitlines() if l.startswith("first error")), ""
        ),
    }


def measure(servers, hop, args, max_other):
    """One loadgen run; CPU per call for every server; repeated once if disturbed."""
    for attempt in range(2):
        t0 = {s.name: s.ticks() for s in servers}
        m0, w0 = machine_busy(), time.time()
        r = loadgen(args)
        t1 = {s.name: s.ticks() for s in servers}
        m1, wall = machine_busy(), time.time() - w0
        spent = {n: (t1[n] - t0[n]) / TICK for n in t0}
        other = max(0.0, (m1 - m0) / TICK - sum(spent.values()) - r["loadgen_cpu"])
        r["other"] = other / (wall * NCPU)
        r["loadavg"] = loadavg()
        calls = max(r["calls"], 1)
        r["cpu_us"] = {n: spent[n] * 1e6 / calls for n in spent}
        r["hop_cpu_us"] = r["cpu_us"].get(hop, 0.0) if hop else 0.0
        r["disturbed"] = r["other"] > max_other
        if not r["disturbed"] or attempt == 1:
            r["attempts"] = attempt + 1
            return r
        print(f"    disturbed ({r['other']:.0%} other load): repeating", flush=True)
    return r


def prepare(env_dir, citizens, seed):
    subprocess.run(
        [
            os.path.join(REL, "lienthong-dev"),
            "--dir",
            env_dir,
            "prepare",
            "--citizens",
            str(citizens),
            "--seed",
            str(seed),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def start_mock(d, port, admin_port):
    pki = os.path.join(d, "pki")
    return Server(
        "mock",
        [
            os.path.join(REL, "mock-csdl"),
            "serve",
            "--store",
            os.path.join(d, "csdl.sled"),
            "--listen",
            f"127.0.0.1:{port}",
            "--admin-listen",
            f"127.0.0.1:{admin_port}",
            "--tls-cert",
            os.path.join(pki, "mock-csdl.pem"),
            "--tls-key",
            os.path.join(pki, "mock-csdl.key"),
            "--client-ca",
            os.path.join(pki, "ca.pem"),
            "--data-client",
            "000.00.00.LTG",
            "--data-client",
            "000.00.00.DEV",
        ],
        port,
        log=os.path.join(d, "mock.log"),
    )


def gateway_env(port, upstream_port):
    big = "1000000"
    return {
        "LIENTHONG_GATEWAY__LISTEN": f'"127.0.0.1:{port}"',
        "LIENTHONG_GATEWAY__UPSTREAM__ENDPOINT": f'"https://127.0.0.1:{upstream_port}"',
        "LIENTHONG_GATEWAY__LIMITS__PER_SECOND": big,
        "LIENTHONG_GATEWAY__LIMITS__BURST": big,
        "LIENTHONG_GATEWAY__UNITS__0__RATE__PER_SECOND": big,
        "LIENTHONG_GATEWAY__UNITS__0__RATE__BURST": big,
        "LIENTHONG_GATEWAY__UNITS__0__OFFICER_RATE__PER_SECOND": big,
        "LIENTHONG_GATEWAY__UNITS__0__OFFICER_RATE__BURST": big,
        "LIENTHONG_GATEWAY__VERIFICATION__BUDGET_PER_DAY": big,
        "LIENTHONG_GATEWAY__UPSTREAM__MAX_IN_FLIGHT": big,
        "LIENTHONG_GATEWAY__UPSTREAM__MAX_IN_FLIGHT_PER_UNIT": big,
        "RUST_LOG": "warn",
    }


def start_gateway(d, port, upstream_port):
    return Server(
        "gateway",
        [os.path.join(REL, "lienthong-gateway"), "--config", os.path.join(d, "gateway.toml")],
        port,
        env=gateway_env(port, upstream_port),
        log=os.path.join(d, "gateway.log"),
    )


NGINX_CONF = """
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/nginx-tmp;
    upstream mock {{ server 127.0.0.1:{upstream}; keepalive 64; keepalive_requests 100000000; }}
    server {{
        listen 127.0.0.1:{port} ssl http2;
        # Without these nginx closes a client connection after 1,000 calls (GOAWAY), and the
        # calls in flight on it fail.
        keepalive_requests 100000000;
        http2_max_requests 100000000;
        ssl_certificate {pki}/gateway.pem;
        ssl_certificate_key {pki}/gateway.key;
        ssl_client_certificate {pki}/ca.pem;
        ssl_verify_client on;
        location / {{
            grpc_pass grpcs://mock;
            grpc_ssl_certificate {pki}/gateway-upstream.pem;
            grpc_ssl_certificate_key {pki}/gateway-upstream.key;
            grpc_ssl_trusted_certificate {pki}/ca.pem;
            grpc_ssl_verify on;
            grpc_ssl_name localhost;
            grpc_ssl_session_reuse on;
        }}
    }}
}}
"""


def start_nginx(d, port, upstream_port):
    nginx = next(
        (p for p in ("/usr/sbin/nginx", "/usr/bin/nginx") if os.path.exists(p)), None
    )
    if nginx is None:
        print("nginx not found: skipping the nginx path", file=sys.stderr)
        return None
    conf = os.path.join(d, "nginx.conf")
    os.makedirs(os.path.join(d, "nginx-tmp"), exist_ok=True)
    with open(conf, "w") as f:
        f.write(
            NGINX_CONF.format(
                workers=NCPU,
                d=d,
                port=port,
                upstream=upstream_port,
                pki=os.path.join(d, "pki"),
            )
        )
    return Server(
        "nginx",
        [nginx, "-c", conf, "-p", d, "-g", "daemon off;"],
        port,
        log=os.path.join(d, "nginx.log"),
        tree=True,
    )


def start_bare(d, name, port, upstream_port, canned=False):
    cmd = [
        os.path.join(REL, "bare-proxy"),
        "--listen",
        f"127.0.0.1:{port}",
        "--upstream",
        f"https://127.0.0.1:{upstream_port}",
        "--dir",
        d,
    ]
    if canned:
        cmd.append("--canned")
    return Server(name, cmd, port, log=os.path.join(d, f"{name}.log"))


def fmt_row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def side_by_side(a):
    d = tempfile.mkdtemp(prefix="lienthong-bench-")
    print(f"environment: {d} ({a.citizens} citizens, seed {a.seed})", flush=True)
    prepare(d, a.citizens, a.seed)
    ports = {n: free_port() for n in ("mock", "admin", "gateway", "bare", "nginx", "canned")}
    mock = start_mock(d, ports["mock"], ports["admin"])
    servers = [mock]
    try:
        servers.append(start_gateway(d, ports["gateway"], ports["mock"]))
        servers.append(start_bare(d, "bare", ports["bare"], ports["mock"]))
        servers.append(start_bare(d, "canned", ports["canned"], ports["mock"], canned=True))
        ng = start_nginx(d, ports["nginx"], ports["mock"])
        if ng:
            servers.append(ng)
        names = {s.name for s in servers}
        sample = ["--dir", d, "--citizens", str(a.sample), "--seed", str(a.seed)]
        paths = [
            ("direct", "mock", ["csdl", "--endpoint", f"https://127.0.0.1:{ports['mock']}"]),
            ("gateway", "gateway", ["gateway", "--endpoint", f"https://127.0.0.1:{ports['gateway']}"]),
            ("bare", "bare", ["csdl", "--endpoint", f"https://127.0.0.1:{ports['bare']}"]),
            ("nginx", "nginx", ["csdl", "--endpoint", f"https://127.0.0.1:{ports['nginx']}"]),
            ("canned", "canned", ["csdl", "--endpoint", f"https://127.0.0.1:{ports['canned']}"]),
        ]
        paths = [p for p in paths if p[1] in names and (not a.paths or p[0] in a.paths)]
        conn = ["--connections", str(a.connections)]
        phases = [
            ("closed", ["--concurrency", str(a.concurrency), "--requests", "10000000", "--max-seconds", str(a.seconds)]),
        ] + [
            (f"open {r}/s", ["--rate", str(r), "--concurrency", "256", "--requests", str(r * a.seconds), "--max-seconds", str(a.seconds + 5)])
            for r in a.rates
        ]
        # Warm up every path (connections, caches, the token cache).
        for name, hop, cmd in paths:
            loadgen(cmd + sample + conn + ["--concurrency", "16", "--requests", "2000"])
        results = {}
        for rnd in range(a.rounds):
            for phase, pargs in phases:
                for name, hop, cmd in paths:
                    r = measure(servers, hop, cmd + sample + conn + pargs, a.max_other)
                    results.setdefault((name, phase), []).append(r)
                    print(
                        f"round {rnd + 1} {phase:>12} {name:>8}: {r['rate']:>6}/s p50 {r['p50']:.2f} p99 {r['p99']:.2f} ms, "
                        f"hop {r['hop_cpu_us']:.1f} µs/call, mock {r['cpu_us'].get('mock', 0):.1f} µs/call, "
                        f"errors {r['errors']}, other load {r['other']:.0%} (load average {r['loadavg']})"
                        f"{' (disturbed)' if r['disturbed'] else ''}",
                        flush=True,
                    )
                    if r["errors"]:
                        print(f"    {r['first_error']}", flush=True)
        peaks = {s.name: s.rss_peak_kb() for s in servers}
        trail = os.path.join(d, "audit")
        trail_file = next((os.path.join(trail, f) for f in os.listdir(trail) if f.endswith(".trail")), None)
        report(a, paths, phases, results, peaks, trail, trail_file)
    finally:
        for s in reversed(servers):
            s.stop()
        if not a.keep:
            subprocess.run(["rm", "-rf", d])


def med(rs, key):
    return statistics.median(r[key] if not callable(key) else key(r) for r in rs)


def report(a, paths, phases, results, peaks, trail, trail_file):
    print()
    print(f"## Side by side ({a.rounds} rounds, interleaved; medians; {NCPU} CPUs; "
          f"{a.connections} connections; closed loop at {a.concurrency} in flight)")
    print()
    print(fmt_row(["phase", "path", "calls/s", "p50 ms", "p99 ms", "p99.9 ms", "hop CPU µs/call", "mock CPU µs/call", "errors", "other load (max)"]))
    print(fmt_row(["---"] * 10))
    for phase, _ in phases:
        for name, hop, _ in paths:
            rs = results[(name, phase)]
            print(fmt_row([
                phase, name, f"{med(rs, 'rate'):.0f}", f"{med(rs, 'p50'):.2f}", f"{med(rs, 'p99'):.2f}",
                f"{med(rs, 'p999'):.2f}", f"{med(rs, 'hop_cpu_us'):.1f}" if name != "direct" else "—",
                f"{med(rs, lambda r: r['cpu_us'].get('mock', 0)):.1f}" if name != "canned" else "—",
                sum(r["errors"] for r in rs), f"{max(r['other'] for r in rs):.0%}",
            ]))
    print()
    print(fmt_row(["process", "peak RSS MB"]))
    print(fmt_row(["---"] * 2))
    for n, kb in peaks.items():
        print(fmt_row([n, f"{kb / 1024:.1f}"]))
    if trail_file:
        ts, ds = os.path.getsize(trail_file), du(trail)
        print()
        print(f"gateway trail: {ts / 2**20:.1f} MiB file, audit directory {ds / 2**20:.1f} MiB ({ds / max(ts, 1):.2f}×)")
    print()
    print("## Ratios (same run)")
    def ratio(num, den, phase, key):
        if (num, phase) not in results or (den, phase) not in results:
            return None
        return med(results[(num, phase)], key) / max(med(results[(den, phase)], key), 1e-9)
    rows = []
    for phase, _ in phases:
        rows.append((f"gateway / bare hop CPU per call, {phase}", ratio("gateway", "bare", phase, "hop_cpu_us"), "≤ 1.5"))
    rows.append(("gateway / bare throughput, closed loop", ratio("gateway", "bare", "closed", "rate"), "≥ 0.8"))
    for phase, _ in phases:
        if phase.startswith("open") and ("gateway", phase) in results and ("bare", phase) in results:
            diff = med(results[("gateway", phase)], "p99") - med(results[("bare", phase)], "p99")
            print(f"- p99 gateway − bare, {phase}: {diff:+.2f} ms (target ≤ +1 ms at 2,000/s)")
    for phase, _ in phases:
        if ("direct", phase) in results and ("canned", phase) in results:
            mock = med(results[("direct", phase)], lambda r: r["cpu_us"].get("mock", 0))
            canned = med(results[("canned", phase)], "hop_cpu_us")
            rows.append((f"mock / canned server CPU per call, {phase}", mock / max(canned, 1e-9), "≤ 2"))
    for label, v, target in rows:
        if v is not None:
            print(f"- {label}: {v:.2f} (target {target})")


def long_run(a):
    d = tempfile.mkdtemp(prefix="lienthong-bench-long-")
    print(f"environment: {d} ({a.citizens} citizens, seed {a.seed})", flush=True)
    prepare(d, a.citizens, a.seed)
    ports = {n: free_port() for n in ("mock", "admin", "gateway")}
    mock = start_mock(d, ports["mock"], ports["admin"])
    servers = [mock]
    try:
        gw = start_gateway(d, ports["gateway"], ports["mock"])
        servers.append(gw)
        sample = ["--dir", d, "--citizens", str(a.sample), "--seed", str(a.seed)]
        cmd = ["gateway", "--endpoint", f"https://127.0.0.1:{ports['gateway']}", "--connections", str(a.connections)]
        sent = 0
        stages = [0] + [a.long_records * k // 4 for k in (1, 2, 3, 4)]
        print()
        print(fmt_row(["trail records", "closed calls/s", "gateway µs/call closed", "open 2000/s p99 ms", "gateway µs/call at 2000/s", "gateway RSS MB", "peak RSS MB", "trail MiB", "audit dir MiB", "dir/trail"]))
        print(fmt_row(["---"] * 10))
        for target in stages:
            if target > sent:
                r = loadgen(cmd + sample + ["--concurrency", str(a.concurrency), "--requests", str(target - sent), "--max-seconds", "3600"])
                sent += r["calls"]
            closed = measure(servers, "gateway", cmd + sample + ["--concurrency", str(a.concurrency), "--requests", "10000000", "--max-seconds", str(a.seconds)], a.max_other)
            sent += closed["calls"]
            opened = measure(servers, "gateway", cmd + sample + ["--rate", "2000", "--concurrency", "256", "--requests", str(2000 * a.seconds), "--max-seconds", str(a.seconds + 5)], a.max_other)
            sent += opened["calls"]
            trail = os.path.join(d, "audit")
            tf = next((os.path.join(trail, f) for f in os.listdir(trail) if f.endswith(".trail")), None)
            ts = os.path.getsize(tf) if tf else 0
            ds = du(trail)
            print(fmt_row([
                f"{sent:,}", closed["rate"], f"{closed['hop_cpu_us']:.1f}", f"{opened['p99']:.2f}",
                f"{opened['hop_cpu_us']:.1f}", f"{gw.rss_now_kb() / 1024:.0f}", f"{gw.rss_peak_kb() / 1024:.0f}",
                f"{ts / 2**20:.0f}", f"{ds / 2**20:.0f}", f"{ds / max(ts, 1):.2f}",
            ]), flush=True)
    finally:
        for s in reversed(servers):
            s.stop()
        if not a.keep:
            subprocess.run(["rm", "-rf", d])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--long", action="store_true", help="grow the gateway's trail and report per stage")
    p.add_argument("--long-records", type=int, default=1_000_000)
    p.add_argument("--citizens", type=int, default=100_000, help="the mock database's population")
    p.add_argument("--sample", type=int, default=50_000, help="distinct citizens asked for")
    p.add_argument("--seed", type=int, default=6)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=int, default=8, help="length of each measured run")
    p.add_argument("--rates", type=int, nargs="*", default=[1000, 2000])
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--max-other", type=float, default=0.10, help="other load that marks a run disturbed")
    p.add_argument("--keep", action="store_true", help="keep the environment directory")
    p.add_argument("--paths", nargs="*", default=[], help="only these paths (direct gateway bare nginx canned)")
    a = p.parse_args()
    if a.long:
        long_run(a)
    else:
        side_by_side(a)


if __name__ == "__main__":
    main()
