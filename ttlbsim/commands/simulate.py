"""`ttlbsim simulate`: the TTFB/TTLB distribution of one scenario."""

from __future__ import annotations

import json
import sys

from ..cli import add_handshake_flags, handshake_options
from ..units import format_rate, format_size
from .netflags import add_network_flags, add_run_flags, network_options


def add_parser(sub) -> None:
    p = sub.add_parser("simulate", help="simulate one scenario many times: TTFB and TTLB percentiles",
                       description="Simulate TLS 1.3 connections (handshake + response) over Linux TCP "
                       "through a netem link and print TTFB/TTLB percentiles.")
    add_handshake_flags(p)
    add_network_flags(p)
    add_run_flags(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..scenario import Scenario
    from ..simulate import simulate

    scenario = Scenario.build(**handshake_options(args), **network_options(args), data=args.data)
    result = simulate(scenario, runs=args.runs, seed=args.seed, workers=args.workers)
    if args.json:
        print(result.to_json(indent=1))
        return 0
    print(render(result))
    return 0


def describe(scenario) -> str:
    t, n = scenario.tls, scenario.network
    bw = "unlimited" if n.bandwidth_bps is None else format_rate(n.bandwidth_bps)
    parts = [f"{t.kex} + {t.sig} chain {t.chain}", f"rtt {n.rtt_s * 1e3:g}ms", bw, f"loss {n.loss * 100:g}%"]
    if n.jitter_s:
        parts.append(f"jitter {n.jitter_s * 1e3:g}ms {n.jitter_dist}")
    parts += [f"initcwnd {scenario.tcp.initcwnd}", f"data {format_size(scenario.workload.data_bytes)}"]
    return ", ".join(parts)


def render(result) -> str:
    lines = [describe(result.scenario), f"{result.runs} runs, seed {result.seed}", ""]
    keys = ("p10", "p25", "p50", "p75", "p90", "p99", "mean")
    lines.append(f"{'':10}" + "".join(f"{k:>10}" for k in keys))
    for metric, label in (("ttfb_ms", "TTFB ms"), ("ttlb_ms", "TTLB ms")):
        p = result.percentiles(metric)
        lines.append(f"{label:10}" + "".join(f"{p[k]:10.1f}" for k in keys))
    a = result.arrays
    lines.append("")
    lines.append(f"per run (mean): {a['retransmits'].mean():.2f} retransmissions, {a['rtos'].mean():.2f} RTOs, "
                 f"{a['packets_down'].mean():.1f} packets / {a['bytes_down'].mean():.0f} B down, "
                 f"{a['packets_up'].mean():.1f} packets / {a['bytes_up'].mean():.0f} B up")
    return "\n".join(lines)
