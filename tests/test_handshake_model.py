"""Handshake model: FIPS 203/204/205 sizes from the real primitives, genuine certificates, variants."""

import pytest
from cryptography import x509

from ttlbsim.errors import InvalidValue
from ttlbsim.handshake import algorithms, build_profile
from ttlbsim.handshake.certificates import build_chain
from ttlbsim.handshake.records import socket_writes
from ttlbsim.scenario import TLSConfig

# (group, client key share, server key share): FIPS 203 Table 3, draft-ietf-tls-ecdhe-mlkem
KEX_SIZES = [("x25519", 32, 32), ("secp256r1", 65, 65), ("secp384r1", 97, 97),
             ("MLKEM512", 800, 768), ("MLKEM768", 1184, 1088), ("MLKEM1024", 1568, 1568),
             ("X25519MLKEM768", 1216, 1120), ("SecP256r1MLKEM768", 1249, 1153), ("SecP384r1MLKEM1024", 1665, 1665)]
# (algorithm, public key, signature): FIPS 204 Table 2, FIPS 205 Table 2, RFC 8032, RFC 8017
SIG_SIZES = [("mldsa44", 1312, 2420), ("mldsa65", 1952, 3309), ("mldsa87", 2592, 4627),
             ("slhdsa-sha2-128s", 32, 7856), ("slhdsa-sha2-128f", 32, 17088), ("ed25519", 32, 64),
             ("rsa2048", 270, 256), ("ecdsa-p256", 65, 71), ("ecdsa-p384", 97, 103)]


@pytest.mark.parametrize("group,client,server", KEX_SIZES)
def test_key_share_sizes(group, client, server):
    c, s = algorithms.key_share(group)
    assert (len(c), len(s)) == (client, server)


@pytest.mark.parametrize("sig,pk,signature", SIG_SIZES)
def test_signature_sizes(sig, pk, signature):
    alg = algorithms.get_sig(sig)
    key = algorithms.signing_key(alg.name, "leaf")
    assert len(algorithms.public_key_bytes(key)) == pk
    s = alg.sign(key, b"message")
    alg.verify(key, b"message", s)
    assert len(s) == signature


def test_size_table_covers_every_algorithm():
    rows = algorithms.size_table()
    assert {r["name"] for r in rows} == set(algorithms.GROUPS) | set(algorithms.SIGNATURES)


@pytest.mark.parametrize("op", ["kem.keygen:MLKEM512", "kem.encaps:X25519MLKEM768", "kem.decaps:SecP256r1MLKEM768",
                                "sign:mldsa65", "verify:ed25519"])
def test_operations_are_callable(op):
    algorithms.operation(op)()


def test_unknown_operation():
    with pytest.raises(InvalidValue):
        algorithms.operation("sign:rsa1024")


@pytest.mark.parametrize("sig,inter", [("rsa2048", None), ("ecdsa-p256", None), ("mldsa44", "mldsa65"),
                                       ("slhdsa-sha2-128f", None), ("mldsa44", "slhdsa-sha2-128f")])
@pytest.mark.parametrize("profile", ["minimal", "webpki"])
def test_chains_are_genuine(sig, inter, profile):
    chain = build_chain(sig, 2, inter, profile)
    certs = [x509.load_der_x509_certificate(c) for c in chain.certs + (chain.root,)]
    for child, issuer, alg in zip(certs, certs[1:], chain.signatures):
        assert child.issuer == issuer.subject
        if algorithms.get_sig(alg).native and algorithms.get_sig(sig).native:
            child.verify_directly_issued_by(issuer)
        else:  # SLH-DSA: check the genuine signature over the TBS bytes ourselves
            key = algorithms.signing_key(alg, f"server-{certs.index(issuer)}")
            algorithms.get_sig(alg).verify(key, child.tbs_certificate_bytes, child.signature)
    if profile == "webpki":
        oids = {e.oid.dotted_string for e in certs[0].extensions}
        assert {"2.5.29.15", "2.5.29.37", "1.3.6.1.5.5.7.1.1", "2.5.29.31", "2.5.29.32",
                "1.3.6.1.4.1.11129.2.4.2"} <= oids


def test_chain_sizes_are_stable():
    a = build_chain("ecdsa-p256", 3, None, "webpki")
    build_chain.cache_clear()
    b = build_chain("ecdsa-p256", 3, None, "webpki")
    assert [len(c) for c in a.certs] == [len(c) for c in b.certs]


def _sizes(**kw):
    p = build_profile(TLSConfig(**kw))
    return p, [f.bytes for f in p.flights]


def test_default_profile_shape():
    p, _ = _sizes()
    assert [f.sender for f in p.flights] == ["client", "server", "client"]
    for f in p.flights:
        assert sum(f.writes) == f.bytes == sum(n for _, n in f.messages)
    assert p.flights[1].ops == ("kem.encaps:X25519MLKEM768", "sign:mldsa44")
    assert p.flights[0].ops == ("kem.keygen:X25519MLKEM768", "kem.keygen:x25519")
    assert "verify:mldsa44" in p.flights[2].ops and p.flights[2].ops[0] == "kem.decaps:X25519MLKEM768"
    assert dict(p.flights[2].messages)["Finished"] == 4 + 48 + 22


def test_mtls_adds_client_chain():
    base, _ = _sizes()
    p, _ = _sizes(mtls=True)
    assert "Certificate" in p.flights[2].message_dict() and "CertificateRequest" in p.flights[1].message_dict()
    assert p.flights[2].bytes > base.flights[2].bytes + 8000
    assert "sign:mldsa44" in p.flights[2].ops and p.post_ops


def test_hrr_adds_a_round_trip():
    p, _ = _sizes(hrr=True)
    assert [f.sender for f in p.flights] == ["client", "server", "client", "server", "client"]
    assert "HelloRetryRequest" in p.flights[1].message_dict()
    assert "ClientHello" in p.flights[2].message_dict()


def test_resume_has_no_certificate():
    p, _ = _sizes(resume=True)
    assert not {"Certificate", "CertificateVerify"} & set(p.flights[1].message_dict())
    assert not any(op.startswith(("sign", "verify")) for f in p.flights for op in f.ops)


@pytest.mark.parametrize("algorithm", ["zlib", "brotli", "zstd"])
def test_compression_shrinks_classical_chain(algorithm):
    plain, _ = _sizes(sig="rsa2048", cert_profile="webpki")
    comp, _ = _sizes(sig="rsa2048", cert_profile="webpki", compress=algorithm)
    assert "CompressedCertificate" in comp.flights[1].message_dict()
    assert comp.flights[1].bytes < plain.flights[1].bytes - 300


def test_tickets_add_post_flight():
    p, _ = _sizes(tickets=2)
    assert p.flights[-1].phase == "post" and p.flights[-1].sender == "server"
    assert p.flights[-1].message_dict() == {"NewSessionTicket": 2 * 255}
    assert len(p.handshake_flights) == 3


def test_key_shares_grow_client_hello():
    one, _ = _sizes(key_shares=1)
    two, _ = _sizes(key_shares=2)
    three, _ = _sizes(key_shares=3)
    assert two.flights[0].bytes - one.flights[0].bytes == 4 + 32
    assert three.flights[0].bytes - two.flights[0].bytes == 4 + 65


def test_chain_bytes_override():
    p, _ = _sizes(chain_bytes=16000)
    assert sum(p.sizes["certificates"]) == 16000
    cert = p.flights[1].message_dict()["Certificate"]
    assert cert == 16000 + 4 + 1 + 3 + 2 * (3 + 2) + 22
    big, _ = _sizes(chain_bytes=20000)
    assert big.flights[1].message_dict()["Certificate"] == 20000 + 4 + 1 + 3 + 2 * (3 + 2) + 2 * 22  # 2 records
    with pytest.raises(InvalidValue):
        build_profile(TLSConfig(chain_bytes=1))


def test_chain_length():
    p1, _ = _sizes(chain=1)
    p3, _ = _sizes(chain=3)
    assert len(p1.sizes["certificates"]) == 1 and len(p3.sizes["certificates"]) == 3
    assert p3.flights[2].ops.count("verify:mldsa44") == 4


def test_socket_writes_follow_openssl_buffer():
    assert socket_writes([1215, 6, 28, 7917, 2450, 74]) == (4096, 5070, 2524)
    assert socket_writes([127, 6, 28, 595]) == (756,)
    assert socket_writes([5, 20000]) == (4096, 15909)
