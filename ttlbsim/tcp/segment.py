"""What crosses the link: TCP segments as small slotted records, and their sizes on the wire.

Sizes are what netem's rate counts (skb->len at the root qdisc = IP packet + 14 B Ethernet
header; linux-tcp-netem.md §1, §8): a data segment with the timestamp option carries
14 + 20 + 32 = 66 B of headers; SYN/SYN-ACK 74 B (MSS, SACK-permitted, TS, window scale);
a SACK option adds 12 B for the first block and 8 B per further block (2 NOPs + kind/len + 8 per
block; `tcp_options_write()`).
"""

from __future__ import annotations

from typing import Any, ClassVar

#: Ethernet (14) + IPv4 (20) + TCP with the aligned timestamp option (32).
K_HEADER_BYTES = 66
#: SYN or SYN-ACK frame: Ethernet + IPv4 + TCP with MSS, SACK-permitted, TS and WS options.
K_SYN_FRAME_BYTES = 74
K_SACK_FIRST_BLOCK = 12
K_SACK_NEXT_BLOCK = 8

SYN = 1
ACK = 2


class Segment:
    """One TCP segment. `seq`/`end` are byte sequence numbers of the payload (end - seq = length;
    a SYN occupies no payload here), `ack` the cumulative ACK, `wnd` the advertised receive
    window in bytes, `sack` a tuple of (start, end) blocks (the first may be a DSACK when `dsack`),
    `tsval`/`tsecr` the timestamp option values (seconds, ms-granular like TCP_TS_HZ 1000),
    `nseg` the number of MSS segments it carries (a GSO skb: netem delays and drops it whole,
    the receiver processes its segments one by one; `frame_bytes` counts every segment's
    headers).

    `callbacks` belongs to the driver: a segment in flight is its own arrival event there (see
    `ttlbsim.session._Direction`); the protocol code never reads it."""

    __slots__ = ("flags", "seq", "end", "ack", "wnd", "sack", "dsack", "tsval", "tsecr", "frame_bytes", "nseg",
                 "callbacks")
    _ok: ClassVar[bool] = True  # (read by simpy when the segment's arrival is processed: it never fails)
    callbacks: Any  # (declared, never set here: see above)

    def __init__(self, flags: int, seq: int, end: int, ack: int, wnd: int, sack: tuple = (),
                 dsack: bool = False, tsval: float = 0.0, tsecr: float = 0.0) -> None:
        self.flags = flags
        self.seq = seq
        self.end = end
        self.ack = ack
        self.wnd = wnd
        self.sack = sack
        self.dsack = dsack
        self.tsval = tsval
        self.tsecr = tsecr
        self.nseg = 1  # MSS segments in this packet: > 1 for a GSO skb (one netem packet)
        if flags & SYN:
            self.frame_bytes = K_SYN_FRAME_BYTES
        elif sack:
            self.frame_bytes = (K_HEADER_BYTES + (end - seq) + K_SACK_FIRST_BLOCK
                                + K_SACK_NEXT_BLOCK * (len(sack) - 1))
        else:
            self.frame_bytes = K_HEADER_BYTES + (end - seq)

    @property
    def payload(self) -> int:
        return self.end - self.seq

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        kind = "SYN" if self.flags & SYN else ("DATA" if self.end > self.seq else "ACK")
        return f"<{kind} {self.seq}-{self.end} ack={self.ack} wnd={self.wnd} sack={self.sack}>"
