"""validation.diagnose: replies (the kernel's immediate replies minus netem's one-way delay) and acks, from a
capture's packets (here given directly instead of read from a pcap)."""

from __future__ import annotations

import pytest

from validation import diagnose as D


def test_replies_measure_each_sides_excess_and_skip_retransmitted_handshakes(monkeypatch):
    conns = {
        # (time ms, from, flags, seq start, seq end, length): SYN at 0, SYN-ACK leaves the server's netem
        # 17.5 ms + 150 us later, the client's ACK arrives 17.5 ms + 90 us after that
        "1000": [(0.0, "c", "S", None, None, 0), (17.65, "s", "S.", None, None, 0), (35.24, "c", ".", None, None, 0)],
        "1001": [(100.0, "c", "S", None, None, 0), (117.7, "s", "S.", None, None, 0), (135.3, "c", ".", None, None, 0)],
        # a retransmitted SYN: the reply may answer either copy, so the connection is left out
        "1002": [(200.0, "c", "S", None, None, 0), (1200.0, "c", "S", None, None, 0),
                 (1217.6, "s", "S.", None, None, 0), (1235.2, "c", ".", None, None, 0)],
    }
    monkeypatch.setattr(D, "packets", lambda pcap: conns)
    r = D.replies("unused.pcap")
    assert r["server: SYN -> SYN-ACK"] == pytest.approx([150.0, 200.0])
    assert r["client: SYN-ACK -> ACK"] == pytest.approx([90.0, 100.0])


def _lossy_cell(d, name, load, iqr_ms, loss="1%", retrans_every=5):
    """A synthetic emulated cell: 40 connections, TTFB spread uniformly over 2·iqr_ms (so its IQR
    is iqr_ms), every `retrans_every`-th one retransmitted (and 100 ms slower)."""
    import json

    import numpy as np

    from ttlbsim import Scenario
    sc = Scenario.build(kex="x25519", sig="rsa2048", rtt="35ms", bandwidth="1Gbit", loss=loss, data="0", initcwnd=20)
    rows = []
    for i, t in enumerate(np.linspace(100.0, 100.0 + 2 * iqr_ms, 40)):
        retx = int(i % retrans_every == 0)
        rows.append({"ok": True, "warmup": False, "ttfb_ms": t + 100 * retx, "ttlb_ms": t + 100 * retx,
                     "tcp": {"total_retrans": retx, "segs_out": 8},
                     "server": {"ok": True, "tcp": {"total_retrans": 0, "segs_out": 8}}})
    (d / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / f"{name}.json").write_text(json.dumps({
        "schema": 1, "source": "emulator", "scenario": sc.to_dict(), "cell": {"pair": "classical"},
        "host_load": {"uptime_before": f"10:00:00 up 1 day,  load average: {load:.2f}, 1.00, 1.00",
                      "uptime_after": "10:05:00 up 1 day,  load average: 0.50, 1.00, 1.00"}}))


def test_load_groups_the_loss_free_spread_of_lossy_cells_by_host_load(tmp_path, capsys):
    """Only lossy cells count, the spread is taken over the connections that retransmitted nothing
    (the slow retransmitted ones would otherwise widen it), and the buckets split at the edges."""
    for name, load, iqr in (("quiet_a", 0.5, 1.0), ("quiet_b", 1.1, 1.2), ("busy_a", 1.7, 3.0), ("busy_b", 3.0, 4.0)):
        _lossy_cell(tmp_path, name, load, iqr)
    _lossy_cell(tmp_path, "lossless", 3.0, 9.0, loss="0%")
    points = D.loss_free_spread(tmp_path)
    assert [name for *_, name in points] == ["quiet_a", "quiet_b", "busy_a", "busy_b"]
    assert [iqr for _, iqr, _ in points] == pytest.approx([1.0, 1.2, 3.0, 4.0], abs=0.15)
    buckets = D.spread_by_load(points)
    assert [(b["load_from"], b["cells"]) for b in buckets] == [(0.0, 2), (1.6, 1), (2.5, 1)]
    assert buckets[0]["wide_share"] == 0.0 and buckets[1]["wide_share"] == 1.0
    assert D.main(["load", "--data", str(tmp_path)]) == 0
    assert "4 lossy cells" in capsys.readouterr().out
    assert D.main(["load", "--data", str(tmp_path / "missing")]) == 2
    assert "--data" in capsys.readouterr().err


def test_acks_count_the_servers_skbs_and_the_clients_acks_by_size(monkeypatch):
    """`acks`: the server's segments that pass the tap within 0.1 ms of each other and continue one
    another are one skb (netem sent them as one GSO packet); a segment below the highest sequence
    seen is a retransmission; the client's pure ACKs are sorted by how many MSS they advance."""
    M = 1448
    s = lambda t, a, b: (t, "s", ".", a, b, b - a, 1)  # noqa: E731
    c = lambda t, ack: (t, "c", ".", None, None, 0, ack)  # noqa: E731
    warm = [c(0.0, 1)] * 2
    conn = [c(0.0, 1),
            s(10.0, 1, 1 + M), s(10.02, 1 + M, 1 + 2 * M),         # a 2-segment skb
            s(22.0, 1 + 2 * M, 1 + 3 * M),                          # a 1-segment skb
            s(34.0, 1 + 4 * M, 1 + 5 * M),                          # after a hole
            c(40.0, 1 + M), c(40.5, 1 + 2 * M),                     # one ACK per segment
            c(50.0, 1 + 3 * M),
            s(60.0, 1 + 3 * M, 1 + 4 * M),                          # the hole, retransmitted
            c(70.0, 1 + 5 * M)]                                     # acknowledges two
    monkeypatch.setattr(D, "packets", lambda pcap, with_ack=False: {"1": warm, "2": warm, "3": conn})
    r = D.acks("unused.pcap")
    assert r["server new skbs of 2 segments"] == 1 and r["server new skbs of 1 segment"] == 2
    assert r["server retransmitted skbs of 1 segment"] == 1
    assert r["client ACKs of 1 segment"] == 3 and r["client ACKs of 2 segments"] == 1
