"""Where the harness runs: on the host (`native`) or inside a User-Mode Linux guest (`uml`).

- ``native``: root, `ip`/`tc`/`ethtool`, and a kernel whose netem works (checked by creating a
  netem qdisc in a scratch namespace). The harness runs as a child process.
- ``uml``: Debian's ``user-mode-linux`` package — a Linux 6.1 kernel as an ordinary process
  (CONFIG_HZ=100), root file system = the host's via hostfs, ``veth.ko`` and ``sch_netem.ko``
  loaded from ``/usr/lib/uml/modules/<version>/``. The guest runs the same harness and powers
  off; it has no network to the outside (only its own namespaces). Boot ≈ 2 s.
- ``auto``: native if it works, else uml; says which on stderr.

Environment overrides (used by the tests): ``TTLBSIM_UML`` (path of the UML kernel binary; an
empty or missing path makes the backend unavailable), ``TTLBSIM_UML_MODULES`` (module tree),
``TTLBSIM_UML_MEM`` (guest memory, default 768M), ``TTLBSIM_NATIVE=0`` (never use native).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Callable

from ..errors import BackendUnavailable

INSTALL_HINT = ("install Debian's user-mode-linux (no root needed to run it): "
                "apt-get install user-mode-linux kmod iproute2 ethtool; or run as root on a kernel with sch_netem")
PROGRESS = "@@ttlbsim "
EXIT = "@@ttlbsim-exit "


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


# --------------------------------------------------------------------------- native

def native_problem() -> str | None:
    """Why the native backend cannot run here (None: it can)."""
    if os.environ.get("TTLBSIM_NATIVE", "1") == "0":
        return "native disabled (TTLBSIM_NATIVE=0)"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "native needs root"
    for tool in ("ip", "tc", "ethtool"):
        if not _which(tool):
            return f"native needs {tool}"
    ns = f"ttlb-probe-{uuid.uuid4().hex[:8]}"
    try:
        if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
            return "native: cannot create a network namespace"
        p = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                            "delay", "1ms"], capture_output=True, text=True)
        if p.returncode != 0:
            return "native: the host kernel has no netem (" + (p.stderr.strip().splitlines() or ["?"])[-1] + ")"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    return None


def run_native(spec_path: Path, rows_path: Path, on_progress: Callable[[str], None], timeout_s: float) -> int:
    cmd = [sys.executable, "-m", "ttlbsim.emulate.harness", str(spec_path), str(rows_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())
    tail: deque[str] = deque(maxlen=20)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip("\n")
            if line.startswith(PROGRESS):
                on_progress(line[len(PROGRESS):])
            else:
                tail.append(line)
        return proc.wait(timeout=timeout_s)
    finally:
        if proc.poll() is None:  # Ctrl-C or timeout: let the harness clean up, then make sure
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --------------------------------------------------------------------------- uml

def uml_binary() -> str | None:
    configured = os.environ.get("TTLBSIM_UML")
    if configured is not None:
        return configured if configured and os.path.isfile(configured) and os.access(configured, os.X_OK) else None
    return _which("linux.uml")


def uml_version(binary: str) -> str | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.split()[-1] if out else None


def uml_modules(version: str) -> Path:
    return Path(os.environ.get("TTLBSIM_UML_MODULES") or f"/usr/lib/uml/modules/{version}")


MODULES = ("kernel/drivers/net/veth.ko", "kernel/net/sched/sch_netem.ko")


def uml_problem() -> str | None:
    binary = uml_binary()
    if not binary:
        return "uml needs the linux.uml kernel (package user-mode-linux)"
    version = uml_version(binary)
    if not version:
        return f"uml: {binary} --version failed"
    missing = [m for m in MODULES if not (uml_modules(version) / m).exists()]
    if missing:
        return f"uml: modules missing under {uml_modules(version)}: {', '.join(missing)}"
    return None


def _env() -> dict:
    env = dict(os.environ)
    pkg_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = pkg_parent + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _init_script(work: Path, spec_path: Path, rows_path: Path, modules: Path) -> str:
    env = _env()
    keep = {k: env[k] for k in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "TTLBSIM_EMULATE_FAULT") if k in env}
    exports = "\n".join(f"export {k}='{v}'" for k, v in keep.items())
    inserts = "\n".join(f"insmod {modules / m} || echo '{PROGRESS}error: insmod {m} failed'" for m in MODULES)
    return f"""#!/bin/sh
# ttlbsim UML guest init: mount what the harness needs, load veth + netem, run it, power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
{exports}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /run
{inserts}
cd {work}
{sys.executable} -m ttlbsim.emulate.harness {spec_path} {rows_path} 2>&1
status=$?
sync
echo "{EXIT}$status"
poweroff -f
"""


def run_uml(spec_path: Path, rows_path: Path, on_progress: Callable[[str], None], timeout_s: float) -> int:
    binary = uml_binary()
    version = uml_version(binary) if binary else None
    if not binary or not version:
        raise BackendUnavailable(f"no UML kernel: {INSTALL_HINT}")
    work = spec_path.parent
    init = work / "init.sh"
    init.write_text(_init_script(work, spec_path, rows_path, uml_modules(version)))
    init.chmod(0o755)
    umid = f"ttlbsim-{uuid.uuid4().hex[:10]}"
    mem = os.environ.get("TTLBSIM_UML_MEM", "768M")
    cmd = [binary, f"mem={mem}", "rootfstype=hostfs", "rw", f"init={init}", "con=null", "con0=null,fd:1",
           f"umid={umid}", f"uml_dir={work}", "quiet"]
    env = dict(os.environ, TMPDIR=str(work))
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", start_new_session=True, cwd=str(work), env=env)
    tail: deque[str] = deque(maxlen=30)
    status = None
    booted = False
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\r\n")
            if line.startswith(EXIT):
                status = int(line[len(EXIT):].strip() or 1)
            elif line.startswith(PROGRESS):
                if not booted:
                    booted = True
                    on_progress(f"UML guest {version} booted in {time.monotonic() - t0:.1f} s")
                on_progress(line[len(PROGRESS):])
            elif line:
                tail.append(line)
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"UML guest still running after {timeout_s:.0f} s")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        else:  # the guest's helper processes share the session: make sure none is left
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if status is None:
        (work / "guest.log").write_text("\n".join(tail))
        last = next((t for t in reversed(tail) if t.strip()), "no output")
        raise RuntimeError(f"UML guest ended without running the harness (last console line: {last!r})")
    return status


# --------------------------------------------------------------------------- choice

def choose(name: str) -> str:
    """The backend to use for `name` (auto | native | uml); BackendUnavailable if none works."""
    if name not in ("auto", "native", "uml"):
        from ..errors import InvalidValue
        raise InvalidValue("backend", name, "auto, native or uml")
    if name == "native":
        problem = native_problem()
        if problem:
            raise BackendUnavailable(f"{problem}; try --backend uml ({INSTALL_HINT})")
        return "native"
    if name == "uml":
        problem = uml_problem()
        if problem:
            raise BackendUnavailable(f"{problem}: {INSTALL_HINT}")
        return "uml"
    native, uml = native_problem(), uml_problem()
    if native is None:
        return "native"
    if uml is None:
        return "uml"
    raise BackendUnavailable(f"no emulation backend ({native}; {uml}): {INSTALL_HINT}")


def runner(name: str) -> Callable[[Path, Path, Callable[[str], None], float], int]:
    return run_native if name == "native" else run_uml


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="ttlbsim-emu-"))
