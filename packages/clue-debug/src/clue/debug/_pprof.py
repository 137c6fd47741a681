"""Writing pprof profiles (``profile.proto``) with a small hand-written protobuf encoder.

pprof needs only varints and length-delimited fields, so a 40-line encoder is simpler
than depending on the protobuf runtime (which clue-debug does not otherwise need). The
field numbers are those of ``github.com/google/pprof/proto/profile.proto``.
"""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Frame", "ProfileBuilder", "encode_varint"]

# profile.proto field numbers
_P_SAMPLE_TYPE, _P_SAMPLE, _P_MAPPING, _P_LOCATION, _P_FUNCTION, _P_STRINGS = 1, 2, 3, 4, 5, 6
_P_TIME, _P_DURATION, _P_PERIOD_TYPE, _P_PERIOD, _P_COMMENT = 9, 10, 11, 12, 13

_VARINT, _LEN = 0, 2


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame: function, file, the function's first line and the current line."""

    name: str
    filename: str
    first_line: int
    line: int


def _display_name(frame: Frame) -> str:
    # pprof drops names that start with "<" (it takes them for C++ template arguments),
    # so "<module>" or "<lambda>" are qualified with the file's stem: "app.<module>".
    if not frame.name.startswith("<"):
        return frame.name
    stem = os.path.splitext(os.path.basename(frame.filename))[0] or "?"
    return f"{stem}.{frame.name}"


def encode_varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative numbers as their 64-bit two's complement."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return encode_varint(field << 3 | wire)


def _int(field: int, value: int) -> bytes:
    # proto3 omits default values
    return _key(field, _VARINT) + encode_varint(value) if value else b""


def _bytes(field: int, value: bytes) -> bytes:
    return _key(field, _LEN) + encode_varint(len(value)) + value


def _packed(field: int, values: Iterable[int]) -> bytes:
    payload = b"".join(encode_varint(v) for v in values)
    return _bytes(field, payload) if payload else b""


class ProfileBuilder:
    r"""Accumulates samples over interned strings, functions and locations.

    Example:
        >>> b = ProfileBuilder([("samples", "count"), ("wall", "nanoseconds")])
        >>> b.add([Frame("main", "app.py", 1, 3)], [1, 10_000_000])
        >>> b.encode()[:2] == b"\x1f\x8b"  # gzip
        True
    """

    def __init__(
        self,
        sample_types: Sequence[tuple[str, str]],
        *,
        period_type: tuple[str, str] | None = None,
        period: int = 0,
        time_nanos: int = 0,
        duration_nanos: int = 0,
        comments: Sequence[str] = (),
    ) -> None:
        self._strings: dict[str, int] = {"": 0}
        self._functions: dict[tuple[str, str, int], int] = {}
        self._locations: dict[tuple[int, int], int] = {}
        self._samples: list[bytes] = []
        self._sample_types = [(self._str(t), self._str(u)) for t, u in sample_types]
        self._period_type = (
            (self._str(period_type[0]), self._str(period_type[1])) if period_type else None
        )
        self._period = period
        self._time = time_nanos
        self._duration = duration_nanos
        self._comments = [self._str(c) for c in comments]
        self._mapping_file = self._str(os.path.basename(sys.executable) or "python")

    def _str(self, s: str) -> int:
        index = self._strings.get(s)
        if index is None:
            index = self._strings[s] = len(self._strings)
        return index

    def _location(self, frame: Frame) -> int:
        fkey = (_display_name(frame), frame.filename, frame.first_line)
        function_id = self._functions.get(fkey)
        if function_id is None:
            function_id = self._functions[fkey] = len(self._functions) + 1
            self._str(fkey[0])
            self._str(frame.filename)
        lkey = (function_id, frame.line)
        location_id = self._locations.get(lkey)
        if location_id is None:
            location_id = self._locations[lkey] = len(self._locations) + 1
        return location_id

    def add(
        self,
        stack: Sequence[Frame],
        values: Sequence[int],
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """Add one sample: ``stack`` leaf first, one value per sample type."""
        if len(values) != len(self._sample_types):
            msg = f"expected {len(self._sample_types)} values, got {len(values)}"
            raise ValueError(msg)
        body = _packed(1, (self._location(f) for f in stack)) + _packed(2, values)
        for key, value in (labels or {}).items():
            body += _bytes(3, _int(1, self._str(key)) + _int(2, self._str(value)))
        self._samples.append(body)

    def serialize(self) -> bytes:
        """The uncompressed ``Profile`` message."""
        out = bytearray()
        for type_index, unit_index in self._sample_types:
            out += _bytes(_P_SAMPLE_TYPE, _int(1, type_index) + _int(2, unit_index))
        for sample in self._samples:
            out += _bytes(_P_SAMPLE, sample)
        # One mapping that says symbols are already resolved, so pprof does not try to.
        out += _bytes(
            _P_MAPPING,
            _int(1, 1) + _int(5, self._mapping_file) + _int(7, 1) + _int(8, 1) + _int(9, 1),
        )
        functions = {fid: key for key, fid in self._functions.items()}
        for (function_id, line), location_id in self._locations.items():
            line_msg = _int(1, function_id) + _int(2, line)
            out += _bytes(_P_LOCATION, _int(1, location_id) + _int(2, 1) + _bytes(4, line_msg))
        for function_id, (name, filename, first_line) in sorted(functions.items()):
            name_index = self._strings[name]
            out += _bytes(
                _P_FUNCTION,
                _int(1, function_id)
                + _int(2, name_index)
                + _int(3, name_index)
                + _int(4, self._strings[filename])
                + _int(5, first_line),
            )
        for s in self._strings:  # insertion order is index order
            out += _bytes(_P_STRINGS, s.encode("utf-8", "replace"))
        out += _int(_P_TIME, self._time) + _int(_P_DURATION, self._duration)
        if self._period_type is not None:
            out += _bytes(
                _P_PERIOD_TYPE, _int(1, self._period_type[0]) + _int(2, self._period_type[1])
            )
        out += _int(_P_PERIOD, self._period)
        for comment in self._comments:
            out += _int(_P_COMMENT, comment)  # repeated int64, unpacked: readers accept both
        return bytes(out)

    def encode(self) -> bytes:
        """The gzipped ``Profile``, as served by Go's ``/debug/pprof`` endpoints."""
        return gzip.compress(self.serialize(), compresslevel=6, mtime=0)
