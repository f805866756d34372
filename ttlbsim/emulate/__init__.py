"""Real emulation: the scenario's link built with veth + netem between two network namespaces,
a real TLS 1.3 server and client (OpenSSL via pyOpenSSL), timed like the study.

>>> from ttlbsim import Scenario
>>> from ttlbsim.emulate import emulate
>>> r = emulate(Scenario.build(kex="x25519", sig="rsa2048", rtt="35ms", bandwidth="10Mbit",
...                            initcwnd=20, data="50KiB"), runs=5)      # doctest: +SKIP
>>> r.percentiles("ttlb_ms")                                               # doctest: +SKIP

The result has the simulator's schema (`Result`, source "emulator"). What the emulator uses from
the scenario: every network field, `initcwnd`, `cc`, `hystart`, the TLS group / signature /
chain / certificate profile / mTLS / HelloRetryRequest / key shares / tickets, the request and
response sizes. The client is OpenSSL (the ``openssl`` client profile) offering `key_shares`
key shares (default 1); the returned scenario says so. `hz` is whatever the kernel has (UML: 100)
and compute times are real. Not supported (an error says so): resumption, certificate
compression, chain-size overrides.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from ..errors import BackendUnavailable, InvalidValue
from ..result import Result
from ..scenario import Scenario
from . import backends

__all__ = ["BackendUnavailable", "emulate", "emulation_scenario", "write_rows"]


def emulation_scenario(scenario: Scenario) -> Scenario:
    """The scenario as the emulator runs it: OpenSSL's client profile, `key_shares` default 1."""
    t = scenario.tls
    if t.resume:
        raise InvalidValue("resume", True, "a full handshake (the emulator does not do PSK resumption)")
    if t.compress:
        raise InvalidValue("compress", t.compress, "no certificate compression (OpenSSL via pyOpenSSL cannot)")
    if t.chain_bytes is not None:
        raise InvalidValue("chain_bytes", t.chain_bytes, "a genuine chain (the emulator's peers verify it)")
    if t.sig.startswith("slhdsa"):
        raise InvalidValue("sig", t.sig, "a signature OpenSSL can use in TLS (not SLH-DSA)")
    return scenario.replace(client_profile="openssl", key_shares=t.key_shares or 1)


def _spec(scenario: Scenario, runs: int, warmup: int, files: dict, tag: str) -> dict:
    n, tcp, t = scenario.network, scenario.tcp, scenario.tls
    timeout = 60 + 20 * n.rtt_s * 100 + (scenario.workload.data_bytes * 8 / n.bandwidth_bps * 10 if n.bandwidth_bps else 0)
    return {"tag": tag, "runs": runs, "warmup": warmup, "files": files, "python": sys.executable,
            "network": {"rtt_s": n.rtt_s, "bandwidth_bps": n.bandwidth_bps, "loss": n.loss, "jitter_s": n.jitter_s,
                        "jitter_dist": n.jitter_dist, "limit": n.limit, "mtu": n.mtu},
            "tcp": {"initcwnd": tcp.initcwnd, "cc": tcp.cc, "hystart": tcp.hystart},
            "tls": {"kex": t.kex, "sig": t.sig, "chain": t.chain, "intermediate_sig": t.intermediate_sig,
                    "cert_profile": t.cert_profile, "mtls": t.mtls, "hrr": t.hrr, "key_shares": t.key_shares,
                    "tickets": t.tickets},
            "data_bytes": scenario.workload.data_bytes, "request_bytes": scenario.workload.request_bytes,
            "timeout_s": timeout}


def _arrays(rows: list[dict]) -> dict[str, np.ndarray]:
    def col(f):
        return np.array([f(r) for r in rows], dtype=float)

    # frame bytes as netem counts them: payload + 66 B (Ethernet 14 + IP 20 + TCP 20 + timestamps 12)
    # per segment, + 8 B for the SYN / SYN-ACK's longer options
    return {
        "ttfb_ms": col(lambda r: r["ttfb_ms"]),
        "ttlb_ms": col(lambda r: r["ttlb_ms"]),
        "retransmits": col(lambda r: r["tcp"]["total_retrans"] + r["server"]["tcp"]["total_retrans"]),
        "packets_up": col(lambda r: r["tcp"]["segs_out"]),
        "packets_down": col(lambda r: r["server"]["tcp"]["segs_out"]),
        "bytes_up": col(lambda r: r["tcp"]["bytes_sent"] + 66 * r["tcp"]["segs_out"] + 8),
        "bytes_down": col(lambda r: r["server"]["tcp"]["bytes_sent"] + 66 * r["server"]["tcp"]["segs_out"] + 8),
    }


def write_rows(rows: list[dict], path: str | Path) -> None:
    """Raw per-connection rows: JSON lines (.jsonl / .json) or CSV (.csv, flattened)."""
    path = Path(path)
    if path.suffix == ".csv":
        import csv
        flat = []
        for r in rows:
            f = {k: v for k, v in r.items() if not isinstance(v, dict)}
            f.update({f"client_{k}": v for k, v in r["tcp"].items()})
            f.update({f"server_{k}": v for k, v in (r["server"].get("tcp") or {}).items()})
            f.update({f"server_{k}": r["server"].get(k) for k in ("group", "cipher")})
            flat.append(f)
        keys = list(dict.fromkeys(k for f in flat for k in f))
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(flat)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _versions() -> dict:
    from OpenSSL import SSL
    import cryptography
    return {"openssl": SSL.SSLeay_version(SSL.SSLEAY_VERSION).decode(), "cryptography": cryptography.__version__}


def default_gap_s(scenario: Scenario) -> float:
    """Seconds the client waits between connections so that one connection's stragglers (the
    server's tail retransmissions, FIN exchange, RSTs to a closed socket) have left netem's queues
    before the next SYN: the simulator's connections are independent, and at 1 Mbit/s a
    retransmitted segment occupies the link for 12 ms. 0.2 s + 2 RTT, plus 1 s under loss (a lost
    FIN is retransmitted after an RTO of >= 200 ms, backed off)."""
    n = scenario.network
    return 0.2 + 2 * (n.rtt_s + 2 * n.jitter_s) + (1.0 if n.loss > 0 else 0.0)


def emulate(scenario: Scenario, runs: int = 20, *, backend: str = "auto", warmup: int = 2,
            out: str | Path | None = None, progress: TextIO | Callable[[str], None] | None = sys.stderr,
            workdir: str | Path | None = None, pcap: str | Path | None = None, gap_s: float | None = None,
            trace_receiver: bool = False) -> Result:
    """Run `runs` real connections (after `warmup` unmeasured ones) of `scenario`.

    Raises `BackendUnavailable` when neither backend works, `RuntimeError` when the emulation
    fails (the message says why). Namespaces, guest and processes are gone when it returns or
    raises (also on KeyboardInterrupt). `workdir`: keep the spec, credentials, rows, testbed
    description and clean-up report there (default: a temporary directory, removed). `pcap`:
    tcpdump at the server's veth into this file (needs tcpdump where the harness runs). `gap_s`:
    idle seconds between connections (default :func:`default_gap_s`; 0 = back to back).
    `trace_receiver`: each row (in `out`) also keeps the client's receive autotuning state
    after every SSL_read (`endpoints._receiver_state`)."""
    from .. import __version__
    from .endpoints import write_credentials

    if runs < 1:
        raise InvalidValue("runs", runs, "a whole number >= 1")
    if gap_s is not None and not (isinstance(gap_s, (int, float)) and 0 <= gap_s < 3600):
        raise InvalidValue("gap", gap_s, "a duration >= 0")
    scenario = emulation_scenario(scenario)
    gap = default_gap_s(scenario) if gap_s is None else float(gap_s)
    name = backends.choose(backend)
    if callable(progress):
        say = progress
    elif progress is None:
        say = lambda msg: None  # noqa: E731
    else:
        def say(msg: str, _f=progress) -> None:
            _f.write(f"emulate: {msg}\n")
            _f.flush()
    if backend == "auto":
        say(f"backend: {name}")
    import signal
    import threading
    previous = None
    if threading.current_thread() is threading.main_thread():  # SIGTERM cleans up like Ctrl-C
        def _term(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")
        previous = signal.signal(signal.SIGTERM, _term)
    work = Path(workdir) if workdir is not None else backends.new_workdir()
    work.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:6]
    started = time.time()
    try:
        files = write_credentials(_spec(scenario, 1, 0, {}, tag)["tls"], work)
        spec = _spec(scenario, runs, warmup, files, tag)
        spec["gap_s"] = gap
        if pcap is not None:
            spec["pcap"] = str(Path(pcap).resolve())
        if trace_receiver:
            spec["trace_receiver"] = True
        spec_path, rows_path = work / "spec.json", work / "rows.jsonl"
        spec_path.write_text(json.dumps(spec, indent=1))
        budget = 120 + (runs + warmup) * (spec["timeout_s"] + gap)
        status = backends.runner(name)(spec_path, rows_path, say, budget)
        rows = [json.loads(x) for x in rows_path.read_text().splitlines()] if rows_path.exists() else []
        err = work / "rows.error"
        if err.exists():
            raise RuntimeError(f"emulation failed: {err.read_text().strip()}")
        if status == 130:
            raise KeyboardInterrupt
        bad = [r for r in rows if not r["ok"]]
        if status != 0 or bad or len(rows) != runs:
            why = bad[0].get("error") if bad else f"harness exit status {status}, {len(rows)}/{runs} rows"
            raise RuntimeError(f"emulation failed: {len(bad)} of {len(rows)} connections failed ({why})")
        if out is not None:
            write_rows(rows, out)
        testbed = json.loads((work / "rows.testbed.json").read_text()) if (work / "rows.testbed.json").exists() else {}
        if (work / "rows.netem.json").exists():  # netem's counters at the end (warm-up connections included)
            testbed["netem_counters"] = json.loads((work / "rows.netem.json").read_text())
        provenance = {"ttlbsim": __version__, "backend": name, **_versions(),
                      "kernel": _kernel(name), "warmup": warmup, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                      "seconds": round(time.time() - started, 1), "gap_s": gap, "tickets_sent": rows[0].get("tickets_sent"),
                      "negotiated": {"group": rows[0]["server"].get("group"), "cipher": rows[0]["server"].get("cipher")},
                      "testbed": testbed}
        return Result(scenario=scenario, seed=0, arrays=_arrays(rows), source="emulator", provenance=provenance)
    finally:
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _kernel(name: str) -> str:
    import platform
    if name == "native":
        return platform.release()
    binary = backends.uml_binary()
    return f"uml {backends.uml_version(binary) if binary else '?'} (CONFIG_HZ=100)"
