"""`ttlbsim handshake`: the flights of one TLS 1.3 handshake and their per-message sizes, from
genuine keys, certificates and encodings; `--list` prints every algorithm's sizes."""

from __future__ import annotations

import json

from ..cli import add_handshake_flags, handshake_options


def add_parser(sub) -> None:
    p = sub.add_parser("handshake", help="TLS 1.3 handshake flights and sizes from genuine encodings",
                       description="Build a TLS 1.3 handshake from real key shares, X.509 chains and "
                       "signatures, framed into records as OpenSSL does, and print each flight with its "
                       "per-message breakdown.")
    add_handshake_flags(p)
    p.add_argument("--json", action="store_true", help="print the profile as JSON")
    p.add_argument("--list", action="store_true", help="list every algorithm with its sizes and exit")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.list:
        return _list(args.json)
    from ..scenario import Scenario
    from ..handshake import build_profile

    tls = Scenario.build(**handshake_options(args)).tls
    profile = build_profile(tls)
    if args.json:
        print(json.dumps(profile.to_dict(), indent=1))
    else:
        print(render(profile))
    return 0


def render(profile) -> str:
    p = profile.params
    head = f"{p['kex']} + {p['sig']}"
    if p.get("intermediate_sig"):
        head += f" (intermediates {p['intermediate_sig']})"
    head += f", chain {p['chain']} ({p['cert_profile']}), client {p['client_profile']}"
    extras = [k for k in ("mtls", "hrr", "resume") if p.get(k)]
    if p.get("compress"):
        extras.append(f"compress {p['compress']}")
    if p.get("chain_bytes") is not None:
        extras.append(f"chain bytes {p['chain_bytes']}")
    if p.get("tickets"):
        extras.append(f"tickets {p['tickets']}")
    lines = [head + (", " + ", ".join(extras) if extras else ""), ""]
    lines.append(f"{'#':>2}  {'sender':<7}{'bytes':>7}  {'writes':<22}ops")
    for i, f in enumerate(profile.flights, 1):
        writes = "+".join(str(w) for w in f.writes)
        tag = " (after handshake)" if f.phase == "post" else ""
        lines.append(f"{i:>2}  {f.sender:<7}{f.bytes:>7}  {writes:<22}{', '.join(f.ops) or '-'}{tag}")
        for name, n in f.messages:
            lines.append(f"{'':13}{name:<24}{n:>7}")
    hs = [f for f in profile.handshake_flights]
    client = sum(f.bytes for f in hs if f.sender == "client")
    server = sum(f.bytes for f in hs if f.sender == "server")
    s = profile.sizes
    lines += ["", f"handshake bytes: client {client}, server {server}, total {client + server}"]
    if s.get("certificates"):
        lines.append("server chain DER: " + " + ".join(str(c) for c in s["certificates"])
                     + f" = {sum(s['certificates'])} B")
    return "\n".join(lines)


def _list(as_json: bool) -> int:
    from ..handshake.algorithms import size_table

    rows = size_table()
    if as_json:
        print(json.dumps(list(rows), indent=1))
        return 0

    def cell(v):
        return "-" if v is None else str(v)

    print("key exchange groups (bytes)")
    print(f"  {'name':<20}{'code':>8}{'client share':>14}{'server share':>14}")
    for r in rows:
        if r["kind"] == "kex":
            print(f"  {r['name']:<20}{r['code_point']:>8}{r['client_share']:>14}{r['server_share']:>14}")
    print("  (client share = encapsulation/public key; server share = ciphertext or ECDH public key)")
    print("\nsignature algorithms (bytes)")
    print(f"  {'name':<20}{'scheme':>8}{'public key':>14}{'signature':>14}")
    for r in rows:
        if r["kind"] == "sig":
            print(f"  {r['name']:<20}{r['code_point']:>8}{cell(r['public_key']):>14}{cell(r['signature']):>14}")
    return 0
