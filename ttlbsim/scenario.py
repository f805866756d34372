"""Typed, frozen configuration: TLS choices x network x TCP settings x workload = a Scenario.

Field names carry their units (`rtt_s`, `bandwidth_bps`, `data_bytes`); values are validated when
the object is built and a bad one raises :class:`ttlbsim.errors.InvalidValue` naming the field.
`Scenario.build(...)` accepts the unit strings people type ("35ms", "1Mbit", "200KiB", "1%") and
is what the CLI and experiment files use. Make variants with :func:`dataclasses.replace` or
:meth:`Scenario.replace`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import InvalidValue
from .handshake.names import normalize_group, normalize_signature
from .tcp.congestion import CONGESTION_CONTROLS as _CONGESTION_REGISTRY
from .units import parse_duration, parse_fraction, parse_rate, parse_size

CERT_PROFILES = ("minimal", "webpki")
CLIENT_PROFILES = ("openssl", "browser")
COMPRESSIONS = ("zlib", "brotli", "zstd")
JITTER_DISTRIBUTIONS = ("uniform", "normal", "pareto", "paretonormal")
CONGESTION_CONTROLS = tuple(_CONGESTION_REGISTRY)
#: the CONFIG_HZ values Linux offers (kernel/Kconfig.hz)
K_KERNEL_HZ = (100, 250, 300, 1000)


def _choice(field_name: str, value: Any, choices: tuple[str, ...]) -> str:
    v = str(value).lower()
    if v not in choices:
        raise InvalidValue(field_name, value, "one of " + ", ".join(choices))
    return v


def _int_at_least(field_name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < low:
        raise InvalidValue(field_name, value, f"a whole number >= {low}")
    return int(value)


def _bool(field_name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(field_name, value, "true or false")
    return value


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class TLSConfig:
    """The TLS 1.3 handshake: key exchange group, certificate chain and handshake variants.

    `chain` counts the certificates the server sends (leaf + intermediates; the root is not sent,
    RFC 8446 §4.4.2). `intermediate_sig` defaults to `sig` (mixed chains allowed).
    `chain_bytes` overrides the total DER size of the sent chain for what-ifs ("16 KB chain").
    `tickets` is the number of NewSessionTicket messages the server sends after the handshake
    (OpenSSL's default is 2; the study turned them off, so ttlbsim defaults to 0).
    `key_shares` is how many key shares the client offers (None: the client profile's default).
    """

    kex: str = "X25519MLKEM768"
    sig: str = "mldsa44"
    chain: int = 2
    intermediate_sig: str | None = None
    cert_profile: str = "webpki"
    client_profile: str = "browser"
    mtls: bool = False
    hrr: bool = False
    resume: bool = False
    compress: str | None = None
    tickets: int = 0
    key_shares: int | None = None
    chain_bytes: int | None = None

    def __post_init__(self) -> None:
        _set(self, "kex", normalize_group(self.kex, "kex"))
        _set(self, "sig", normalize_signature(self.sig, "sig"))
        if self.intermediate_sig is not None:
            _set(self, "intermediate_sig", normalize_signature(self.intermediate_sig, "intermediate_sig"))
        _set(self, "chain", _int_at_least("chain", self.chain, 1))
        _set(self, "cert_profile", _choice("cert_profile", self.cert_profile, CERT_PROFILES))
        _set(self, "client_profile", _choice("client_profile", self.client_profile, CLIENT_PROFILES))
        if self.compress is not None:
            _set(self, "compress", _choice("compress", self.compress, COMPRESSIONS))
        _set(self, "tickets", _int_at_least("tickets", self.tickets, 0))
        for name in ("mtls", "hrr", "resume"):
            _bool(name, getattr(self, name))
        if self.key_shares is not None:
            _set(self, "key_shares", _int_at_least("key_shares", self.key_shares, 1))
        if self.chain_bytes is not None:
            _set(self, "chain_bytes", _int_at_least("chain_bytes", self.chain_bytes, 0))


@dataclass(frozen=True)
class NetworkConfig:
    """A netem link, the same in both directions (the study's set-up: netem on both veth ends).

    Each direction gets `delay rtt/2`, jitter `jitter/2` drawn from `jitter_dist` (netem's tables;
    "uniform" is netem's behaviour without a distribution keyword), `rate bandwidth`, `loss loss`
    and a queue of `limit` packets. `bandwidth_bps=None` means no rate limit.
    """

    rtt_s: float = 0.035
    bandwidth_bps: float | None = 1e9
    loss: float = 0.0
    jitter_s: float = 0.0
    jitter_dist: str = "uniform"
    limit: int = 1000
    mtu: int = 1500

    def __post_init__(self) -> None:
        if not (isinstance(self.rtt_s, (int, float)) and math.isfinite(self.rtt_s) and self.rtt_s > 0):
            raise InvalidValue("rtt", self.rtt_s, "a duration > 0 such as '35ms'")
        if self.bandwidth_bps is not None and not (math.isfinite(self.bandwidth_bps) and self.bandwidth_bps > 0):
            raise InvalidValue("bandwidth", self.bandwidth_bps, "a rate > 0 such as '1Mbit'")
        if not (0.0 <= self.loss < 1.0):
            raise InvalidValue("loss", self.loss, "a loss probability in [0, 100%)")
        if not (math.isfinite(self.jitter_s) and self.jitter_s >= 0):
            raise InvalidValue("jitter", self.jitter_s, "a duration >= 0 such as '8.75ms'")
        _set(self, "jitter_dist", _choice("jitter_dist", self.jitter_dist, JITTER_DISTRIBUTIONS))
        _set(self, "limit", _int_at_least("limit", self.limit, 1))
        _set(self, "mtu", _int_at_least("mtu", self.mtu, 576))
        if self.mtu > 65535:
            raise InvalidValue("mtu", self.mtu, "an MTU between 576 and 65535 bytes")


@dataclass(frozen=True)
class TCPConfig:
    """Linux TCP settings (defaults: Linux 6.1 in a fresh network namespace).

    `initcwnd` is the route's initcwnd in segments (Linux default 10, the study used 20), applied
    on both sides. `hz` is the kernel's CONFIG_HZ, which decides the granularity of TCP timers
    (linux-tcp-netem.md §0). `min_rto_s` is Linux's tcp_rto_min (200 ms; RFC 6298 says 1 s),
    `initial_rto_s` TCP_TIMEOUT_INIT (1 s). `nodelay`: TCP_NODELAY on both endpoints (as in the
    study's OpenSSL endpoints). `gso`: Linux TCP builds GSO skbs of about 1 ms of its pacing
    rate (at least 2 segments) even when the device cannot offload (segmentation then happens
    after the qdisc), so a netem on the host delays and drops them whole — as in the study's and
    ttlbsim's emulated testbeds. `gso=False` sends one segment per packet, as loss on a real path
    (a router dropping single frames) behaves. `rcv_autotune`: receive-buffer autotuning (`tcp_rcv_space_adjust`)
    may open the client's window past its initial ~64 KB during the connection (on, as in Linux).
    """

    initcwnd: int = 10
    cc: str = "cubic"
    hystart: bool = True
    nodelay: bool = True
    gso: bool = True
    rcv_autotune: bool = True
    hz: int = 250
    min_rto_s: float = 0.2
    initial_rto_s: float = 1.0

    def __post_init__(self) -> None:
        _set(self, "initcwnd", _int_at_least("initcwnd", self.initcwnd, 1))
        _set(self, "cc", _choice("cc", self.cc, CONGESTION_CONTROLS))
        if self.hz not in K_KERNEL_HZ:
            raise InvalidValue("hz", self.hz, "a kernel CONFIG_HZ: " + ", ".join(map(str, K_KERNEL_HZ)))
        for name in ("hystart", "nodelay", "gso", "rcv_autotune"):
            _bool(name, getattr(self, name))
        for name in ("min_rto_s", "initial_rto_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise InvalidValue(name, v, "a duration > 0")


@dataclass(frozen=True)
class Workload:
    """What the application does after the handshake: the client writes a `request_bytes`
    request, the server answers with `data_bytes` of application data (in 16 KiB records)."""

    data_bytes: int = 0
    request_bytes: int = 100

    def __post_init__(self) -> None:
        _set(self, "data_bytes", _int_at_least("data", self.data_bytes, 0))
        _set(self, "request_bytes", _int_at_least("request", self.request_bytes, 1))


#: ComputeConfig's host durations (field = name + "_s", the Scenario.build option = name): the
#: largest value accepted (s) and how the error says it
_HOST_DURATIONS = {
    "read_delay": (1.0, "a duration from 0 to 1s"),
    "recv_cost": (1.0, "a duration from 0 to 1s"),
    "packet_delay": (0.1, "a duration from 0 to 100ms"),
    "packet_jitter": (0.1, "a duration from 0 to 100ms"),
}


@dataclass(frozen=True)
class ComputeConfig:
    """CPU time of the handshake's cryptographic operations, and the host's per-flight latency.

    mode "calibrated" (the default): a calibrated host profile (`profile`, default
    :data:`ttlbsim.calibration.DEFAULT_PROFILE`, the Linux 6.1 guest `ttlbsim emulate` runs in)
    gives the per-operation crypto times, a scale for them and the per-flight overhead, all fitted
    or measured against real emulation runs (models/calibration/); results do not depend on the
    machine that simulates. "measured": per-operation times measured once on this machine from the
    genuine primitives (cached), no overhead unless given; "zero": no compute time; "explicit":
    `times_s` gives seconds per operation kind ("sign:mldsa44" or "sign" for every algorithm);
    unlisted operations cost 0.
    `scale` multiplies every time (to model a slower or faster host; on top of the profile's).
    `flight_overhead_s` is added before every flight a side writes (handshake flights, the
    request and the response): the application and system-call latency between a flight's last
    byte arriving and the next write, beyond the cryptography. None: the profile's value in
    "calibrated" mode, 0 otherwise. `overhead_sigma` (dimensionless, >= 0) makes that latency
    vary from flight to flight as a host's scheduling does: each flight's overhead is
    `flight_overhead_s` × a lognormal factor of mean 1 and shape `overhead_sigma` (0: the same every
    time). None: the profile's value in "calibrated" mode, 0 otherwise.
    `read_delay_s`: how long after data stops arriving the receiving application reads it (both
    sides). 0: at once, so the receiver acknowledges every second segment with a full window; > 0:
    a host whose packet processing keeps the reader off the CPU while a burst arrives, so the
    data waits unread, the window shrinks and the read sends a stretch ACK (`tcp_cleanup_rbuf`).
    None: the profile's value in "calibrated" mode, 0 otherwise.
    `recv_cost_s`: seconds one recv() call takes in the receiving application (both sides): the
    reader takes what has arrived one recv() at a time, as OpenSSL's SSL_read without read-ahead
    does (recv(5) for a record's header, then recv() of the rest of the record; each a
    `tcp_recvmsg_locked`, ending with autotuning and `tcp_cleanup_rbuf`), and its next recv()
    comes `recv_cost_s` after the previous one (the system call, the copy and the record's
    decryption in a slow guest), so the reads of a burst are spread in time. 0: every recv() of a
    burst at the same instant. None: the profile's value in "calibrated" mode (0 if it has none),
    0 otherwise.
    `packet_delay_s` and `packet_jitter_s`: the hosts' own per-packet latency, beyond netem's
    delay — the time from netem releasing a packet to the receiving stack acting on it (the
    qdisc watchdog's hrtimer firing late, softirq and veth processing), which the kernel's RTT
    samples include (`tcpi_min_rtt` exceeds netem's delay by ~0.2 ms in the UML guest). Each
    packet that crosses the link is delayed by `packet_delay_s`, plus, if it finds the host idle
    (`ttlbsim.host.IDLE_AFTER_S`), a wake-up latency drawn from an exponential of mean
    `packet_jitter_s`; packets keep their order in each direction (a packet is never handed over
    before the one ahead of it). The jitter matters where two RTTs
    of the same nominal length are compared: RACK ignores a SACK of a retransmission whose RTT is
    below min_rtt (`tcp_rack_advance`), so whether a lost ClientHello is re-sent after the loss
    probe or only at the RTO is decided by microseconds. None: the profile's value in
    "calibrated" mode (0 if it has none), 0 otherwise.
    """

    mode: str = "calibrated"
    times_s: tuple[tuple[str, float], ...] = ()
    scale: float = 1.0
    flight_overhead_s: float | None = None
    profile: str | None = None
    overhead_sigma: float | None = None
    read_delay_s: float | None = None
    recv_cost_s: float | None = None
    packet_delay_s: float | None = None
    packet_jitter_s: float | None = None

    def __post_init__(self) -> None:
        _set(self, "mode", _choice("compute", self.mode, ("calibrated", "measured", "zero", "explicit")))
        if isinstance(self.times_s, Mapping):
            _set(self, "times_s", tuple(sorted((str(k), float(v)) for k, v in self.times_s.items())))
        for k, v in self.times_s:
            if not (v >= 0 and math.isfinite(v)):
                raise InvalidValue(f"compute time of {k}", v, "a duration >= 0")
        if not (self.scale >= 0 and math.isfinite(self.scale)):
            raise InvalidValue("compute_scale", self.scale, "a number >= 0")
        if self.flight_overhead_s is not None and not (
                isinstance(self.flight_overhead_s, (int, float)) and math.isfinite(self.flight_overhead_s)
                and self.flight_overhead_s >= 0):
            raise InvalidValue("flight_overhead", self.flight_overhead_s, "a duration >= 0")
        if self.overhead_sigma is not None and not (
                isinstance(self.overhead_sigma, (int, float)) and not isinstance(self.overhead_sigma, bool)
                and math.isfinite(self.overhead_sigma) and 0 <= self.overhead_sigma <= 5):
            raise InvalidValue("overhead_sigma", self.overhead_sigma, "a number from 0 to 5")
        for name, (upper, accepted) in _HOST_DURATIONS.items():
            v = getattr(self, name + "_s")
            if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool)
                                      and math.isfinite(v) and 0 <= v <= upper):
                raise InvalidValue(name, v, accepted)
        if self.mode == "calibrated":
            from .calibration import DEFAULT_PROFILE, load

            if self.profile is None:
                _set(self, "profile", DEFAULT_PROFILE)
            load(self.profile)  # a missing or malformed profile fails here, naming it

    @property
    def overhead_s(self) -> float:
        """The mean per-flight overhead in seconds (0 when unset outside "calibrated" mode)."""
        return self.flight_overhead_s or 0.0

    @property
    def sigma(self) -> float:
        """The lognormal shape of the per-flight overhead (0 when unset outside "calibrated")."""
        return self.overhead_sigma or 0.0

    @property
    def read_delay(self) -> float:
        """The application's read delay in seconds (0 when unset outside "calibrated" mode)."""
        return self.read_delay_s or 0.0

    @property
    def recv_cost(self) -> float:
        """Seconds one recv() call takes in the application (0 when unset outside "calibrated")."""
        return self.recv_cost_s or 0.0

    @property
    def packet_delay(self) -> float:
        """The hosts' fixed per-packet latency in seconds (0 when unset outside "calibrated")."""
        return self.packet_delay_s or 0.0

    @property
    def packet_jitter(self) -> float:
        """Mean of the hosts' exponential per-packet latency in seconds (0 when unset outside
        "calibrated")."""
        return self.packet_jitter_s or 0.0


@dataclass(frozen=True)
class Scenario:
    """One connection set-up to simulate (or emulate) many times."""

    tls: TLSConfig = field(default_factory=TLSConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    tcp: TCPConfig = field(default_factory=TCPConfig)
    workload: Workload = field(default_factory=Workload)
    compute: ComputeConfig = field(default_factory=ComputeConfig)

    _TLS = {f.name for f in dataclasses.fields(TLSConfig)}
    _TCP = {f.name for f in dataclasses.fields(TCPConfig)}

    @classmethod
    def build(cls, **options: Any) -> "Scenario":
        """Build a scenario from flat options with unit strings.

        Network: rtt="35ms", bandwidth="1Gbit" (or None), loss="1%", jitter="8.75ms",
        jitter_dist="paretonormal", limit=1000, mtu=1500. TCP: initcwnd, cc, hystart, nodelay,
        hz, min_rto, initial_rto. Workload: data="200KiB", request="100". TLS: every TLSConfig
        field (kex, sig, chain, cert_profile, client_profile, mtls, hrr, resume, compress,
        tickets, key_shares, chain_bytes="16KB"). Compute: compute="calibrated" (default) |
        "measured" | "zero", calibration="uml-6.1" | PATH | "none" (= compute "measured"),
        compute_scale, flight_overhead="1ms", overhead_sigma=0.8, read_delay="30us",
        recv_cost="50us" (seconds per recv() call), packet_delay="150us", packet_jitter="50us".
        """
        tls: dict[str, Any] = {}
        tcp: dict[str, Any] = {}
        net: dict[str, Any] = {}
        work: dict[str, Any] = {}
        comp: dict[str, Any] = {}
        for key, value in options.items():
            if value is None and key not in ("bandwidth", "intermediate_sig", "compress", "key_shares", "chain_bytes"):
                continue
            if key == "rtt":
                net["rtt_s"] = parse_duration(value, "rtt")
            elif key == "bandwidth":
                unlimited = value is None or (isinstance(value, str) and value.lower() in ("none", "unlimited"))
                net["bandwidth_bps"] = None if unlimited else parse_rate(value, "bandwidth")
            elif key == "loss":
                net["loss"] = parse_fraction(value, "loss")
            elif key == "jitter":
                net["jitter_s"] = parse_duration(value, "jitter")
            elif key in ("jitter_dist", "limit", "mtu"):
                net[key] = value
            elif key == "data":
                work["data_bytes"] = parse_size(value, "data")
            elif key == "request":
                work["request_bytes"] = parse_size(value, "request")
            elif key == "chain_bytes":
                tls[key] = None if value is None else parse_size(value, "chain_bytes")
            elif key in ("min_rto", "initial_rto"):
                tcp[key + "_s"] = parse_duration(value, key)
            elif key == "compute":
                comp["mode"] = value
            elif key == "calibration":
                comp["profile"] = str(value)
            elif key == "compute_scale":
                try:
                    comp["scale"] = float(value)
                except (TypeError, ValueError):
                    raise InvalidValue("compute_scale", value, "a number >= 0") from None
            elif key == "flight_overhead":
                comp["flight_overhead_s"] = parse_duration(value, "flight_overhead")
            elif key in _HOST_DURATIONS:
                comp[key + "_s"] = parse_duration(value, key)
            elif key == "overhead_sigma":
                try:
                    comp["overhead_sigma"] = float(value)
                except (TypeError, ValueError):
                    raise InvalidValue("overhead_sigma", value, "a number from 0 to 5") from None
            elif key in cls._TLS:
                tls[key] = value
            elif key in cls._TCP:
                tcp[key] = value
            else:
                raise InvalidValue("option", key, "a scenario option (kex, sig, chain, rtt, bandwidth, loss, jitter, "
                                   "jitter_dist, initcwnd, cc, mtu, limit, data, request, ...)")
        if str(comp.get("profile", "")).lower() == "none":
            # no calibrated host: the crypto measured on this machine, no host latency
            del comp["profile"]
            if comp.get("mode", "calibrated") == "calibrated":
                comp["mode"] = "measured"
        try:
            return cls(tls=TLSConfig(**tls), network=NetworkConfig(**net), tcp=TCPConfig(**tcp),
                       workload=Workload(**work), compute=ComputeConfig(**comp))
        except InvalidValue as exc:
            # name the value as the user typed it ("120%", not 1.2)
            if exc.field in options and isinstance(options[exc.field], str):
                raise InvalidValue(exc.field, options[exc.field], exc.accepted) from None
            raise

    def replace(self, **options: Any) -> "Scenario":
        """A copy with flat options (as in :meth:`build`) changed."""
        return Scenario.build(**{**self.to_options(), **options})

    def to_options(self) -> dict[str, Any]:
        """Flat options that :meth:`build` turns back into this scenario (canonical units)."""
        opts: dict[str, Any] = dataclasses.asdict(self.tls)
        opts.update(dataclasses.asdict(self.tcp))
        # exact values (repr round-trips a float), so build(**to_options()) == self
        for k in ("min_rto_s", "initial_rto_s"):
            opts[k[:-2]] = f"{opts.pop(k)!r}s"
        n = self.network
        opts.update(rtt=f"{n.rtt_s!r}s", bandwidth=None if n.bandwidth_bps is None else f"{n.bandwidth_bps!r}bit",
                    loss=repr(n.loss), jitter=f"{n.jitter_s!r}s", jitter_dist=n.jitter_dist,
                    limit=n.limit, mtu=n.mtu, data=str(self.workload.data_bytes),
                    request=str(self.workload.request_bytes), compute=self.compute.mode,
                    compute_scale=self.compute.scale,
                    flight_overhead=None if self.compute.flight_overhead_s is None
                    else f"{self.compute.flight_overhead_s!r}s",
                    overhead_sigma=self.compute.overhead_sigma, calibration=self.compute.profile,
                    **{name: None if getattr(self.compute, name + "_s") is None
                       else f"{getattr(self.compute, name + '_s')!r}s" for name in _HOST_DURATIONS})
        return opts

    def to_dict(self) -> dict[str, Any]:
        """Nested, JSON-ready description with units in the keys."""
        return dataclasses.asdict(self)
