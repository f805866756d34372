"""`ttlbsim compare` (filled in by the simulator work)."""


def add_parser(sub):
    p = sub.add_parser("compare", help="compare one scenario many times")
    p.set_defaults(run=None)
