"""ttlbsim: what will post-quantum TLS cost my connections?

A discrete-event model of one TLS 1.3 connection over Linux TCP through a netem link, carrying
handshake byte counts from genuine encodings (real keys, ciphertexts, signatures, X.509 chains).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import InvalidValue, TTLBSimError
from .scenario import ComputeConfig, NetworkConfig, Scenario, TCPConfig, TLSConfig, Workload


def compiled_modules() -> tuple[str, ...]:
    """The simulator's modules that run as mypyc-compiled C extensions in this installation:
    a regular `pip install .` compiles the per-packet path (see hatch_build.py; same results,
    faster); an editable install, or one made without a C compiler, runs all of them interpreted
    (empty tuple)."""
    import sys

    from . import session  # noqa: F401  (imports the whole simulator)

    return tuple(sorted(name for name, mod in list(sys.modules.items())
                        if name.startswith("ttlbsim.") and not str(getattr(mod, "__file__", "") or ".py").endswith(".py")))


__all__ = [
    "__version__",
    "compiled_modules",
    "ComputeConfig",
    "InvalidValue",
    "NetworkConfig",
    "Scenario",
    "TCPConfig",
    "TLSConfig",
    "TTLBSimError",
    "Workload",
]
