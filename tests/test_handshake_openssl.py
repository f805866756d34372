"""The must-show check: ttlbsim's flight sizes against a real OpenSSL TLS 1.3 handshake run in
memory (pyOpenSSL over the OpenSSL bundled with `cryptography`), for every pair of the study's
groups and signature algorithms.

Both sides use the same certificate chain from ttlbsim's generator (`minimal` profile, chain 2),
the real client is OpenSSL's default client with one key share (its default group list with the
tested group first, no '*' marks), and ttlbsim's `openssl` client profile with key_shares=1.
Tickets come after the client's Finished and are compared separately."""

import itertools

import pytest

from openssl_harness import handshake
from ttlbsim.handshake import build_profile
from ttlbsim.handshake.certificates import build_chain

KEX = ["x25519", "secp256r1", "X25519MLKEM768", "SecP256r1MLKEM768", "MLKEM1024"]
SIG = ["rsa2048", "ecdsa-p256", "ed25519", "mldsa44", "mldsa65", "mldsa87"]


def _model(kex, sig, **kw):
    return build_profile(kex=kex, sig=sig, chain=2, cert_profile="minimal", client_profile="openssl",
                         key_shares=1, **kw)


@pytest.mark.parametrize("kex,sig", list(itertools.product(KEX, SIG)))
def test_flights_match_real_openssl(kex, sig):
    chain = build_chain(sig, 2, None, "minimal")
    real = handshake(kex, chain.chain_pem(), chain.key_pem())
    assert [f.sender for f in real[:3]] == ["client", "server", "client"]
    model = _model(kex, sig).handshake_flights
    assert len(model) == 3
    ch, server, fin = (f.bytes for f in model)
    assert abs(ch - real[0].bytes) <= 0.01 * real[0].bytes
    assert abs(server - real[1].bytes) <= 0.01 * real[1].bytes
    assert fin == real[2].bytes
    # record structure: one record per message, the same number of records
    assert sum(len(dict(model[1].messages)) for _ in [0]) == len(real[1].records)


def test_tickets_match_real_openssl():
    chain = build_chain("ed25519", 2, None, "minimal")
    real = handshake("x25519", chain.chain_pem(), chain.key_pem())
    post = _model("x25519", "ed25519", tickets=2).flights[-1]
    assert post.phase == "post" and real[3].sender == "server"
    assert post.bytes == real[3].bytes
    assert post.writes == tuple(n for _, n in real[3].records)


def test_hello_retry_request_matches_real_openssl():
    chain = build_chain("mldsa44", 2, None, "minimal")
    real = handshake("X25519MLKEM768", chain.chain_pem(), chain.key_pem(), first_share="x25519")
    model = _model("X25519MLKEM768", "mldsa44", hrr=True).handshake_flights
    assert [f.sender for f in real[:5]] == [f.sender for f in model]
    for r, mdl in zip(real, model):
        assert abs(mdl.bytes - r.bytes) <= 0.01 * r.bytes, (r, mdl)
    assert model[-1].bytes == real[4].bytes


@pytest.mark.parametrize("sig", ["ecdsa-p256", "mldsa44"])
def test_mutual_tls_matches_real_openssl(sig):
    chain = build_chain(sig, 2, None, "minimal")
    client = build_chain(sig, 2, None, "minimal", "client")
    real = handshake("x25519", chain.chain_pem(), chain.key_pem(), client_chain=(client.chain_pem(), client.key_pem()))
    model = _model("x25519", sig, mtls=True, tickets=2).flights
    assert [f.sender for f in real] == [f.sender for f in model]
    for r, mdl in zip(real, model):
        assert abs(mdl.bytes - r.bytes) <= 0.01 * r.bytes, (r, mdl)
    assert model[-1].bytes == real[-1].bytes  # tickets carry the client's certificate
