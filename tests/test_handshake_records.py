"""Record framing and OpenSSL's handshake write buffer: properties."""

from hypothesis import given, strategies as st

from ttlbsim.handshake.certificates import resize
from ttlbsim.handshake.records import MAX_FRAGMENT, PROTECTED_OVERHEAD, WRITE_BUFFER, record_sizes, socket_writes


@given(st.integers(min_value=1, max_value=200_000))
def test_records_cover_the_message(n):
    sizes = record_sizes(n, protected=True)
    assert sum(sizes) == n + len(sizes) * PROTECTED_OVERHEAD
    assert all(s <= MAX_FRAGMENT + PROTECTED_OVERHEAD for s in sizes)
    assert len(sizes) == -(-n // MAX_FRAGMENT)


@given(st.lists(st.integers(min_value=6, max_value=40_000), min_size=1, max_size=12))
def test_writes_carry_every_byte(records):
    writes = socket_writes(records)
    assert sum(writes) == sum(records)
    assert all(w > 0 for w in writes)
    assert all(w >= WRITE_BUFFER for w in writes[:-1])  # only the final flush can be short
    if sum(records) <= WRITE_BUFFER:
        assert writes == (sum(records),)


@given(st.lists(st.integers(min_value=100, max_value=9000), min_size=1, max_size=5),
       st.integers(min_value=5, max_value=60_000))
def test_resize_distributes_exactly(genuine, total):
    certs = tuple(bytes([i % 251]) * n for i, n in enumerate(genuine))
    if total < len(certs):
        return
    out = resize(certs, total)
    assert sum(len(c) for c in out) == total and all(len(c) >= 1 for c in out)
