"""Network, TCP and workload flags shared by simulate, compare and emulate."""

from __future__ import annotations

import argparse

from ..scenario import Scenario


#: host parameters given as durations (Scenario.build options): flag help, before the default
HOST_DURATIONS = (
    ("read_delay", "how long after data stops arriving the receiving application reads it, e.g. 0s (a reader "
                   "that keeps up) or 50us"),
    ("recv_cost", "time one recv() call takes in the receiving application (seconds per call), e.g. 0s (a "
                  "burst's recv() calls all at once) or 50us"),
    ("packet_delay", "the hosts' fixed per-packet latency beyond netem's delay, each way, e.g. 0s or 60us"),
    ("packet_jitter", "mean of the hosts' exponential wake-up latency, drawn for each packet that finds the host "
                      "idle, order kept, e.g. 0s or 80us"),
)


def add_network_flags(p: argparse.ArgumentParser, *, data_list: bool = False) -> None:
    g = p.add_argument_group("network (netem on both ends, as in the study)")
    g.add_argument("--rtt", default="35ms", help="round-trip time; each direction gets delay rtt/2 (default 35ms)")
    g.add_argument("--bandwidth", default="1Gbit", help="link rate each way, e.g. 1Mbit, 1Gbit, 'none' (default 1Gbit)")
    g.add_argument("--loss", default="0%", help="per-packet loss each way, e.g. 1%% (default 0%%)")
    g.add_argument("--jitter", default="0ms", help="jitter of the round trip; each direction gets jitter/2")
    g.add_argument("--jitter-dist", default="uniform",
                   help="uniform (netem without a table) | normal | pareto | paretonormal")
    g.add_argument("--limit", type=int, default=1000, help="netem queue limit in packets (default 1000)")
    g.add_argument("--mtu", type=int, default=1500, help="MTU in bytes (default 1500 → MSS 1448)")
    t = p.add_argument_group("TCP (Linux 6.x defaults)")
    t.add_argument("--initcwnd", type=int, default=10, help="route initcwnd in segments (default 10; the study used 20)")
    t.add_argument("--cc", default="cubic", help="congestion control: cubic (with HyStart) | reno")
    t.add_argument("--no-hystart", action="store_true", help="turn HyStart off")
    t.add_argument("--hz", type=int, default=250, help="kernel CONFIG_HZ: TCP timer granularity (default 250)")
    t.add_argument("--no-gso", action="store_true",
                   help="one segment per packet (loss on a real path) instead of Linux's GSO skbs, which a "
                        "host's netem drops whole (default: GSO, as in netem testbeds)")
    w = p.add_argument_group("workload")
    if data_list:
        w.add_argument("--data", default="0,50KiB,200KiB", help="response sizes, comma-separated (default 0,50KiB,200KiB)")
    else:
        w.add_argument("--data", default="200KiB", help="response size, e.g. 200KiB (default 200KiB)")
    w.add_argument("--request", default="100", help="request size in bytes (default 100)")
    w.add_argument("--compute", default="calibrated",
                   help="crypto CPU time and host latency: calibrated (default: the calibration profile's) | "
                        "measured (on this machine, no host latency) | zero")
    w.add_argument("--calibration", default=None, metavar="PROFILE",
                   help="calibrated host profile: uml-6.1 (default; fitted against validation/data) | a JSON "
                        "file | none (= --compute measured)")
    for name, text in HOST_DURATIONS:
        w.add_argument("--" + name.replace("_", "-"), default=None, metavar="DURATION",
                       help=text + " (default: the calibration profile's, else 0s)")

def network_options(args: argparse.Namespace) -> dict:
    return dict(rtt=args.rtt, bandwidth=args.bandwidth, loss=args.loss, jitter=args.jitter,
                jitter_dist=args.jitter_dist, limit=args.limit, mtu=args.mtu, initcwnd=args.initcwnd,
                cc=args.cc, hystart=not args.no_hystart, hz=args.hz, gso=not args.no_gso, request=args.request, compute=args.compute,
                calibration=args.calibration,
                **{name: getattr(args, name) for name, _ in HOST_DURATIONS if getattr(args, name) is not None})


def add_run_flags(p: argparse.ArgumentParser, runs: int = 1000) -> None:
    p.add_argument("--runs", type=int, default=runs, help=f"connections to simulate (default {runs})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (same results for any number)")
    p.add_argument("--json", action="store_true", help="print JSON")


def build_scenario(**options) -> Scenario:
    return Scenario.build(**options)
