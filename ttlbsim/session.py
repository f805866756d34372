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
from heapq import heappush

import numpy as np
import simpy
from numpy.random.bit_generator import ISpawnableSeedSequence
from simpy.events import NORMAL

from .compute import ComputeModel
from .handshake.profile import HandshakeProfile
from .link import Link
from .scenario import Scenario
from .tcp.endpoint import Endpoint
from .timers import KernelTimers

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


class _Waiter:
    __slots__ = ("target", "event")

    def __init__(self) -> None:
        self.target = -1
        self.event: simpy.Event | None = None


class _WakeUp:
    """An endpoint's wake-up at its timer deadline `deadline` (s): a simpy event that is
    scheduled already triggered (as a `simpy.Timeout` is) and never fails. `callbacks` is a
    shared one-element tuple holding the handler: simpy only iterates an event's callbacks and
    then sets them to None, and nothing else ever waits for a wake-up, so no per-event list (nor
    the rest of a `simpy.Event`) is needed."""

    __slots__ = ("callbacks", "deadline")
    _ok = True

    def __init__(self, callbacks: tuple, deadline: float) -> None:
        self.callbacks = callbacks
        self.deadline = deadline


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
    sets them to None; nothing else waits for an arrival, and each segment is carried once)."""

    __slots__ = ("env", "path", "deliver", "bytes", "frames")

    def __init__(self, env: simpy.Environment, path, deliver) -> None:
        self.env = env
        self.path = path
        self.deliver = (deliver,)  # the arrivals' shared callbacks
        self.bytes = 0
        self.frames = 0

    def carry(self, seg) -> None:
        frame = seg.frame_bytes
        self.bytes += frame
        self.frames += seg.nseg
        env = self.env
        now = env._now
        release = self.path.send(now, frame, 0)
        if release >= 0:
            seg.callbacks = self.deliver
            heappush(env._queue, (now + (release - now if release > now else 0.0), NORMAL, next(env._eid), seg))  # env.schedule


class Connection:
    """Wires two endpoints to a link inside a simpy Environment."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, link: Link, timer_phase: float) -> None:
        self.env = env
        tcp = scenario.tcp
        mss = scenario.network.mtu - K_IP_TCP_TS_OVERHEAD
        self.client_established = env.event()
        self.server_established = env.event()
        self._waiters = {"client": _Waiter(), "server": _Waiter()}
        self._received = {"client": 0, "server": 0}
        timers = KernelTimers(tcp.hz, timer_phase)
        self.link = link
        self.up = _Direction(env, link.up, self._deliver_server)
        self.down = _Direction(env, link.down, self._deliver_client)
        self._wake_client_cb = (self._wake_client,)  # wake-ups' shared callbacks (see _WakeUp)
        self._wake_server_cb = (self._wake_server,)
        self.client = Endpoint(name="client", tcp=tcp, mss=mss, timers=timers, emit=self.up.carry,
                               on_established=lambda now: self._succeed(self.client_established),
                               on_receive=self._client_received)
        self.server = Endpoint(name="server", tcp=tcp, mss=mss, timers=timers, emit=self.down.carry,
                               on_established=lambda now: self._succeed(self.server_established),
                               on_receive=self._server_received)

    def close(self) -> None:
        """Drop the references that make the connection's objects a cycle (callbacks and bound
        methods between the endpoints, their halves and this driver; simpy's queue of pending
        events and its environment's bound helpers), so that reference counting frees them as
        soon as the run is over instead of the cyclic garbage collector, whose collections they
        would otherwise trigger (~90 objects a run). The connection is unusable afterwards."""
        for ep in (self.client, self.server):
            ep.sender.queue.clear()
            ep.sender._make_segment = ep.sender._emit = ep.sender._on_data_sent = None
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

    # After every packet: `_after` only when the endpoint's earliest deadline is now earlier
    # than its scheduled wake-up (or it has none), the one case in which `_after` acts.
    def _deliver_server(self, seg) -> None:
        ep = self.server
        ep.on_segment(self.env._now, seg)
        deadline = ep.timer_deadline()
        if deadline is not None and (ep.wake_at is None or deadline < ep.wake_at):
            self._after(ep)

    def _deliver_client(self, seg) -> None:
        ep = self.client
        ep.on_segment(self.env._now, seg)
        deadline = ep.timer_deadline()
        if deadline is not None and (ep.wake_at is None or deadline < ep.wake_at):
            self._after(ep)

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
        ep.wake_at = deadline
        env = self.env
        now = env._now
        wake = _WakeUp(self._wake_client_cb if ep is self.client else self._wake_server_cb, deadline)
        heappush(env._queue, (now + (deadline - now if deadline > now else 0.0), NORMAL, next(env._eid), wake))  # env.schedule

    def _wake_client(self, wake: _WakeUp) -> None:
        self._wake(self.client, wake.deadline)

    def _wake_server(self, wake: _WakeUp) -> None:
        self._wake(self.server, wake.deadline)

    def _wake(self, ep: Endpoint, deadline: float) -> None:
        scheduled = ep.wake_at
        now = self.env._now
        if scheduled == deadline:
            ep.wake_at = None
        elif scheduled is None or scheduled > now + 1e-12:
            # a wake-up superseded by an earlier one, which is still to come (or no deadline is
            # left): by _after's invariant nothing is due and nothing needs scheduling
            return
        due = ep.timer_deadline()
        if due is not None and due <= now + 1e-12:
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


def response_writes(data_bytes: int, profile: HandshakeProfile) -> list[int]:
    """The server's write() sizes for `data_bytes` of response: one TLS record per write."""
    out = []
    left = data_bytes
    while left > 0:
        chunk = min(left, profile.max_fragment)
        out.append(chunk + profile.record_overhead)
        left -= chunk
    return out


# -- a run's random streams --------------------------------------------------------------------
# A run draws from the children 0-3 of its SeedSequence: up link (0), down link (1), the jiffy
# phase (2) and, when it varies, the host latency (3). `SeedSequence.spawn()` and `default_rng()`
# cost ~85 µs a run (numpy arrays and an errstate context at each step, for a handful of 32-bit
# words), so the children's seeds are worked out here with numpy's own algorithm
# (numpy/random/bit_generator.pyx: `_coerce_to_uint32_array`, `mix_entropy`, `generate_state`,
# which numpy keeps stable for reproducibility), the part common to every run of a seed once.
# The bit generators are numpy's PCG64 seeded from those words: the same streams, number for
# number, as ``default_rng(seed_seq.spawn(4)[k])``.

_M32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1
_M128 = (1 << 128) - 1
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_PCG_MULT = (2549297995355413924 << 64) | 4865540595714422341  # PCG_DEFAULT_MULTIPLIER_128


def _hash_consts(init: int, mult: int, n: int) -> list[tuple[int, int]]:
    """The (xor, multiplier) pairs of n successive hashmix steps: the hash constant evolves the
    same way whatever the data (c ← c · mult), so step k is ``((x ^ c_k) · c_{k+1}) mod 2^32``."""
    out, c = [], init
    for _ in range(n):
        nxt = (c * mult) & _M32
        out.append((c, nxt))
        c = nxt
    return out


# generate_state(4, np.uint64) of a 4-word pool: 8 words from the pool's words 0, 1, 2, 3, 0, ...
(_G0, _H0), (_G1, _H1), (_G2, _H2), (_G3, _H3), (_G4, _H4), (_G5, _H5), (_G6, _H6), (_G7, _H7) = \
    _hash_consts(_INIT_B, _MULT_B, 8)


def _int_words(n) -> list[int] | None:
    """A non-negative integer as 32-bit words, lowest first ([0] for 0); None if not one."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        return None
    n = int(n)
    if n == 0:
        return [0]
    out = []
    while n > 0:
        out.append(n & _M32)
        n >>= 32
    return out


def _seq_words(x) -> list[int] | None:
    """`_coerce_to_uint32_array` for an int or a flat sequence of ints; None for anything else
    (then numpy does the work)."""
    if isinstance(x, (list, tuple, range)):
        out = []
        for v in x:
            w = _int_words(v)
            if w is None:
                return None
            out += w
        return out
    return _int_words(x)


def _mix_in(pool: tuple[int, int, int, int], hc: int, word: int) -> tuple[tuple[int, int, int, int], int]:
    """`mix_entropy`'s last loop for one entropy word past the pool size: each pool word p ←
    mix(p, hashmix(word)). Returns the pool and the hash constant."""
    p0, p1, p2, p3 = pool
    v = word ^ hc
    hc = (hc * _MULT_A) & _M32
    v = (v * hc) & _M32
    x = (_MIX_L * p0 - _MIX_R * (v ^ (v >> 16))) & _M32
    p0 = x ^ (x >> 16)
    v = word ^ hc
    hc = (hc * _MULT_A) & _M32
    v = (v * hc) & _M32
    x = (_MIX_L * p1 - _MIX_R * (v ^ (v >> 16))) & _M32
    p1 = x ^ (x >> 16)
    v = word ^ hc
    hc = (hc * _MULT_A) & _M32
    v = (v * hc) & _M32
    x = (_MIX_L * p2 - _MIX_R * (v ^ (v >> 16))) & _M32
    p2 = x ^ (x >> 16)
    v = word ^ hc
    hc = (hc * _MULT_A) & _M32
    v = (v * hc) & _M32
    x = (_MIX_L * p3 - _MIX_R * (v ^ (v >> 16))) & _M32
    return (p0, p1, p2, x ^ (x >> 16)), hc


_run_pools: dict[tuple[int, ...], tuple[tuple[int, int, int, int], int]] = {}


def _entropy_pool(words: tuple[int, ...]) -> tuple[tuple[int, int, int, int], int]:
    """`mix_entropy` of a 4-word pool over the run entropy `words` (padded with zeros to the
    pool size, as for any SeedSequence with a spawn key): the pool and the hash constant to mix
    the spawn key into. Cached: the same for every run of a seed."""
    got = _run_pools.get(words)
    if got is not None:
        return got
    w = list(words) + [0] * (4 - len(words))
    hc = _INIT_A
    pool = []
    for i in range(4):  # hashmix of the first 4 words
        v = ((w[i] ^ hc) * ((hc * _MULT_A) & _M32)) & _M32
        hc = (hc * _MULT_A) & _M32
        pool.append(v ^ (v >> 16))
    for src in range(4):  # all bits mixed together
        for dst in range(4):
            if src != dst:
                v = ((pool[src] ^ hc) * ((hc * _MULT_A) & _M32)) & _M32
                hc = (hc * _MULT_A) & _M32
                x = (_MIX_L * pool[dst] - _MIX_R * (v ^ (v >> 16))) & _M32
                pool[dst] = x ^ (x >> 16)
    got = (pool[0], pool[1], pool[2], pool[3]), hc
    for word in w[4:]:
        got = _mix_in(*got, word)
    if len(_run_pools) < 256:
        _run_pools[words] = got
    return got


def _state64(pool: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """`generate_state(4, np.uint64)` of a SeedSequence whose 4-word pool is `pool`."""
    p0, p1, p2, p3 = pool
    v0 = ((p0 ^ _G0) * _H0) & _M32
    v1 = ((p1 ^ _G1) * _H1) & _M32
    v2 = ((p2 ^ _G2) * _H2) & _M32
    v3 = ((p3 ^ _G3) * _H3) & _M32
    v4 = ((p0 ^ _G4) * _H4) & _M32
    v5 = ((p1 ^ _G5) * _H5) & _M32
    v6 = ((p2 ^ _G6) * _H6) & _M32
    v7 = ((p3 ^ _G7) * _H7) & _M32
    return (v0 ^ (v0 >> 16) | (v1 ^ (v1 >> 16)) << 32, v2 ^ (v2 >> 16) | (v3 ^ (v3 >> 16)) << 32,
            v4 ^ (v4 >> 16) | (v5 ^ (v5 >> 16)) << 32, v6 ^ (v6 >> 16) | (v7 ^ (v7 >> 16)) << 32)


class _ChildSeed(ISpawnableSeedSequence):
    """The SeedSequence with run entropy `entropy` and `spawn_key`, given its mixed 4-word
    `pool`: `generate_state(4, np.uint64)` (all PCG64 asks for) gives what
    ``np.random.SeedSequence(entropy, spawn_key=spawn_key)`` gives, other requests are passed to
    such a SeedSequence, and `spawn` hands out genuine SeedSequences."""

    def __init__(self, entropy, spawn_key: tuple, pool: tuple[int, int, int, int]) -> None:
        self.entropy = entropy
        self.spawn_key = spawn_key
        self.pool = pool
        self.n_children_spawned = 0

    def _genuine(self) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.entropy, spawn_key=self.spawn_key,
                                      n_children_spawned=self.n_children_spawned)

    def generate_state(self, n_words, dtype=np.uint32):
        if n_words == 4 and dtype is np.uint64:
            return np.array(_state64(self.pool), dtype=np.uint64)
        return self._genuine().generate_state(n_words, dtype)

    def spawn(self, n_children):
        seqs = self._genuine().spawn(n_children)
        self.n_children_spawned += n_children
        return seqs

    def first_double(self) -> float:
        """The first `random()` of a PCG64 seeded from this sequence (`pcg64_set_seed`: one
        step of the 128-bit LCG; then a step and the XSL-RR output, top 53 bits), without
        building one."""
        w0, w1, w2, w3 = _state64(self.pool)
        inc = ((((w2 << 64) | w3) << 1) | 1) & _M128
        state = (((inc + ((w0 << 64) | w1)) * _PCG_MULT + inc) * _PCG_MULT + inc) & _M128
        x = ((state >> 64) ^ state) & _M64
        rot = state >> 122
        return ((((x >> rot) | (x << (64 - rot))) & _M64) >> 11) * (1.0 / 9007199254740992.0)


def _children(seed_seq: np.random.SeedSequence, n: int) -> list:
    """Children ``n_children_spawned`` … ``+ n - 1`` of `seed_seq` (what ``seed_seq.spawn(n)``
    returns, without advancing `seed_seq`), as `_ChildSeed` when the pool has the default 4
    words and the entropy and spawn key are plain integers, else as genuine SeedSequences."""
    base = seed_seq.n_children_spawned
    if type(seed_seq) is np.random.SeedSequence and seed_seq.pool_size == 4:
        run = _seq_words(seed_seq.entropy)
        key = _seq_words(seed_seq.spawn_key)
        if run is not None and key is not None:
            pool, hc = _entropy_pool(tuple(run))
            for word in key:
                pool, hc = _mix_in(pool, hc, word)
            out = []
            for k in range(base, base + n):
                child, h = pool, hc
                for word in _int_words(k):
                    child, h = _mix_in(child, h, word)
                out.append(_ChildSeed(seed_seq.entropy, seed_seq.spawn_key + (k,), child))
            return out
    return [np.random.SeedSequence(seed_seq.entropy, spawn_key=seed_seq.spawn_key + (k,), pool_size=seed_seq.pool_size)
            for k in range(base, base + n)]


def _generator(seq) -> np.random.Generator:
    """``np.random.default_rng(seq)``."""
    return np.random.Generator(np.random.PCG64(seq))


def run_connection(scenario: Scenario, profile: HandshakeProfile, compute: ComputeModel,
                   seed_seq: np.random.SeedSequence) -> RunRecord:
    """Simulate one connection; all randomness comes from `seed_seq`: from its children 0 and 1
    (what ``seed_seq.spawn()`` hands out first; `seed_seq` itself is not advanced) the link's up
    and down draws, from child 2 the kernel's jiffy phase, and from child 3 the host's
    flight-to-flight latency variation when it varies (a fourth stream, so the link's draws are
    the same with and without it)."""
    children = _children(seed_seq, 4 if compute.varies else 3)
    host = _generator(children[3]) if compute.varies else None
    env = simpy.Environment()
    link = Link(scenario.network, _generator(children[0]), _generator(children[1]))
    misc = children[2]
    r = misc.first_double() if type(misc) is _ChildSeed else float(np.random.default_rng(misc).random())
    phase = r / scenario.tcp.hz
    conn = Connection(env, scenario, link, phase)
    flights = profile.flights
    request = scenario.workload.request_bytes + profile.record_overhead
    response = response_writes(scenario.workload.data_bytes, profile)
    times = {"ttfb": None, "ttlb": None}
    last_client_hs = max(i for i, f in enumerate(flights) if f.sender == "client" and f.phase == "handshake")
    server_total = sum(f.bytes for f in flights if f.sender == "server")
    client_total = sum(f.bytes for f in flights if f.sender == "client")

    def client_app():
        conn.client.connect(env.now)
        conn._after(conn.client)
        yield conn.client_established
        received = 0
        for i, f in enumerate(flights):
            if f.sender == "server":
                if f.phase == "handshake":
                    received += f.bytes
                    yield conn.wait_bytes("client", received)
                continue
            delay = compute.flight_time(f.ops, host)
            if delay:
                yield env.timeout(delay)
            if i == last_client_hs:
                times["ttfb"] = env.now
            for w in f.writes:
                conn.write(conn.client, w)
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
        for f in flights:
            if f.sender == "client":
                received += f.bytes
                yield conn.wait_bytes("server", received)
                continue
            delay = compute.flight_time(f.ops, host)
            if delay:
                yield env.timeout(delay)
            for w in f.writes:
                conn.write(conn.server, w)
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
    )
    conn.close()
    return record
