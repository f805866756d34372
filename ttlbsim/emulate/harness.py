"""The emulation proper: two network namespaces joined by veth, netem on both ends, a real TLS
server in one and a real TLS client in the other.

Runs as root on a kernel with netem — the host (native backend) or the UML guest (uml backend)::

    python -m ttlbsim.emulate.harness SPEC.json ROWS.jsonl

SPEC.json (written by :func:`ttlbsim.emulate.emulate`) holds the link/TCP settings, the TLS
settings, runs/warm-up and a unique `tag`; ROWS.jsonl receives one JSON row per measured
connection (client timing + client and server TCP_INFO). Progress lines go to stderr, prefixed
with ``@@ttlbsim`` so the UML backend can pick them out of the guest console.

Set-up (linux-tcp-netem.md §8, §1, §3): namespaces ``ttlb-<tag>-c`` / ``ttlb-<tag>-s`` and veth
``tb<tag>c`` / ``tb<tag>s`` (unique per emulation, so two at once do not collide);
``net.ipv4.tcp_no_metrics_save=1`` in both (every connection starts fresh, as in the simulator);
MTU; GSO/GRO/TSO off; permanent neighbour entries (no ARP through netem); host routes with
``initcwnd N`` on both sides; ``tc qdisc add dev X root netem limit L delay rtt/2 jitter/2
distribution D rate R loss P`` on both ends. Everything is removed in a ``finally`` (also on
SIGTERM/SIGINT), and what is left afterwards is written to ``ROWS.jsonl.cleanup.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CLIENT_ADDR = "10.77.0.1"
SERVER_ADDR = "10.77.0.2"


def progress(msg: str) -> None:
    sys.stderr.write(f"@@ttlbsim {msg}\n")
    sys.stderr.flush()


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {(p.stderr or p.stdout).strip()}")
    return p


def netem_args(net: dict) -> list[str]:
    """tc netem arguments for one direction of the scenario's link."""
    args = ["limit", str(net["limit"]), "delay", f"{round(net['rtt_s'] / 2 * 1e6)}us"]
    if net["jitter_s"] > 0:
        args.append(f"{round(net['jitter_s'] / 2 * 1e6)}us")
        if net["jitter_dist"] != "uniform":
            args += ["distribution", net["jitter_dist"]]
    if net["bandwidth_bps"]:
        args += ["rate", f"{int(round(net['bandwidth_bps']))}bit"]
    if net["loss"] > 0:
        args += ["loss", f"{net['loss'] * 100:.6g}%"]
    return args


class Testbed:
    """The two namespaces, the veth pair and the netems of one emulation."""

    def __init__(self, tag: str, spec: dict):
        self.tag, self.spec = tag, spec
        self.ns = {"c": f"ttlb-{tag}-c", "s": f"ttlb-{tag}-s"}
        self.dev = {"c": f"tb{tag}c", "s": f"tb{tag}s"}
        self.addr = {"c": CLIENT_ADDR, "s": SERVER_ADDR}
        self.created: list[str] = []

    def up(self) -> None:
        net, tcp = self.spec["network"], self.spec["tcp"]
        for side in "cs":
            sh("ip", "netns", "add", self.ns[side])
            self.created.append(self.ns[side])
        sh("ip", "link", "add", self.dev["c"], "netns", self.ns["c"], "type", "veth",
           "peer", "name", self.dev["s"], "netns", self.ns["s"])
        macs = {}
        for side in "cs":
            ns, dev = self.ns[side], self.dev[side]
            ipns = ("ip", "netns", "exec", ns)
            sh(*ipns, "sysctl", "-qw", "net.ipv4.tcp_no_metrics_save=1")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "mtu", str(net["mtu"]), "up")
            sh(*ipns, "ethtool", "-K", dev, "gso", "off", "gro", "off", "tso", "off", check=False)
            sh("ip", "-n", ns, "addr", "add", f"{self.addr[side]}/32", "dev", dev)
            macs[side] = json.loads(sh("ip", "-j", "-n", ns, "link", "show", dev).stdout)[0]["address"]
        for side, peer in (("c", "s"), ("s", "c")):
            ns, dev = self.ns[side], self.dev[side]
            sh("ip", "-n", ns, "neigh", "replace", self.addr[peer], "lladdr", macs[peer], "dev", dev, "nud", "permanent")
            sh("ip", "-n", ns, "route", "add", f"{self.addr[peer]}/32", "dev", dev, "src", self.addr[side],
               "initcwnd", str(tcp["initcwnd"]))
            sh("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "netem", *netem_args(net))
            if tcp.get("cc") and tcp["cc"] != "cubic":
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv4.tcp_congestion_control={tcp['cc']}")
            if not tcp.get("hystart", True):  # module parameter: global to the kernel
                Path("/sys/module/tcp_cubic/parameters/hystart").write_text("0\n")

    def describe(self) -> dict:
        out = {}
        for side in "cs":
            out[side] = {"qdisc": sh("tc", "-n", self.ns[side], "qdisc", "show", "dev", self.dev[side]).stdout.strip(),
                         "route": sh("ip", "-n", self.ns[side], "route", "show").stdout.strip()}
        return out

    def netem_counters(self) -> dict:
        """Each side's netem counters (`tc -s qdisc`): `packets` sent on (GSO segments counted one
        by one, as the qdisc's byte/packet stats do), `drops` (netem's loss draws that hit, one per
        skb, plus drops at the limit), `bytes`; for the whole emulation, warm-up included. With a
        loss probability p, drops / p estimates how many skbs (netem's loss draws) a side offered."""
        out = {}
        for side in "cs":
            q = json.loads(sh("tc", "-s", "-j", "-n", self.ns[side], "qdisc", "show", "dev", self.dev[side]).stdout)
            root = next((x for x in q if x.get("root")), q[0] if q else {})
            out[side] = {k: root.get(k) for k in ("packets", "drops", "bytes", "overlimits", "requeues")}
        return out

    def down(self) -> None:
        for ns in self.created:
            sh("ip", "netns", "pids", ns, check=False)
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)
        self.created.clear()


def _terminate(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate() if p.args[-1:] and str(p.args[-2]) == "-w" else p.kill()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def run(spec: dict, rows_path: Path) -> int:
    tag = spec["tag"]
    bed = Testbed(tag, spec)
    procs: list[subprocess.Popen] = []
    spec_path = rows_path.with_suffix(".endpoints.json")
    py = spec.get("python") or sys.executable

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = 1
    try:
        progress(f"setting up namespaces {bed.ns['c']} / {bed.ns['s']}")
        bed.up()
        (rows_path.with_suffix(".testbed.json")).write_text(json.dumps(bed.describe(), indent=1))
        ep_spec = {"tls": spec["tls"], "files": spec["files"], "warmup": spec["warmup"], "runs": spec["runs"],
                   "data_bytes": spec["data_bytes"], "request_bytes": spec["request_bytes"],
                   "server_addr": SERVER_ADDR, "timeout_s": spec.get("timeout_s", 120), "gap_s": spec.get("gap_s", 0),
                   "trace_receiver": bool(spec.get("trace_receiver"))}
        spec_path.write_text(json.dumps(ep_spec))
        env = dict(os.environ)
        if spec.get("pcap"):  # capture at the server's veth (after its netem on egress: the tap is past the qdisc)
            procs.append(subprocess.Popen(["ip", "netns", "exec", bed.ns["s"], "tcpdump", "-U", "-Z", "root", "-n", "-s", "200",
                                           "-i", bed.dev["s"], "-w", spec["pcap"]],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)
        server = subprocess.Popen(["ip", "netns", "exec", bed.ns["s"], py, "-m", "ttlbsim.emulate.endpoints",
                                   "server", str(spec_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env)
        procs.append(server)
        first = server.stdout.readline()
        if not first:
            raise RuntimeError("server did not start: " + server.stderr.read().strip()[-500:])
        tickets_sent = json.loads(first).get("tickets_sent")
        progress(f"server ready (tickets sent per connection: {tickets_sent})")
        client = subprocess.Popen(["ip", "netns", "exec", bed.ns["c"], py, "-m", "ttlbsim.emulate.endpoints",
                                   "client", str(spec_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env)
        procs.append(client)
        total = spec["warmup"] + spec["runs"]
        failures = 0
        with open(rows_path, "w") as out:
            for line in client.stdout:
                row = json.loads(line)
                srow = json.loads(server.stdout.readline() or "{}")
                row["server"] = {k: srow.get(k) for k in ("ok", "error", "tcp", "group", "cipher")}
                row["tickets_sent"] = tickets_sent
                if not row["ok"]:
                    failures += 1
                if not row["warmup"]:
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                done = row["i"] + 1
                msg = f"{row['ttlb_ms']:.1f} ms" if row["ok"] else row.get("error", "failed")
                progress(f"connection {done}/{total}{' (warm-up)' if row['warmup'] else ''}: {msg}")
        client.wait()
        try:  # netem's counters for the whole emulation (diagnostic: how many skbs each side offered)
            (rows_path.with_suffix(".netem.json")).write_text(json.dumps(bed.netem_counters()))
        except (RuntimeError, ValueError, OSError):
            pass
        if client.returncode != 0:
            raise RuntimeError(f"client exited with status {client.returncode}: "
                               + client.stderr.read().strip()[-500:])
        server.wait(timeout=30)
        status = 0 if failures == 0 else 3
    except KeyboardInterrupt:
        progress("interrupted: cleaning up")
        status = 130
    except Exception as exc:  # noqa: BLE001 - reported to the caller as one line
        progress(f"error: {exc}")
        rows_path.with_suffix(".error").write_text(str(exc))
        status = 1
    finally:
        _terminate(procs)
        bed.down()
        left = {"netns": [n for n in sh("ip", "netns", "list", check=False).stdout.split()
                          if n.startswith(f"ttlb-{tag}")],
                "processes": [p.pid for p in procs if p.poll() is None]}
        Path(str(rows_path) + ".cleanup.json").write_text(json.dumps(left))
    return status


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text())
    return run(spec, Path(argv[1]))


if __name__ == "__main__":
    raise SystemExit(main())
