"""`ttlbsim emulate`: the scenario for real — netem between two namespaces, real TLS 1.3 endpoints."""

from __future__ import annotations

import sys

from ..cli import add_handshake_flags, handshake_options
from .netflags import add_network_flags, network_options


def add_parser(sub) -> None:
    p = sub.add_parser("emulate", help="run the scenario for real: veth + netem namespaces, OpenSSL endpoints",
                       description="Emulate TLS 1.3 connections for real: two network namespaces joined by veth "
                       "with netem on both ends (natively as root, or inside a User-Mode Linux guest), a real "
                       "OpenSSL server and client timed like the study. Prints what `ttlbsim simulate` prints. "
                       "The client is OpenSSL's (client profile 'openssl', one key share unless --key-shares); "
                       "--hz is the kernel's own (UML: 100) and compute times are real.")
    add_handshake_flags(p)
    add_network_flags(p)
    p.add_argument("--runs", type=int, default=20, help="measured connections (default 20)")
    p.add_argument("--warmup", type=int, default=2, help="unmeasured connections first (default 2)")
    p.add_argument("--backend", default="auto", choices=("auto", "native", "uml"),
                   help="native (root + netem on this kernel) | uml (user-mode-linux guest) | auto (default)")
    p.add_argument("--gap", default=None, metavar="DURATION",
                   help="idle time between connections, e.g. 500ms (default: 0.2 s + 2 RTT, + 1 s under loss, so "
                        "a connection's stragglers have left netem's queues before the next SYN; 0 = back to back)")
    p.add_argument("--out", default=None, help="keep the raw per-connection rows: FILE.jsonl or FILE.csv")
    p.add_argument("--pcap", default=None, metavar="FILE",
                   help="capture at the server's veth with tcpdump into FILE (needs tcpdump)")
    p.add_argument("--trace-receiver", action="store_true",
                   help="with --out (JSON lines): each row also keeps the client's receive autotuning state "
                        "after every SSL_read (tcpi_rcv_ssthresh, tcpi_rcv_rtt, tcpi_rcv_space, SO_RCVBUF)")
    p.add_argument("--json", action="store_true", help="print JSON (the simulate schema, source 'emulator')")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import InvalidValue
    from ..scenario import Scenario
    from ..emulate import emulate

    if args.runs < 1:
        raise InvalidValue("--runs", args.runs, "a whole number >= 1")
    if args.warmup < 0:
        raise InvalidValue("--warmup", args.warmup, "a whole number >= 0")
    if args.no_gso:
        raise InvalidValue("--no-gso", True, "no such switch for a real kernel: Linux TCP always builds GSO skbs")
    from ..units import parse_duration

    gap = None if args.gap is None else parse_duration(args.gap, "--gap")
    opts = handshake_options(args)
    opts["client_profile"] = "openssl"  # the emulator's client is OpenSSL's
    scenario = Scenario.build(**opts, **network_options(args), data=args.data)
    try:
        result = emulate(scenario, runs=args.runs, backend=args.backend, warmup=args.warmup, out=args.out,
                         gap_s=gap, pcap=args.pcap, trace_receiver=args.trace_receiver)
    except RuntimeError as exc:
        sys.stderr.write(f"ttlbsim emulate: error: {exc}\n")
        return 1
    if args.json:
        print(result.to_json(indent=1))
        return 0
    print(render_emulation(result))
    return 0


def render_emulation(result) -> str:
    from .simulate import describe
    p = result.provenance
    lines = [describe(result.scenario), f"{result.runs} emulated connections ({p.get('backend')}, kernel {p.get('kernel')}, "
             f"{p.get('openssl')})", ""]
    keys = ("p10", "p25", "p50", "p75", "p90", "p99", "mean")
    lines.append(f"{'':10}" + "".join(f"{k:>10}" for k in keys))
    for metric, label in (("ttfb_ms", "TTFB ms"), ("ttlb_ms", "TTLB ms")):
        q = result.percentiles(metric)
        lines.append(f"{label:10}" + "".join(f"{q[k]:10.1f}" for k in keys))
    a = result.arrays
    lines += ["", f"per connection (mean): {a['retransmits'].mean():.2f} retransmissions, "
              f"{a['packets_down'].mean():.1f} packets / {a['bytes_down'].mean():.0f} B down, "
              f"{a['packets_up'].mean():.1f} packets / {a['bytes_up'].mean():.0f} B up (from TCP_INFO)"]
    return "\n".join(lines)
