"""Evidence for the calibration report, from packet captures of real (UML) emulations.

    python -m validation.diagnose latency [--data 10KiB] [--runs 10]   # per-flight host latencies
    python -m validation.diagnose holes   [--loss 1%]  [--runs 30]     # sizes of netem's loss bursts
    python -m validation.diagnose replies [--runs 20]                  # per-packet host latency
    python -m validation.diagnose ... --pcap FILE                      # analyse an existing capture
    python -m validation.diagnose load    [--data validation/data/study] # host load vs timing spread
    python -m validation.diagnose acks    --pcap FILE                  # server skb and client ACK sizes

The captures behind validation/REPORT.md are in validation/data/diagnosis/ (gzipped pcaps).

The capture is taken at the server's veth by the emulator (`emulate(..., pcap=...)`): packets from
the client are stamped when they leave the client's netem (arrival), packets from the server when
they leave the server's netem, i.e. `rtt/2` after the server wrote them (the tap is after the
qdisc). Link: 1 Gbit/s, 35 ms, classical pair (x25519 + rsa2048), initcwnd 20, HZ 100.

`latency`: per connection, the host's reaction times the simulator models as compute +
flight_overhead: client ClientHello after the SYN-ACK, server flight after the ClientHello, client
Finished after the server's last handshake segment, server response after the request.
`holes`: gaps in the sequence space of the server's first transmissions (what netem dropped),
in MSS units: netem drops whole TCP GSO skbs (TCP always builds GSO skbs, ethtool's `gso off`
notwithstanding; segmentation happens after the qdisc), so the gaps come in pairs and more.
`replies`: the kernel's immediate replies — SYN → SYN-ACK (the server's side: SYN arrival to the
SYN-ACK leaving the server's netem) and SYN-ACK → ACK (the client's side) — minus netem's one-way
delay: what the hosts add to a packet's trip beyond netem (the timer firing late, softirq, veth),
the per-packet latency the simulator models (`ttlbsim.host`; fitted from TCP_INFO min_rtt).
`acks`: per connection, the server's data packets as netem sent them (GSO skbs of 1, 2 or more
segments; first transmissions and retransmissions) and the client's ACKs by how many segments each
acknowledges — what decides how many times netem draws its loss on a slow link (§8 of
validation/diagnosis.md; the capture `pq65_1Mbit_200ms_loss10_100KiB.pcap.gz`).
`load` needs no capture: it reads a data set's cells and, for each lossy jitter-free one whose
host load was recorded, the spread (IQR) of TTFB over the connections that retransmitted nothing
(the same handshake every time, so the spread is the host's), grouped by the 1-minute load average
before or after the cell: how much a busy campaign host adds (`validation.requeue.BUSY_LOAD`).
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PKT = re.compile(r"(\d+\.\d+) IP 10\.77\.0\.(\d)\.(\d+) > 10\.77\.0\.(\d)\.(\d+): Flags \[([^\]]+)\]"
                 r"(?:, seq (\d+):(\d+))?.*length (\d+)")
ACK = re.compile(r", ack (\d+)")


def _tcpdump(pcap: Path) -> str:
    if str(pcap).endswith(".gz"):  # the committed captures are gzipped
        import gzip
        return subprocess.run(["tcpdump", "-r", "-", "-n", "-tt", "-S"], input=gzip.decompress(Path(pcap).read_bytes()),
                              capture_output=True).stdout.decode()
    return subprocess.run(["tcpdump", "-r", str(pcap), "-n", "-tt", "-S"], capture_output=True, text=True).stdout


def packets(pcap: Path, with_ack: bool = False) -> dict[str, list[tuple]]:
    """Per client port: (time ms, 'c'|'s', flags, seq start, seq end, length), and the
    acknowledgement number (None on a SYN) with `with_ack`."""
    conns: dict[str, list[tuple]] = collections.defaultdict(list)
    for line in _tcpdump(pcap).splitlines():
        m = PKT.match(line)
        if not m:
            continue
        src = m[2]
        port = m[3] if src == "1" else m[5]
        pk = (float(m[1]) * 1e3, "c" if src == "1" else "s", m[6],
              int(m[7]) if m[7] else None, int(m[8]) if m[8] else None, int(m[9]))
        if with_ack:
            a = ACK.search(line)
            pk += (int(a[1]) if a else None,)
        conns[port].append(pk)
    return dict(sorted(conns.items(), key=lambda kv: kv[1][0][0]))


def latencies(pcap: Path, one_way_ms: float = 17.5, skip: int = 2) -> dict[str, list[float]]:
    res: dict[str, list[float]] = collections.defaultdict(list)
    for pk in list(packets(pcap).values())[skip:]:
        try:
            synack = next(t for t, d, f, *_ in pk if d == "s" and f == "S.")
            cdata = [t for t, d, f, a, b, n in pk if d == "c" and n > 0]
            sdata = [t for t, d, f, a, b, n in pk if d == "s" and n > 0]
            ch, fin = cdata[0], cdata[1]
            res["client ClientHello after SYN-ACK"].append(ch - one_way_ms - synack)
            res["server flight after ClientHello"].append(sdata[0] - one_way_ms - ch)
            last = max(t for t in sdata if t - one_way_ms < fin)
            res["client Finished after server flight"].append(fin - one_way_ms - last)
            if len(cdata) > 2:
                resp = next((t for t in sdata if t - one_way_ms > fin), None)
                if resp is not None:
                    res["server response after request"].append(resp - one_way_ms - cdata[-1])
        except (StopIteration, IndexError):
            continue
    return dict(res)


def holes(pcap: Path, mss: int = 1448) -> tuple[collections.Counter, int, int]:
    sizes: collections.Counter = collections.Counter()
    clean = 0
    conns = packets(pcap)
    for pk in conns.values():
        hi, n = None, 0
        for t, d, f, a, b, length in pk:
            if d != "s" or a is None or length == 0:
                continue
            if hi is not None and a > hi:
                sizes[round((a - hi) / mss, 1)] += 1
                n += 1
            hi = b if hi is None else max(hi, b)
        clean += n == 0
    return sizes, clean, len(conns)


def acks(pcap: Path, mss: int = 1448, skip: int = 2) -> dict[str, float]:
    """Per connection (mean over the capture's connections after `skip` warm-ups): the server's
    data packets as netem sent them — a GSO skb leaves netem whole and is segmented after it, so its
    segments pass the tap back to back (within 0.1 ms) — by size and whether they are first
    transmissions or retransmissions (below the highest sequence seen); and the client's pure ACKs
    that advance the acknowledged edge, by how many MSS each acknowledges (one per segment in
    quick-ACK mode, two with delayed ACKs, more after a hole is filled)."""
    out: collections.Counter = collections.Counter()
    conns = list(packets(pcap, with_ack=True).values())[skip:]
    for pk in conns:
        skbs: list[list] = []
        for t, d, f, a, b, length, ack in pk:
            if d != "s" or a is None or length == 0:
                continue
            if skbs and t - skbs[-1][0] < 0.1 and a == skbs[-1][2]:
                skbs[-1][2], skbs[-1][3] = b, skbs[-1][3] + 1
            else:
                skbs.append([t, a, b, 1])
        hi = None
        for t, a, b, n in skbs:
            kind = "retransmitted" if hi is not None and a < hi else "new"
            out[f"server {kind} skbs of {min(n, 3)}{'+' if n >= 3 else ''} segment{'s' if n > 1 else ''}"] += 1
            hi = b if hi is None else max(hi, b)
        edge = None
        for t, d, f, a, b, length, ack in pk:
            if d != "c" or ack is None:
                continue
            if edge is not None and ack > edge and length == 0:
                k = (ack - edge) / mss
                out["client ACKs of " + ("1 segment" if k <= 1.05 else "2 segments" if k <= 2.05 else "more")] += 1
            edge = ack if edge is None else max(edge, ack)
    return {k: v / max(len(conns), 1) for k, v in sorted(out.items())}


def replies(pcap: Path, one_way_ms: float = 17.5) -> dict[str, list[float]]:
    """Per connection, the excess (us) over netem's one-way delay of the kernel's immediate
    replies: the server's SYN → SYN-ACK and the client's SYN-ACK → ACK. Connections whose SYN or
    SYN-ACK was sent more than once are left out (a reply may then answer an earlier copy); a link
    with jitter gives no answer here."""
    res: dict[str, list[float]] = collections.defaultdict(list)
    for pk in packets(pcap).values():
        if sum(1 for p in pk if p[2] == "S") != 1 or sum(1 for p in pk if p[2] == "S.") != 1:
            continue
        for (t, d, f, *_), (t2, d2, f2, *_r) in zip(pk, pk[1:]):
            if d == "c" and f == "S" and d2 == "s" and f2 == "S.":
                res["server: SYN -> SYN-ACK"].append((t2 - t - one_way_ms) * 1e3)
            elif d == "s" and f == "S." and d2 == "c" and f2 == ".":
                res["client: SYN-ACK -> ACK"].append((t2 - t - one_way_ms) * 1e3)
    return dict(res)


LOAD_EDGES = (1.2, 1.6, 2.0, 2.5)
WIDE_MS = 2.5
"""Load-average bucket edges of `spread_by_load` (the UML guest alone keeps about 1 runnable), and
the IQR (ms) above which a cell's loss-free spread counts as wide (a quiet cell's is about 1 ms)."""


def loss_free_spread(data_dir: Path, min_runs: int = 20) -> list[tuple[float, float, str]]:
    """(peak load, IQR of TTFB in ms, cell) for each lossy, jitter-free cell of `data_dir` with a
    recorded host load and at least `min_runs` connections without a retransmission (either side)."""
    import numpy as np

    from .calibrate import host_load, load_cells
    out = []
    for c in load_cells(data_dir):
        n = c.scenario.network
        load = host_load(c)
        if n.loss <= 0 or n.jitter_s > 0 or load is None:
            continue
        clean = np.asarray(c.emu["ttfb_ms"])[np.asarray(c.emu["retransmits"]) == 0]
        if len(clean) >= min_runs:
            q25, q75 = np.percentile(clean, [25, 75])
            out.append((load, float(q75 - q25), c.name))
    return sorted(out)


def spread_by_load(points: list[tuple[float, float, str]], edges: tuple[float, ...] = LOAD_EDGES,
                   wide_ms: float = WIDE_MS) -> list[dict]:
    """`loss_free_spread`'s cells grouped by load (buckets split at `edges`): count, median and
    p75 of the IQR, and the share of cells whose IQR exceeds `wide_ms`."""
    import numpy as np
    bounds = (0.0, *edges, float("inf"))
    out = []
    for lo, hi in zip(bounds, bounds[1:]):
        v = np.array([iqr for load, iqr, _ in points if lo <= load < hi])
        if len(v):
            out.append({"load_from": lo, "load_to": hi, "cells": len(v), "median_ms": float(np.median(v)),
                        "p75_ms": float(np.percentile(v, 75)), "wide_share": float(np.mean(v > wide_ms))})
    return out


def capture(pcap: Path, runs: int, data: str, loss: str) -> None:
    from ttlbsim import Scenario
    from ttlbsim.emulate import emulate
    sc = Scenario.build(kex="x25519", sig="rsa2048", rtt="35ms", bandwidth="1Gbit", loss=loss, initcwnd=20, data=data,
                        hz=100, client_profile="openssl", key_shares=1)
    r = emulate(sc, runs=runs, warmup=2, backend="uml", pcap=pcap, progress=None)
    print(f"emulated {runs} connections: TTFB p50 {r.percentiles('ttfb_ms')['p50']:.1f} ms, "
          f"TTLB p50 {r.percentiles('ttlb_ms')['p50']:.1f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m validation.diagnose", description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("latency", "holes", "replies", "load", "acks"))
    ap.add_argument("--pcap", default=None, help="analyse this capture instead of running an emulation")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--loss", default="1%")
    args = ap.parse_args(argv)
    if args.what == "load":
        from .requeue import DEFAULT_DATA
        data = Path(args.data) if args.data else DEFAULT_DATA
        if not data.is_dir():
            sys.stderr.write(f"python -m validation.diagnose: --data {data} is not a directory of emulated cells\n")
            return 2
        points = loss_free_spread(data)
        print(f"TTFB spread (IQR) of the connections that retransmitted nothing, {len(points)} lossy cells of {data}, "
              f"by the host's 1-minute load average:")
        for b in spread_by_load(points):
            top = "up" if b["load_to"] == float("inf") else f"{b['load_to']:g}"
            print(f"  load {b['load_from']:g}-{top}: {b['cells']:3d} cells, IQR median {b['median_ms']:.2f} ms, "
                  f"p75 {b['p75_ms']:.2f} ms, {b['wide_share'] * 100:.0f} % of cells above {WIDE_MS:g} ms")
        return 0
    with tempfile.TemporaryDirectory() as d:
        pcap = Path(args.pcap) if args.pcap else Path(d) / "cap.pcap"
        if not args.pcap:
            if args.what == "latency":
                capture(pcap, args.runs or 10, args.data or "10KiB", "0%")
            elif args.what == "replies":
                capture(pcap, args.runs or 20, args.data or "0", "0%")
            else:
                capture(pcap, args.runs or 30, args.data or "200KiB", args.loss)
        if args.what == "latency":
            for k, v in latencies(pcap).items():
                print(f"{k:40s} median {statistics.median(v):5.2f} ms  (min {min(v):.2f}, max {max(v):.2f}, n {len(v)})")
        elif args.what == "replies":
            for k, v in replies(pcap).items():
                q = statistics.quantiles(v, n=10) if len(v) > 1 else v * 9
                print(f"{k:24s} excess over netem's delay: p10 {q[0]:4.0f} us, median {statistics.median(v):4.0f} us, "
                      f"p90 {q[-1]:4.0f} us (n {len(v)})")
        elif args.what == "acks":
            for k, v in acks(pcap).items():
                print(f"{k:45s} {v:6.2f} per connection")
        else:
            sizes, clean, n = holes(pcap)
            print("netem loss bursts in the server's stream, in MSS (count): "
                  + ", ".join(f"{k:g}: {v}" for k, v in sorted(sizes.items())))
            print(f"connections without a gap: {clean} of {n} (warm-up included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
