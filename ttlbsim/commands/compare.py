"""`ttlbsim compare`: two TLS configurations on the same network, slowdown per percentile."""

from __future__ import annotations

import json

from ..errors import InvalidValue
from ..units import format_size, parse_size_list
from .netflags import add_network_flags, add_run_flags, network_options

STUDY_CLASSICAL = "kex=x25519,sig=rsa2048"
STUDY_PQ = "kex=X25519MLKEM768,sig=mldsa65"


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two TLS configurations (default: the study's classical vs PQ pair)",
                       description="Simulate side A and side B on the same network with the same seeds and "
                       "print both and B's %% slowdown over A per percentile, for each response size.")
    p.add_argument("--a", default=STUDY_CLASSICAL, help=f"side A as key=value,... (default {STUDY_CLASSICAL!r})")
    p.add_argument("--b", default=STUDY_PQ, help=f"side B as key=value,... (default {STUDY_PQ!r})")
    add_network_flags(p, data_list=True)
    add_run_flags(p, runs=200)
    p.set_defaults(run=run)


_BOOL = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def parse_side(text: str, flag: str) -> dict:
    """'kex=x25519,sig=rsa2048,chain=3,mtls=true' → TLS options."""
    out: dict = {}
    for item in [s for s in text.split(",") if s.strip()]:
        if "=" not in item:
            raise InvalidValue(flag, text, "key=value pairs such as 'kex=x25519,sig=rsa2048'")
        k, v = (s.strip() for s in item.split("=", 1))
        k = k.replace("-", "_")
        if k in ("chain", "tickets", "key_shares"):
            try:
                out[k] = int(v)
            except ValueError:
                raise InvalidValue(f"{flag} {k}", v, "a whole number") from None
        elif k in ("mtls", "hrr", "resume"):
            if v.lower() not in _BOOL:
                raise InvalidValue(f"{flag} {k}", v, "true or false")
            out[k] = _BOOL[v.lower()]
        elif k in ("kex", "sig", "intermediate_sig", "cert_profile", "client_profile", "compress", "chain_bytes"):
            out[k] = v
        else:
            raise InvalidValue(flag, k, "TLS keys: kex, sig, intermediate_sig, chain, chain_bytes, cert_profile, "
                               "client_profile, mtls, hrr, resume, compress, tickets, key_shares")
    return out


def run(args) -> int:
    from ..scenario import Scenario
    from ..simulate import compare

    sizes = parse_size_list(args.data, "--data")
    net = network_options(args)
    a = Scenario.build(**parse_side(args.a, "--a"), **net, data=sizes[0])
    b = Scenario.build(**parse_side(args.b, "--b"), **net, data=sizes[0])
    cmp = compare(a, b, sizes, runs=args.runs, seed=args.seed, workers=args.workers)
    if args.json:
        print(json.dumps(cmp.to_dict(), indent=1, default=str))
        return 0
    print(render(cmp, args.a, args.b))
    return 0


def render(cmp, label_a: str, label_b: str) -> str:
    from .simulate import describe

    first = cmp.a[0].scenario
    lines = [f"A: {label_a}", f"B: {label_b}",
             "network: " + describe(first).split(", ", 1)[1].rsplit(", data", 1)[0],
             f"{cmp.a[0].runs} runs per side and size", ""]
    keys = ("p50", "p75", "p90")
    head = f"{'data':>8} {'metric':>7} " + "".join(f"{'A ' + k:>10}{'B ' + k:>10}{'Δ ' + k:>9}" for k in keys)
    lines.append(head)
    for row in cmp.rows():
        for metric, label in (("ttfb_ms", "TTFB"), ("ttlb_ms", "TTLB")):
            m = row[metric]
            cells = "".join(f"{m['a'][k]:10.1f}{m['b'][k]:10.1f}{m['slowdown_pct'][k]:+8.1f}%" for k in keys)
            lines.append(f"{format_size(row['data_bytes']):>8} {label:>7} {cells}")
    lines.append("")
    lines.append("times in ms; Δ = B's slowdown over A, 100·(B/A − 1)")
    return "\n".join(lines)
