"""The few DER operations certificates.py needs to re-wrap a certificate that `cryptography` cannot
sign (SLH-DSA): split a TLV into its children, encode a length, build SEQUENCE / OID / BIT STRING /
OCTET STRING values. Not a general ASN.1 library."""

from __future__ import annotations


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(content)) + content


def read_tlv(data: bytes, pos: int = 0) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the TLV at `pos` (single-byte tags only)."""
    tag = data[pos]
    first = data[pos + 1]
    if first < 0x80:
        return tag, pos + 2, pos + 2 + first
    k = first & 0x7F
    n = int.from_bytes(data[pos + 2:pos + 2 + k], "big")
    return tag, pos + 2 + k, pos + 2 + k + n


def children(data: bytes) -> list[bytes]:
    """The complete TLVs inside the constructed TLV `data`."""
    _, pos, end = read_tlv(data)
    out = []
    while pos < end:
        _, start, stop = read_tlv(data, pos)
        out.append(data[pos:stop])
        pos = stop
    return out


def sequence(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def bit_string(content: bytes) -> bytes:
    return tlv(0x03, b"\x00" + content)


def octet_string(content: bytes) -> bytes:
    return tlv(0x04, content)


def algorithm_identifier(dotted: str, null_params: bool = False) -> bytes:
    return sequence(oid(dotted), b"\x05\x00" if null_params else b"")
