"""validation.diagnose replies: the kernel's immediate replies minus netem's one-way delay, from a
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
