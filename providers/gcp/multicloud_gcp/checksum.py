"""CRC-32C (Castagnoli), the checksum Secret Manager verifies payloads with (no C extension needed)."""

from __future__ import annotations


def _table() -> list[int]:
    """The byte-wise lookup table of the reflected polynomial 0x82F63B78."""
    table = []
    for index in range(256):
        value = index
        for _ in range(8):
            value = (value >> 1) ^ 0x82F63B78 if value & 1 else value >> 1
        table.append(value)
    return table


_TABLE = _table()


def crc32c(data: bytes) -> int:
    """The CRC-32C of `data`."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
