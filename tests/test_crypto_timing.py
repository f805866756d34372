"""When each side's crypto happens within a flight (Flight.read_ops / write_ops).

OpenSSL's server signs CertificateVerify after its Certificate record is produced, and what its
4096-byte write buffer could not hold has gone to the socket by then; its client processes each
handshake message when the record completes (decapsulation at ServerHello, the chain at
Certificate, the signature at CertificateVerify). On a slow link that work is hidden behind the
transfer of the rest of the flight; on a fast one it is not.
"""

from __future__ import annotations

import dataclasses

import pytest

from ttlbsim import Scenario
from ttlbsim.handshake.build import generate_profile
from ttlbsim.handshake.records import socket_writes, writes_issued
from ttlbsim.scenario import ComputeConfig, TLSConfig
from ttlbsim.simulate import simulate


def test_buffered_writes_before_the_signature():
    # 1249 B buffered, then a 9100 B record: the buffer is filled and written, the rest (6253 B)
    # written directly; the later records stay in the buffer until the final flush
    assert socket_writes([1215, 6, 28, 9100, 2450, 74]) == (4096, 6253, 2524)
    assert writes_issued([1215, 6, 28, 9100]) == 2
    assert writes_issued([127, 6, 28, 2700]) == 0  # a classical flight fits in the buffer


def test_profile_places_sign_and_verifies():
    p = generate_profile(TLSConfig(kex="X25519MLKEM768", sig="mldsa44", client_profile="openssl", key_shares=1))
    server, client = p.flights[1], p.flights[2]
    assert server.write_ops == ((2, ("sign:mldsa44",)),)
    assert server.final_ops == ("kem.encaps:X25519MLKEM768",)
    ends, end = {}, 0
    for name, n in server.messages:
        end += n
        ends[name] = end
    assert client.read_ops == ((ends["ServerHello"], ("kem.decaps:X25519MLKEM768",)),
                               (ends["Certificate"], ("verify:mldsa44", "verify:mldsa44")),
                               (ends["CertificateVerify"], ("verify:mldsa44",)))
    assert client.final_ops == ()
    assert sorted(client.ops) == sorted(op for _, ops in client.read_ops for op in ops)
    # the classical flight is one write: the signature holds all of it up
    c = generate_profile(TLSConfig(kex="x25519", sig="rsa2048", client_profile="openssl", key_shares=1))
    assert c.flights[1].write_ops == () and c.flights[1].final_ops == ("kem.encaps:x25519", "sign:rsa2048")


def test_profile_round_trips_through_json():
    from ttlbsim.handshake.profile import HandshakeProfile

    p = generate_profile(TLSConfig(kex="X25519MLKEM768", sig="mldsa65", mtls=True))
    q = HandshakeProfile.from_dict(p.to_dict())
    assert [(f.read_ops, f.write_ops) for f in q.flights] == [(f.read_ops, f.write_ops) for f in p.flights]
    assert any(f.write_ops and f.sender == "client" for f in p.flights)  # the client signs under mTLS too


def _ttfb(bandwidth: str, times: dict[str, float]) -> float:
    s = Scenario.build(kex="X25519MLKEM768", sig="mldsa44", rtt="40ms", bandwidth=bandwidth, data=0, initcwnd=20,
                       client_profile="openssl", key_shares=1)
    s = dataclasses.replace(s, compute=ComputeConfig(mode="explicit", times_s=tuple(times.items()),
                                                     flight_overhead_s=0.0))
    return float(simulate(s, runs=1, seed=0).ttfb_ms[0])


@pytest.mark.parametrize("op", ["sign", "kem.decaps"])
def test_crypto_hidden_behind_a_slow_transfer_not_a_fast_one(op):
    """5 ms of signing (server, between its writes) or of decapsulation (client, at the end of
    ServerHello) costs nothing at 1 Mbit/s, where the rest of the server's flight takes longer
    than that to arrive, and the whole 5 ms at 1 Gbit/s (less the ~0.1 ms the flight's own bytes
    take to serialise, which the baseline spends at the end)."""
    assert _ttfb("1Mbit", {op: 0.005}) == pytest.approx(_ttfb("1Mbit", {}), abs=1e-9)
    assert _ttfb("1Gbit", {op: 0.005}) - _ttfb("1Gbit", {}) == pytest.approx(5.0, abs=0.15)


def test_chain_verified_while_certificate_verify_arrives():
    """Three 5 ms verifications (two for the chain at the end of Certificate, one for
    CertificateVerify at its end): at 1 Gbit/s all 15 ms follow the flight; at 1 Mbit/s the
    chain's 10 ms pass while the 2.4 KB CertificateVerify record is still arriving (~20 ms), and
    only its own check (at most 5 ms, less the Finished's arrival after it) is added."""
    assert _ttfb("1Gbit", {"verify": 0.005}) - _ttfb("1Gbit", {}) == pytest.approx(15.0, abs=0.05)
    extra = _ttfb("1Mbit", {"verify": 0.005}) - _ttfb("1Mbit", {})
    assert 0.0 < extra <= 5.0 + 1e-6
