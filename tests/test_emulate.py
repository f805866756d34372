"""The emulator (`ttlbsim emulate`): error paths and pieces that need no kernel, then — only when
the UML (or native) backend works here — clean-up after failure and Ctrl-C, and a smoke check
against the simulator (lossless, emulated TTFB/TTLB within 5 % of simulated)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from OpenSSL import SSL

from ttlbsim import Scenario
from ttlbsim.cli import main
from ttlbsim.emulate import backends, emulate, endpoints, write_rows
from ttlbsim.emulate.harness import netem_args

NO_BACKEND = {"TTLBSIM_UML": "/nonexistent/linux.uml", "TTLBSIM_NATIVE": "0"}


def _available() -> str | None:
    if backends.native_problem() is None:
        return "native"
    if backends.uml_problem() is None:
        return "uml"
    return None


BACKEND = _available()
needs_backend = pytest.mark.skipif(BACKEND is None, reason="no emulation backend (apt-get install user-mode-linux)")


# --------------------------------------------------------------------------- no kernel needed

def test_no_backend_is_one_line_and_exit_2(monkeypatch, capsys):
    for k, v in NO_BACKEND.items():
        monkeypatch.setenv(k, v)
    assert main(["emulate", "--runs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ttlbsim emulate: error: no emulation backend")
    assert "apt-get install user-mode-linux" in err


def test_diagnostic_flags_reach_emulate(monkeypatch):
    """`--pcap FILE` and `--trace-receiver` are handed to `emulate()`."""
    import ttlbsim.emulate as E
    seen = {}

    def fake(scenario, **kw):
        seen.update(kw)
        raise RuntimeError("stop here")

    monkeypatch.setattr(E, "emulate", fake)
    assert main(["emulate", "--runs", "1", "--pcap", "cap.pcap", "--trace-receiver"]) == 1
    assert seen["pcap"] == "cap.pcap" and seen["trace_receiver"] is True
    assert main(["emulate", "--runs", "1"]) == 1 and seen["pcap"] is None and seen["trace_receiver"] is False


def test_no_backend_from_the_shell():
    env = dict(os.environ, **NO_BACKEND)
    p = subprocess.run([sys.executable, "-m", "ttlbsim", "emulate", "--backend", "uml"], capture_output=True,
                       text=True, env=env)
    assert p.returncode == 2 and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and "user-mode-linux" in p.stderr


def test_unsupported_scenario_is_one_line(capsys):
    assert main(["emulate", "--compress", "zlib"]) == 2
    assert "certificate compression" in capsys.readouterr().err


def test_netem_arguments():
    net = {"rtt_s": 0.035, "jitter_s": 0.00875, "jitter_dist": "paretonormal", "bandwidth_bps": 1e9, "loss": 0.01,
           "limit": 1000, "mtu": 1500}
    assert netem_args(net) == ["limit", "1000", "delay", "17500us", "4375us", "distribution", "paretonormal",
                               "rate", "1000000000bit", "loss", "1%"]
    net.update(jitter_s=0.0, bandwidth_bps=None, loss=0.0)
    assert netem_args(net) == ["limit", "1000", "delay", "17500us"]


def _tickets(server_ctx: SSL.Context) -> int:
    return endpoints.tickets_sent(server_ctx)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_server_sends_exactly_the_scenarios_tickets(tmp_path, n):
    tls = {"kex": "x25519", "sig": "ecdsa-p256", "chain": 1, "cert_profile": "minimal", "tickets": n}
    files = endpoints.write_credentials(tls, tmp_path)
    ctx, sent = endpoints.server_context(tls, files)
    assert sent == n
    assert _tickets(ctx) == n


def test_client_offers_one_share_of_the_scenarios_group():
    groups = endpoints.client_groups("X25519MLKEM768", 1).decode().split(":")
    assert groups[0] == "*X25519MLKEM768" and sum(g.startswith("*") for g in groups) == 1
    assert endpoints.client_groups("x25519", 2).decode().startswith("*X25519:*X25519MLKEM768:")


def test_rows_as_csv_and_jsonl(tmp_path):
    tcp = {"total_retrans": 0, "segs_out": 5, "bytes_sent": 10}
    rows = [{"i": 2, "ok": True, "ttfb_ms": 1.0, "ttlb_ms": 2.0, "tcp": tcp, "server": {"tcp": tcp, "group": "x25519"}}]
    write_rows(rows, tmp_path / "r.csv")
    head, line = (tmp_path / "r.csv").read_text().splitlines()
    assert "ttlb_ms" in head and "server_segs_out" in head and line.startswith("2,True,1.0,2.0")
    write_rows(rows, tmp_path / "r.jsonl")
    assert json.loads((tmp_path / "r.jsonl").read_text()) == rows[0]


# --------------------------------------------------------------------------- with a backend

def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if text in (d / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@needs_backend
def test_failing_client_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("TTLBSIM_EMULATE_FAULT", "client")
    work = tmp_path / "work"
    sc = Scenario.build(kex="x25519", sig="ecdsa-p256", cert_profile="minimal", rtt="10ms", data="0")
    with pytest.raises(RuntimeError, match="injected client fault"):
        emulate(sc, runs=2, warmup=0, backend=BACKEND, progress=None, workdir=work)
    report = json.loads((work / "rows.jsonl.cleanup.json").read_text())
    assert report == {"netns": [], "processes": []}  # inside the emulation's kernel
    assert _processes_mentioning(str(work)) == []     # on the host: no guest, no harness


@needs_backend
def test_ctrl_c_leaves_nothing_behind(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    p = subprocess.Popen([sys.executable, "-m", "ttlbsim", "emulate", "--backend", BACKEND, "--runs", "50",
                          "--kex", "x25519", "--sig", "ecdsa-p256", "--rtt", "200ms", "--data", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in p.stderr:
        if "server ready" in line:
            break
    time.sleep(1)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=60) == 130
    time.sleep(0.5)
    assert _processes_mentioning(str(tmp_path)) == []
    assert list(tmp_path.iterdir()) == []  # work directory removed


@needs_backend
def test_smoke_emulation_matches_the_simulator(tmp_path):
    """One lossless cell: emulated TTFB and TTLB medians within 5 % of the simulator's (HZ of the
    emulating kernel: 100 for the UML guest). The rows also carry the receiver trace asked for."""
    from ttlbsim.simulate import simulate
    hz = 100 if BACKEND == "uml" else 250
    sc = Scenario.build(kex="X25519MLKEM768", sig="mldsa44", rtt="100ms", bandwidth="10Mbit", initcwnd=20,
                        data="50KiB", hz=hz)
    e = emulate(sc, runs=5, backend=BACKEND, progress=None, out=tmp_path / "rows.jsonl", trace_receiver=True)
    s = simulate(e.scenario, runs=5, seed=0)
    assert e.source == "emulator" and e.runs == 5 and (e.retransmits == 0).all()
    for metric in ("ttfb_ms", "ttlb_ms"):
        emu, sim = e.percentiles(metric)["p50"], s.percentiles(metric)["p50"]
        assert abs(emu / sim - 1) < 0.05, (metric, emu, sim)
    netem = e.provenance["testbed"]["netem_counters"]  # both sides' qdiscs sent every segment, dropped none
    assert netem["s"]["packets"] >= 7 * 40 and netem["c"]["packets"] >= 7 * 5 and netem["s"]["drops"] == 0
    rows = [json.loads(x) for x in (tmp_path / "rows.jsonl").read_text().splitlines()]
    for row in rows:  # one entry per SSL_read, ending with the whole response read
        trace = row["receiver"]
        assert trace[-1][1] == 50 * 1024 and all(t[5] >= 4096 for t in trace)
        assert [t[0] for t in trace] == sorted(t[0] for t in trace)


def test_receiver_state_reads_tcp_info_and_the_buffer():
    """`_receiver_state` on a real TCP socket: rcv_ssthresh and the receive buffer are positive,
    and SO_RCVBUF is what the kernel reports for the socket."""
    import socket
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    c = socket.create_connection(ls.getsockname())
    s, _ = ls.accept()
    s.sendall(b"x" * 20000)
    got = 0
    while got < 20000:
        got += len(c.recv(65536))
    state = endpoints._receiver_state(c, 1.5, got)
    assert state[:2] == [1.5, 20000] and state[2] > 0 and state[5] == c.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    for sock in (c, s, ls):
        sock.close()


def test_gap_between_connections_default_and_bad_value():
    from ttlbsim.emulate import default_gap_s

    lossless = Scenario.build(rtt="200ms", bandwidth="1Mbit")
    lossy = lossless.replace(loss="1%")
    assert default_gap_s(lossless) == pytest.approx(0.6)
    assert default_gap_s(lossy) == pytest.approx(1.6)
    p = subprocess.run([sys.executable, "-m", "ttlbsim", "emulate", "--gap", "-1s", "--runs", "1"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "gap" in p.stderr and p.stderr.count("\n") == 1
