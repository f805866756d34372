"""`ttlbsim` command line: thin `run(args)` functions per sub-command in `ttlbsim.commands`.

Every user error (a `TTLBSimError` or a bad flag) becomes one line on stderr and exit status 2,
without a traceback."""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import TTLBSimError

#: sub-command name -> module under ttlbsim.commands (each has `add_parser(sub)` and `run(args)`)
COMMANDS = ("handshake", "simulate", "compare", "emulate", "sweep", "reproduce", "calibrate")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def add_handshake_flags(p: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """The TLS flags shared by handshake, simulate, compare and emulate."""
    g = p.add_argument_group("TLS handshake")
    g.add_argument("--kex", default="X25519MLKEM768" if defaults else None,
                   help="key exchange group (x25519, X25519MLKEM768, MLKEM1024, ...; see --list)")
    g.add_argument("--sig", default="mldsa44" if defaults else None,
                   help="certificate/signature algorithm (rsa2048, ecdsa-p256, ed25519, mldsa44, ...)")
    g.add_argument("--intermediate-sig", default=None, help="signature algorithm of the intermediates (default: --sig)")
    g.add_argument("--chain", type=_int_arg("--chain"), default=2 if defaults else None,
                   help="certificates the server sends: leaf + intermediates, root not sent (default 2)")
    g.add_argument("--chain-bytes", default=None,
                   help="override the sent chain's total DER size, e.g. 16KB (what-if)")
    g.add_argument("--cert-profile", default="webpki" if defaults else None, help="minimal | webpki (default)")
    g.add_argument("--client-profile", default="browser" if defaults else None, help="openssl | browser (default)")
    g.add_argument("--key-shares", type=_int_arg("--key-shares"), default=None,
                   help="key shares the client offers (default: the client profile's)")
    g.add_argument("--mtls", action="store_true", default=None, help="mutual TLS: the client sends a chain too")
    g.add_argument("--hrr", action="store_true", default=None, help="HelloRetryRequest: the client guessed another group first")
    g.add_argument("--resume", action="store_true", default=None, help="PSK resumption: no certificates")
    g.add_argument("--compress", default=None, help="certificate compression (RFC 8879): zlib | brotli | zstd")
    g.add_argument("--tickets", type=_int_arg("--tickets"), default=None,
                   help="NewSessionTicket messages after the handshake (default 0, as in the study)")


def handshake_options(args: argparse.Namespace) -> dict:
    """The TLSConfig fields set on the command line (None = not given)."""
    keys = ("kex", "sig", "intermediate_sig", "chain", "chain_bytes", "cert_profile", "client_profile",
            "key_shares", "mtls", "hrr", "resume", "compress", "tickets")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _int_arg(flag: str):
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {flag} {text!r}: expected a whole number") from None
    return parse


class _Version(argparse.Action):
    """`--version`: the version and whether the per-packet modules run compiled (a regular install
    compiles them with mypyc; an editable one does not), worked out only when asked."""

    def __call__(self, parser, namespace, values, option_string=None):
        from . import __version__, compiled_modules
        n = len(compiled_modules())
        build = f"{n} modules compiled with mypyc" if n else "interpreted: no compiled modules"
        sys.stdout.write(f"ttlbsim {__version__} ({build})\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ttlbsim", description="TLS 1.3 time to last byte, classical vs post-quantum, "
                     "over Linux TCP and a netem link: simulated in milliseconds, or emulated for real.")
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and build, and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except TTLBSimError as exc:
        sys.stderr.write(f"ttlbsim {args.command}: error: {exc}\n")
        return 2
    except OSError as exc:  # an output path that cannot be written, a missing input file, ...
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        sys.stderr.write(f"ttlbsim {args.command}: error: cannot use{where}: {exc.strerror or exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("ttlbsim: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
