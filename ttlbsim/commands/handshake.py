"""`ttlbsim handshake` (being written)."""


def add_parser(sub):
    p = sub.add_parser("handshake", help="TLS 1.3 handshake flights and sizes from genuine encodings")
    p.set_defaults(run=None)
