"""TLS 1.3 handshake sizes from genuine encodings: real key shares, X.509 chains and signatures,
encoded as TLS 1.3 messages (aioquic's encoders) and framed into records as OpenSSL does.

    >>> from ttlbsim.handshake import build_profile
    >>> p = build_profile(kex="X25519MLKEM768", sig="mldsa44")
    >>> [(f.sender, f.bytes) for f in p.flights]

`build_profile` is imported lazily: ttlbsim.scenario imports ttlbsim.handshake.names, and the
builder itself needs ttlbsim.scenario.TLSConfig.
"""

from .profile import Flight, HandshakeProfile

__all__ = ["build_profile", "generate_profile", "Flight", "HandshakeProfile"]


def __getattr__(name: str):
    if name in ("build_profile", "generate_profile"):
        from . import build
        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
