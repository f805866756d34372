"""ttlbsim: what will post-quantum TLS cost my connections?

A discrete-event model of one TLS 1.3 connection over Linux TCP through a netem link, carrying
handshake byte counts from genuine encodings (real keys, ciphertexts, signatures, X.509 chains).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import InvalidValue, TTLBSimError
from .scenario import ComputeConfig, NetworkConfig, Scenario, TCPConfig, TLSConfig, Workload

__all__ = [
    "__version__",
    "ComputeConfig",
    "InvalidValue",
    "NetworkConfig",
    "Scenario",
    "TCPConfig",
    "TLSConfig",
    "TTLBSimError",
    "Workload",
]
