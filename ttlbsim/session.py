"""One TLS 1.3 connection over TCP through a netem link, as simpy processes.

The protocol objects (`ttlbsim.tcp.endpoint.Endpoint`, `ttlbsim.link.NetemPath`) are plain
objects handed the current time; this module is the thin driver: it carries segments across the
link (one simpy event per packet), wakes each endpoint at its timer deadline, and runs the two
applications as simpy processes that follow the handshake profile:

client: connect() → ClientHello → wait for the server's whole flight → compute (decapsulate,
verify) → [Certificate, CertificateVerify,] Finished — handshake complete (TTFB) — and the
request; then wait for the last response byte (TTLB).
server: accept → wait for the ClientHello → compute (encapsulate, sign) → its flight → wait for
the client's Finished → NewSessionTickets (if any) → wait for the request → the response in TLS
records (one write() per record, ≤ 16 KiB of plaintext + 22 B each).

Times are measured from the client's connect(), as the study's timer does. With `data` = 0 the
server sends no response and TTLB = TTFB.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from heapq import heappush

import numpy as np
import simpy
from simpy.events import NORMAL

from .compute import ComputeModel
from .handshake.profile import HandshakeProfile
from .host import PacketLatency
from .link import Link
from .scenario import Scenario
from .tcp.endpoint import Endpoint
from .timers import KernelTimers

_new = object.__new__

K_IP_TCP_TS_OVERHEAD = 52  # IPv4 (20) + TCP (20) + timestamp option (12): MSS = MTU - 52


@dataclass
class RunRecord:
    """What one simulated connection produced (times in seconds from connect())."""

    ttfb: float
    ttlb: float
    retransmits: int
    rtos: int
    tlps: int
    packets_up: int
    packets_down: int
    bytes_up: int
    bytes_down: int
    min_rtt: float = float("nan")  # the client's min_rtt (tcpi_min_rtt), s; nan without a sample
    server_min_rtt: float = float("nan")  # the server's


class _Waiter:
    __slots__ = ("target", "event")

    def __init__(self) -> None:
        self.target = -1
        self.event: simpy.Event | None = None


class _WakeUp:
    """Endpoint `ep`'s wake-up at its timer deadline `deadline` (s): a simpy event that is
    scheduled already triggered (as a `simpy.Timeout` is) and never fails. `callbacks` is a
    shared one-element tuple holding the handler: simpy only iterates an event's callbacks and
    then sets them to None, and nothing else ever waits for a wake-up, so no per-event list (nor
    the rest of a `simpy.Event`) is needed."""

    __slots__ = ("callbacks", "ep", "deadline")
    _ok = True
    # (no __init__: `Connection._schedule`, the only place one is made, sets the three fields
    # on a bare instance, saving a Python call per wake-up)


# Arrivals and wake-ups go into simpy's own event queue as `env.schedule(event, NORMAL, delay)`
# puts them there — the same (env.now + delay, NORMAL, event id, event) heap entry — written out
# to save a method call per packet ("# env.schedule" below); `env._now` is what `env.now` returns.


class _Direction:
    """One way across the link: hands each segment to this side's netem and, if it survives,
    schedules its arrival. LOST, or DROPPED at the queue limit (negative release times), are not
    delivered: Linux would keep a DROPPED segment unsent and enter CWR, but with the default limit
    of 1000 packets these flows never reach it, so both count as a loss on the wire. Counts frame
    bytes (as netem counts them, lost ones included) and Ethernet frames (a GSO packet is
    several).

    The segment is its own simpy event: scheduled already triggered (as a `simpy.Timeout` is),
    with the heap entry (time, NORMAL, eid) a timeout gets, and `callbacks` a shared one-element
    tuple holding the receiving side's handler (simpy only iterates an event's callbacks and then
    sets them to None; nothing else waits for an arrival, and each segment is carried once).

    `latency` (a `ttlbsim.host.PacketLatency`, or None) adds the hosts' own per-packet latency
    after netem releases the packet."""

    __slots__ = ("env", "path", "deliver", "bytes", "frames", "latency")

    def __init__(self, env: simpy.Environment, path, latency: PacketLatency | None = None) -> None:
        self.env = env
        self.path = path
        self.deliver: tuple | None = None  # the arrivals' shared callbacks (set by the Connection)
        self.bytes = 0
        self.frames = 0
        self.latency = latency

    def carry(self, seg) -> None:
        frame = seg.frame_bytes
        self.bytes += frame
        self.frames += seg.nseg
        env = self.env
        now = env._now
        release = self.path.send(now, frame, 0)
        if release >= 0.0:
            if self.latency is not None:
                release = self.latency.arrival(release)
            seg.callbacks = self.deliver
            # env.schedule(seg, NORMAL, delay=release - now) (release >= now: delay >= 0)
            heappush(env._queue, (now + (release - now), NORMAL, next(env._eid), seg))


class Connection:
    """Wires two endpoints to a link inside a simpy Environment."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, link: Link, timer_phase: float,
                 latency: tuple[PacketLatency, PacketLatency] | None = None) -> None:
        self.env = env
        tcp = scenario.tcp
        mss = scenario.network.mtu - K_IP_TCP_TS_OVERHEAD
        self.client_established = env.event()
        self.server_established = env.event()
        self._waiters = {"client": _Waiter(), "server": _Waiter()}
        self._received = {"client": 0, "server": 0}
        timers = KernelTimers(tcp.hz, timer_phase)
        self.link = link
        self.up = _Direction(env, link.up, latency[0] if latency else None)
        self.down = _Direction(env, link.down, latency[1] if latency else None)
        self._wake_cb = (self._wake,)  # the wake-ups' shared callbacks (see _WakeUp)
        self.client = Endpoint(name="client", tcp=tcp, mss=mss, timers=timers, emit=self.up.carry,
                               on_established=lambda now: self._succeed(self.client_established),
                               on_receive=self._client_received)
        self.server = Endpoint(name="server", tcp=tcp, mss=mss, timers=timers, emit=self.down.carry,
                               on_established=lambda now: self._succeed(self.server_established),
                               on_receive=self._server_received)
        self.up.deliver = (partial(self._deliver, self.server),)  # the arrivals' shared callbacks
        self.down.deliver = (partial(self._deliver, self.client),)

    def close(self) -> None:
        """Drop the references that make the connection's objects a cycle (callbacks and bound
        methods between the endpoints, their halves and this driver; simpy's queue of pending
        events and its environment's bound helpers), so that reference counting frees them as
        soon as the run is over instead of the cyclic garbage collector, whose collections they
        would otherwise trigger (~90 objects a run). The connection is unusable afterwards."""
        for ep in (self.client, self.server):
            ep.sender.queue.clear()
            ep.sender._make_segment = ep.sender._emit = None
            ep._emit = ep._on_established = ep._on_receive = None
        self.up.deliver = self.down.deliver = None
        env = self.env
        self.__dict__.clear()
        env.__dict__.clear()

    # -- plumbing -------------------------------------------------------------------------------
    @staticmethod
    def _succeed(event: simpy.Event) -> None:
        if not event.triggered:
            event.succeed()

    def _deliver(self, ep: Endpoint, seg) -> None:
        """A packet arrives at `ep` (the arrivals' callback, bound to one endpoint per direction).
        Afterwards, as `_after`: a wake-up at the endpoint's earliest deadline if that is earlier
        than its scheduled wake-up (or it has none)."""
        ep.on_segment(self.env._now, seg)
        deadline = ep.timer_deadline()
        if deadline is not None:
            w = ep.wake_at
            if w is None or deadline < w:
                self._schedule(ep, deadline)

    def _after(self, ep: Endpoint) -> None:
        """Make sure a wake-up is scheduled at the endpoint's earliest timer deadline (a wake-up
        that comes too early — the deadline moved later — finds nothing due and re-arms).

        Between events this keeps, for each endpoint: no wake-up scheduled (`wake_at` None) only
        when it has no deadline, else `wake_at` ≤ its earliest deadline."""
        deadline = ep.timer_deadline()
        if deadline is None:
            return
        scheduled = ep.wake_at
        if scheduled is not None and scheduled <= deadline:
            return
        self._schedule(ep, deadline)

    def _schedule(self, ep: Endpoint, deadline: float) -> None:
        """Schedule a wake-up of `ep` at `deadline`, its earliest timer deadline, which is earlier
        than its scheduled wake-up if any (that one, when it comes, finds nothing due)."""
        ep.wake_at = deadline
        env = self.env
        now = env._now
        wake = _new(_WakeUp)  # (see _WakeUp)
        wake.callbacks = self._wake_cb
        wake.ep = ep
        wake.deadline = deadline
        heappush(env._queue, (now + (deadline - now if deadline > now else 0.0), NORMAL, next(env._eid), wake))  # env.schedule

    def _wake(self, wake: _WakeUp) -> None:
        """A wake-up of `wake.ep`: the endpoint runs the timers that are due (`Endpoint.on_timer`
        tests each: none is when the wake-up comes early, its deadline having moved later), then
        `_after` schedules a wake-up at its next deadline. A wake-up superseded by an earlier one
        that is still to come does nothing (by `_after`'s invariant nothing is due)."""
        ep = wake.ep
        scheduled = ep.wake_at
        now = self.env._now
        if scheduled == wake.deadline:
            ep.wake_at = None
        elif scheduled is None or scheduled > now + 1e-12:
            return
        ep.on_timer(now)
        self._after(ep)  # (a timer only emits into the link: the peer's deadlines are unchanged)

    def _client_received(self, now: float, total: int) -> None:
        self._received_bytes("client", total)

    def _server_received(self, now: float, total: int) -> None:
        self._received_bytes("server", total)

    def _received_bytes(self, side: str, total: int) -> None:
        self._received[side] = total
        w = self._waiters[side]
        if w.event is not None and total >= w.target:
            ev, w.event = w.event, None
            ev.succeed()

    def wait_bytes(self, side: str, target: int) -> simpy.Event:
        """An event that fires when `side` has received `target` bytes in total."""
        ev = self.env.event()
        if self._received[side] >= target:
            ev.succeed()
            return ev
        w = self._waiters[side]
        w.target, w.event = target, ev
        return ev

    def write(self, ep: Endpoint, nbytes: int) -> None:
        ep.write(self.env._now, nbytes)
        self._after(ep)


def record_ends(flights, sender: str, app_records: list[int]) -> list[int]:
    """Where the TLS records `sender` writes end, as offsets in its byte stream: one record per
    handshake message (ChangeCipherSpec included), then the application records."""
    ends, at = [], 0
    for f in flights:
        if f.sender == sender:
            for _, n in f.messages:
                at += n
                ends.append(at)
    for n in app_records:
        at += n
        ends.append(at)
    return ends


def response_writes(data_bytes: int, profile: HandshakeProfile) -> list[int]:
    """The server's write() sizes for `data_bytes` of response: one TLS record per write."""
    out = []
    left = data_bytes
    while left > 0:
        chunk = min(left, profile.max_fragment)
        out.append(chunk + profile.record_overhead)
        left -= chunk
    return out


_last_plan: tuple = (None, None, None)


def _plan(scenario: Scenario, profile: HandshakeProfile) -> tuple:
    """What every connection of a scenario writes and waits for: the request's size, the
    response's writes, the TLS record ends each side reads, the client's last handshake flight,
    and the bytes of each side's flights. The same for every run of a scenario: worked out once
    for the scenario and profile of the previous call (`simulate` runs one scenario many times)."""
    global _last_plan
    s, p, plan = _last_plan
    if s is scenario and p is profile:
        return plan
    flights = profile.flights
    request = scenario.workload.request_bytes + profile.record_overhead
    response = response_writes(scenario.workload.data_bytes, profile)
    plan = (request, response, record_ends(flights, "server", response), record_ends(flights, "client", [request]),
            max(i for i, f in enumerate(flights) if f.sender == "client" and f.phase == "handshake"),
            sum(f.bytes for f in flights if f.sender == "server"), sum(f.bytes for f in flights if f.sender == "client"))
    _last_plan = (scenario, profile, plan)
    return plan


def _min_rtt(ep: Endpoint) -> float:
    """The endpoint's min_rtt in seconds (tcpi_min_rtt), nan if it took no RTT sample."""
    us = ep.rtt.min_rtt_us
    return float("nan") if us is None else us * 1e-6


def run_connection(scenario: Scenario, profile: HandshakeProfile, compute: ComputeModel,
                   seed_seq: np.random.SeedSequence) -> RunRecord:
    """Simulate one connection; all randomness comes from `seed_seq`."""
    up_seq, down_seq, misc_seq = seed_seq.spawn(3)
    # the host's flight-to-flight latency variation (a fourth stream, so the link's draws are the same
    # with and without it)
    host = np.random.default_rng(seed_seq.spawn(1)[0]) if compute.varies else None
    env = simpy.Environment()
    link = Link(scenario.network, np.random.default_rng(up_seq), np.random.default_rng(down_seq))
    # where connect() falls within a jiffy: the first uniform draw of the run's third stream
    phase = float(np.random.default_rng(misc_seq).random()) / scenario.tcp.hz
    latency = None
    if compute.packet_delay or compute.packet_jitter:
        # the hosts' per-packet latency: two more streams (spawned after the others, so the
        # link's and the host's draws are the same with and without it)
        lat_up, lat_down = seed_seq.spawn(2)
        latency = (PacketLatency(compute.packet_delay, compute.packet_jitter, np.random.default_rng(lat_up)),
                   PacketLatency(compute.packet_delay, compute.packet_jitter, np.random.default_rng(lat_down)))
    conn = Connection(env, scenario, link, phase, latency)
    flights = profile.flights
    request, response, client_ends, server_ends, last_client_hs, server_total, client_total = _plan(scenario, profile)
    conn.client.receiver.record_ends = client_ends  # (read only)
    conn.server.receiver.record_ends = server_ends
    conn.client.read_delay = conn.server.read_delay = compute.read_delay
    conn.client.recv_cost = conn.server.recv_cost = compute.recv_cost
    times = {"ttfb": None, "ttlb": None}

    def write_flight(ep, f, handshake_done=False):
        """The flight's remaining crypto and the host's overhead, then its writes, with the crypto
        `write_ops` places between them (a signature after the writes it does not hold up)."""
        delay = compute.flight_time(f.final_ops, host)
        if delay:
            yield env.timeout(delay)
        between = dict(f.write_ops)
        for k, w in enumerate(f.writes):
            if k in between:
                delay = compute.crypto_time(between[k])
                if delay:
                    yield env.timeout(delay)
            conn.write(ep, w)
        if handshake_done:
            times["ttfb"] = env.now  # SSL_do_handshake() returns once its Finished is written

    def read_flight(side, i, received):
        """Wait for flight i of the peer (`received` bytes of the peer's flights before it), doing
        the next flight's `read_ops` as the messages they need complete."""
        nxt = flights[i + 1] if i + 1 < len(flights) else None
        if nxt is not None and nxt.sender == side:
            for n, ops in nxt.read_ops:
                yield conn.wait_bytes(side, received + n)
                delay = compute.crypto_time(ops)
                if delay:
                    yield env.timeout(delay)
        yield conn.wait_bytes(side, received + flights[i].bytes)

    def client_app():
        conn.client.connect(env.now)
        conn._after(conn.client)
        yield conn.client_established
        received = 0
        for i, f in enumerate(flights):
            if f.sender == "server":
                if f.phase == "handshake":
                    yield from read_flight("client", i, received)
                    received += f.bytes
                continue
            yield from write_flight(conn.client, f, i == last_client_hs)
        delay = compute.flight_time((), host)
        if delay:
            yield env.timeout(delay)
        conn.write(conn.client, request)
        if response:
            yield conn.wait_bytes("client", server_total + sum(response))
            times["ttlb"] = env.now
        else:
            times["ttlb"] = times["ttfb"]

    def server_app():
        yield conn.server_established
        received = 0
        for i, f in enumerate(flights):
            if f.sender == "client":
                yield from read_flight("server", i, received)
                received += f.bytes
                continue
            yield from write_flight(conn.server, f)
        if profile.post_ops and not any(f.sender == "server" and f.phase == "post" for f in flights):
            # checks of the client's chain under mTLS (otherwise part of the ticket flight's ops)
            delay = compute.flight_time(profile.post_ops, host)
            if delay:
                yield env.timeout(delay)
        yield conn.wait_bytes("server", client_total + request)
        delay = compute.flight_time((), host)
        if delay and response:
            yield env.timeout(delay)
        for w in response:
            conn.write(conn.server, w)

    client_proc = env.process(client_app())
    env.process(server_app())
    env.run(until=client_proc)
    c, s = conn.client, conn.server
    record = RunRecord(
        ttfb=times["ttfb"], ttlb=times["ttlb"],
        retransmits=c.sender.retransmits + s.sender.retransmits + c.syn_retrans + s.syn_retrans,
        rtos=c.sender.rto_count + s.sender.rto_count, tlps=c.sender.tlp_count + s.sender.tlp_count,
        packets_up=conn.up.frames, packets_down=conn.down.frames, bytes_up=conn.up.bytes, bytes_down=conn.down.bytes,
        min_rtt=_min_rtt(c), server_min_rtt=_min_rtt(s),
    )
    conn.close()
    return record
