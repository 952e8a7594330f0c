"""TFRecord files of ``tf.train.Example`` protos, read (and, for tests and conversions, written) without TensorFlow.

The record framing (TensorFlow's ``core/lib/io/record_writer``): each record is

    uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data[length] | uint32 masked_crc32c(data)

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2^32)`` and CRC-32C the Castagnoli polynomial.
Both checksums are verified when a record is read; a mismatch, a truncated record or a malformed proto raises
:class:`TFRecordError` naming the file and the record.

The proto (``tensorflow/core/example/{example,feature}.proto``) is parsed from its wire format: ``Example`` holds
``Features features = 1``; ``Features`` a ``map<string, Feature> feature = 1`` (entries ``key = 1``, ``value = 2``);
``Feature`` one of ``BytesList bytes_list = 1``, ``FloatList float_list = 2``, ``Int64List int64_list = 3``, each a
``repeated value = 1`` (floats and int64s packed or not). A ``SequenceExample`` keeps its ``context`` features in
field 1 as well, so :func:`parse_example` reads those too (the BAIR files are read that way by TFDS). CRC-32C comes
from the ``crc32c`` package (hardware CRC instructions) when it is installed, else from a pure-Python table (same
values, about 100x slower).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Iterator

import numpy as np

__all__ = ["TFRecordError", "crc32c", "masked_crc32c", "record_offsets", "read_record", "iter_records",
           "parse_example", "encode_example", "write_records"]


class TFRecordError(ValueError):
    """A TFRecord file is truncated, fails a checksum or holds a malformed ``tf.train.Example``; the message names
    the file and the record."""


# ------------------------------------------------------------------------------------------------------ CRC-32C

def _table() -> list[int]:
    poly, out = 0x82F63B78, []  # Castagnoli, reflected
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        out.append(c)
    return out


_TABLE = _table()


def _crc32c_python(data: bytes) -> int:
    crc, table = 0xFFFFFFFF, _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


try:
    from crc32c import crc32c as _crc32c_fast
except ImportError:  # pragma: no cover - the Makefile installs crc32c
    _crc32c_fast = None


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``."""
    return _crc32c_fast(data) if _crc32c_fast is not None else _crc32c_python(data)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C (a CRC of data that itself holds CRCs stays unambiguous)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ------------------------------------------------------------------------------------------------ record framing

def record_offsets(path: str | os.PathLike) -> list[tuple[int, int]]:
    """``(offset of the data, length)`` of every record in ``path``, from the headers alone (the data is skipped,
    so indexing a large file reads a few bytes per record). The length checksum is verified here."""
    path, out = Path(path), []
    size = path.stat().st_size
    with open(path, "rb") as f:
        pos = 0
        while pos < size:
            header = f.read(12)
            if len(header) < 12:
                raise TFRecordError(f"{path}: record {len(out)} at byte {pos}: truncated header")
            (length,), (crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != crc:
                raise TFRecordError(f"{path}: record {len(out)} at byte {pos}: length CRC mismatch (corrupt file)")
            end = pos + 12 + length + 4
            if end > size:
                raise TFRecordError(f"{path}: record {len(out)} at byte {pos}: truncated (needs {end} bytes, the "
                                    f"file has {size})")
            out.append((pos + 12, length))
            pos = end
            f.seek(pos)
    return out


def read_record(path: str | os.PathLike, offset: int, length: int, index: int | str = "?") -> bytes:
    """The data of the record at ``offset`` (from :func:`record_offsets`), its CRC checked."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(length + 4)
    if len(data) != length + 4:
        raise TFRecordError(f"{path}: record {index}: truncated data")
    if masked_crc32c(data[:length]) != struct.unpack("<I", data[length:])[0]:
        raise TFRecordError(f"{path}: record {index}: data CRC mismatch (corrupt file)")
    return data[:length]


def iter_records(path: str | os.PathLike) -> Iterator[bytes]:
    """Every record's data in ``path``, in order, checksums verified."""
    for i, (offset, length) in enumerate(record_offsets(path)):
        yield read_record(path, offset, length, i)


def write_records(path: str | os.PathLike, records) -> Path:
    """Write ``records`` (bytes each) as a TFRecord file."""
    path = Path(path)
    with open(path, "wb") as f:
        for data in records:
            header = struct.pack("<Q", len(data))
            f.write(header + struct.pack("<I", masked_crc32c(header)) + data
                    + struct.pack("<I", masked_crc32c(data)))
    return path


# ---------------------------------------------------------------------------------------- tf.train.Example proto

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("varint runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """``(field number, wire type, value)`` of a message: ints for varint/fixed, bytes for length-delimited."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire} (field {number})")
        if pos > n:
            raise ValueError(f"field {number} runs past the end of its message")
        yield number, wire, value


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _feature(buf: bytes):
    """A ``Feature``: list of bytes, float32 array or int64 array."""
    for number, wire, value in _fields(buf):
        if wire != 2:
            continue
        if number == 1:  # BytesList
            return [v for n, w, v in _fields(value) if n == 1 and w == 2]
        if number == 2:  # FloatList: packed (wire 2) or one fixed32 per value (wire 5)
            parts = [v for n, _, v in _fields(value) if n == 1]
            return np.frombuffer(b"".join(parts), dtype="<f4").astype(np.float32)
        if number == 3:  # Int64List: packed varints or one varint per value
            out = []
            for n, w, v in _fields(value):
                if n != 1:
                    continue
                if w == 0:
                    out.append(_signed64(v))
                else:
                    pos = 0
                    while pos < len(v):
                        x, pos = _varint(v, pos)
                        out.append(_signed64(x))
            return np.asarray(out, dtype=np.int64)
    return []  # a Feature with no kind set


def parse_example(data: bytes) -> dict[str, object]:
    """The features of a serialized ``tf.train.Example`` (or a ``SequenceExample``'s context): ``{key: value}`` with
    a list of bytes for a ``bytes_list``, a float32 array for a ``float_list``, an int64 array for an
    ``int64_list``. Malformed input raises ``ValueError``."""
    out: dict[str, object] = {}
    for number, wire, features in _fields(data):
        if number != 1 or wire != 2:
            continue  # a SequenceExample's feature_lists (field 2): not used here
        for n, w, entry in _fields(features):
            if n != 1 or w != 2:
                continue
            key, value = None, b""
            for en, ew, ev in _fields(entry):
                if en == 1 and ew == 2:
                    key = ev.decode("utf-8")
                elif en == 2 and ew == 2:
                    value = ev
            if key is None:
                raise ValueError("a feature map entry has no key")
            out[key] = _feature(value)
    return out


def _len_field(number: int, payload: bytes) -> bytes:
    return _put_varint((number << 3) | 2) + _put_varint(len(payload)) + payload


def _put_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_example(features: dict[str, object]) -> bytes:
    """Serialize ``{key: value}`` as a ``tf.train.Example``: ``bytes`` or a list of bytes -> ``bytes_list``; a float
    array/list -> packed ``float_list``; an integer array/list -> packed ``int64_list``."""
    entries = b""
    for key, value in features.items():
        if isinstance(value, bytes):
            value = [value]
        if isinstance(value, list) and value and isinstance(value[0], bytes):
            feature = _len_field(1, b"".join(_len_field(1, v) for v in value))
        else:
            arr = np.asarray(value)
            if arr.dtype.kind == "f":
                feature = _len_field(2, _len_field(1, arr.astype("<f4").tobytes()))
            elif arr.dtype.kind in "iu":
                packed = b"".join(_put_varint(int(v) & ((1 << 64) - 1)) for v in arr.ravel())
                feature = _len_field(3, _len_field(1, packed))
            else:
                raise TypeError(f"feature {key!r}: cannot encode {type(value).__name__}")
        entries += _len_field(1, _len_field(1, key.encode("utf-8")) + _len_field(2, feature))
    return _len_field(1, entries)
