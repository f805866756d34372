"""`ttlbsim simulate` (filled in by the simulator work)."""


def add_parser(sub):
    p = sub.add_parser("simulate", help="simulate one scenario many times")
    p.set_defaults(run=None)
