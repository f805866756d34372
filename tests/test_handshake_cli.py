"""`ttlbsim handshake` as a user runs it: `python -m ttlbsim handshake ...` in a subprocess."""

import json
import subprocess
import sys

import pytest


def _run(*args):
    return subprocess.run([sys.executable, "-m", "ttlbsim", "handshake", *args], capture_output=True, text=True,
                          timeout=120)


def test_table():
    r = _run("--kex", "X25519MLKEM768", "--sig", "mldsa44", "--chain", "2", "--cert-profile", "minimal")
    assert r.returncode == 0 and r.stderr == ""
    for word in ("ClientHello", "ServerHello", "Certificate", "CertificateVerify", "Finished", "client", "server"):
        assert word in r.stdout


def test_json():
    r = _run("--kex", "x25519", "--sig", "rsa2048", "--tickets", "2", "--json")
    assert r.returncode == 0 and r.stderr == ""
    d = json.loads(r.stdout)
    assert [f["sender"] for f in d["flights"]] == ["client", "server", "client", "server"]
    for f in d["flights"]:
        assert f["bytes"] == sum(f["messages"].values())
    assert d["params"]["kex"] == "x25519"


def test_list():
    r = _run("--list")
    assert r.returncode == 0 and r.stderr == ""
    for name, size in (("MLKEM512", "768"), ("X25519MLKEM768", "1216"), ("mldsa65", "3309"),
                       ("slhdsa-sha2-128s", "7856"), ("rsa4096", "512")):
        line = next(line for line in r.stdout.splitlines() if line.split() and line.split()[0] == name)
        assert size in line.split()


@pytest.mark.parametrize("args,bad", [
    (["--kex", "X25519Kyber9000"], "X25519Kyber9000"),
    (["--sig", "rsa1024"], "rsa1024"),
    (["--chain", "0"], "0"),
    (["--chain-bytes=-100"], "-100"),
    (["--cert-profile", "fancy"], "fancy"),
    (["--client-profile", "curl"], "curl"),
    (["--compress", "lz4"], "lz4"),
    (["--chain", "two"], "two"),
])
def test_bad_input_is_one_line_exit_2(args, bad):
    r = _run(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert bad in lines[0] and "Traceback" not in r.stderr
    assert r.stdout == ""
