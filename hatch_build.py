"""Wheel build hook: compile the per-packet modules with mypyc.

A simulated connection spends nearly all its time in the TCP model's per-packet path (sender,
receiver, endpoint, congestion control, RTT estimator, segments, timers, host latency). Those
modules are plain, type-annotated Python; mypyc (the compiler mypy and black ship with) turns
them into C extensions of the same modules, with the same behaviour: results are bit-identical
to the interpreted modules (tests/test_compiled.py checks it) and 2.2-2.6x faster
(benchmarks/bench_simulate.py says which build it ran).

- `pip install .` (a regular wheel) compiles them; the `.py` sources ship beside the extensions.
- An editable install (`pip install -e .`) does not: a developer's edits take effect at once.
- `TTLBSIM_PURE_PYTHON=1` skips the compilation; if it fails (no C compiler or Python headers),
  the wheel is built pure-Python with a warning, unless `TTLBSIM_COMPILE=1` asks for an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # imported by tests/test_compiled.py for compile_modules() alone
    BuildHookInterface = object  # type: ignore[assignment,misc]

# the modules compiled, relative to the project root: the per-packet path (the simpy driver in
# session.py and the netem link stay interpreted: they call into simpy's Python internals)
COMPILED = (
    "ttlbsim/tcp/segment.py",
    "ttlbsim/tcp/rtt.py",
    "ttlbsim/tcp/congestion.py",
    "ttlbsim/tcp/receiver.py",
    "ttlbsim/tcp/sender.py",
    "ttlbsim/tcp/endpoint.py",
    "ttlbsim/timers.py",
    "ttlbsim/host.py",
)


def compile_modules(root: Path, work: Path) -> list[Path]:
    """Copy the package from `root` into `work` and compile COMPILED there with mypyc, in place.
    Returns the extension files built (under `work`): one per module plus the group's shared
    library (`ttlbsim__mypyc`, a top-level module). Raises CalledProcessError (with mypyc's and
    the compiler's output) if the build fails."""
    shutil.copytree(root / "ttlbsim", work / "ttlbsim",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.c"))
    setup = work / "_mypyc_setup.py"
    # mypy options: the build environment has neither numpy nor simpy (their values are Any to
    # the compiler), and only the compiled modules' own errors count
    args = ["--ignore-missing-imports", "--follow-imports=silent", *COMPILED]
    setup.write_text(
        "from setuptools import setup\n"
        "from mypyc.build import mypycify\n"
        f"setup(name='ttlbsim-compiled', ext_modules=mypycify({args!r}, opt_level='3', group_name='ttlbsim'))\n")
    env = dict(os.environ)
    # mypyc builds with -Werror; gcc 12 flags a NaN test (x != x) in its generated code
    env["CFLAGS"] = (env.get("CFLAGS", "") + " -Wno-error=tautological-compare").strip()
    proc = subprocess.run([sys.executable, str(setup), "build_ext", "--inplace"], cwd=work, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, output=proc.stdout)
    suffixes = (".so", ".pyd")
    built = sorted(p for p in work.rglob("*") if p.suffix in suffixes and "build" not in p.relative_to(work).parts)
    if len(built) < len(COMPILED):
        raise RuntimeError(f"mypyc built {len(built)} extensions for {len(COMPILED)} modules")
    return built


class MypycBuildHook(BuildHookInterface):
    """Adds the compiled extensions to a regular wheel (see the module docstring)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        self._work = None
        if self.target_name != "wheel" or version == "editable":
            return
        if os.environ.get("TTLBSIM_PURE_PYTHON") == "1":
            self.app.display_info("ttlbsim: TTLBSIM_PURE_PYTHON=1, not compiling")
            return
        work = Path(tempfile.mkdtemp(prefix="ttlbsim-mypyc-"))
        self._work = work
        try:
            built = compile_modules(Path(self.root), work)
        except Exception as exc:  # no compiler, no headers, a mypy error
            detail = getattr(exc, "output", "") or ""
            if os.environ.get("TTLBSIM_COMPILE") == "1":
                raise RuntimeError(f"ttlbsim: mypyc compilation failed: {exc}\n{detail}") from exc
            self.app.display_warning(f"ttlbsim: mypyc compilation failed ({exc}); building pure-Python "
                                     f"modules (slower, same results)\n{detail[-2000:]}")
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        for path in built:
            build_data["force_include"][str(path)] = path.relative_to(work).as_posix()

    def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
        if getattr(self, "_work", None) is not None:
            shutil.rmtree(self._work, ignore_errors=True)
