"""One module per `ttlbsim` sub-command: `add_parser(subparsers)` and `run(args) -> int`."""
