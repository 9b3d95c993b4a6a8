"""PostgreSQL's binary forms of fixed-width values, to and from numpy arrays, so that hundreds
of thousands of aggregated values cross the wire without one Python object each. Pure: no
Django, no driver.

Reading: `<type>send(value)` is a value's binary form (network byte order); string_agg of those
over a query's rows is one bytea per column, which numpy reads as an array.

Writing: binary COPY (https://www.postgresql.org/docs/current/sql-copy.html) is an 11-byte
signature, a 32-bit flags field and a 32-bit header-extension length; then per row a 16-bit
field count and per field a 32-bit length and the value; then a 16-bit −1. With every field
NOT NULL and fixed-width, every row has the same layout: one numpy record array."""

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)
# PostgreSQL's epoch: timestamptz is int8 microseconds since then.
PG_EPOCH = np.datetime64("2000-01-01T00:00:00", "us")


class BinaryType(NamedTuple):
    sql: str  # the PostgreSQL type
    send: str  # its binary output function
    wire: str  # numpy type of the binary form (big-endian)
    native: str  # numpy type handed to callers


TYPES = {
    "bool": BinaryType("boolean", "boolsend", "?", "?"),
    "int4": BinaryType("integer", "int4send", ">i4", "<i4"),
    "int8": BinaryType("bigint", "int8send", ">i8", "<i8"),
    "float8": BinaryType("double precision", "float8send", ">f8", "<f8"),
    "timestamptz": BinaryType("timestamp with time zone", "timestamptz_send", ">i8", "M8[us]"),
}


def unpack(data: bytes | None, kind: str) -> np.ndarray:
    """The values of concatenated binary forms of one type (None: no rows)."""
    spec = TYPES[kind]
    raw = np.frombuffer(data or b"", dtype=spec.wire)
    if kind == "timestamptz":
        return PG_EPOCH + raw.astype(np.int64).astype("timedelta64[us]")
    return raw.astype(spec.native)


def kind_of(values: np.ndarray) -> str:
    """The binary type of an array: bool, int8, float8 or timestamptz."""
    code = values.dtype.kind
    if code == "b":
        return "bool"
    if code in "iu":
        return "int8"
    if code == "f":
        return "float8"
    if code == "M":
        return "timestamptz"
    raise TypeError(f"no fixed-width binary type for numpy dtype {values.dtype}")


def copy_stream(columns: Sequence[np.ndarray], *, rows_per_chunk: int = 8192) -> Iterator[bytes]:
    """A binary COPY stream of equal-length arrays (bool, integer, float, datetime64), in
    chunks of `rows_per_chunk` rows so that memory stays flat however many rows."""
    kinds = [kind_of(values) for values in columns]
    layout: list[tuple[str, str]] = [("count", ">i2")]
    for i, kind in enumerate(kinds):
        layout += [(f"length{i}", ">i4"), (f"value{i}", TYPES[kind].wire)]
    dtype = np.dtype(layout)
    count = len(columns[0]) if columns else 0
    yield HEADER
    for start in range(0, count, rows_per_chunk):
        part = [values[start : start + rows_per_chunk] for values in columns]
        records = np.empty(len(part[0]), dtype=dtype)
        records["count"] = len(columns)
        for i, (values, kind) in enumerate(zip(part, kinds, strict=True)):
            records[f"length{i}"] = np.dtype(TYPES[kind].wire).itemsize
            if kind == "timestamptz":
                values = (values.astype("datetime64[us]") - PG_EPOCH).astype(np.int64)
            records[f"value{i}"] = values
        yield records.tobytes()
    yield TRAILER
