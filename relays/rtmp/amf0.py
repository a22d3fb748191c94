"""AMF0, the value encoding of RTMP commands and FLV script data.

Pure functions over bytes: :func:`encode` turns Python values into AMF0, :func:`decode_all`
reads a payload (a command name, a transaction id, a command object, arguments...) back.

Python values and their AMF0 types:

============================  ==========================================================
``float`` / ``int``           Number (0x00); decoded as ``float``
``bool``                      Boolean (0x01)
``str``                       String (0x02), or Long String (0x0C) past 65535 UTF-8 bytes
``dict[str, value]``          Object (0x03)
``None``                      Null (0x05)
:data:`UNDEFINED`             Undefined (0x06)
:class:`EcmaArray`            ECMA array (0x08), FLV's ``onMetaData`` table
``list``                      Strict array (0x0A)
:class:`AmfDate`              Date (0x0B)
============================  ==========================================================
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, TypeAlias

NUMBER: Final = 0x00
BOOLEAN: Final = 0x01
STRING: Final = 0x02
OBJECT: Final = 0x03
NULL: Final = 0x05
UNDEFINED_MARKER: Final = 0x06
ECMA_ARRAY: Final = 0x08
OBJECT_END: Final = 0x09
STRICT_ARRAY: Final = 0x0A
DATE: Final = 0x0B
LONG_STRING: Final = 0x0C

_END: Final = b"\x00\x00\x09"
# Nesting deeper than this is not RTMP, it is an attack on the decoder's stack.
MAX_DEPTH: Final = 64


class AmfError(ValueError):
    """The bytes are not valid AMF0 (truncated, an unknown marker, bad UTF-8...)."""


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = _Undefined()
"""AMF0's ``undefined``, distinct from ``null`` (``None``)."""


class EcmaArray(dict[str, "Value"]):
    """An associative array (AMF0 0x08): FLV's ``onMetaData`` is one."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class AmfDate:
    """A date: milliseconds since the Unix epoch, and a time zone offset (usually 0)."""

    millis: float
    timezone: int = 0


Value: TypeAlias = (
    float
    | bool
    | str
    | _Undefined
    | AmfDate
    | EcmaArray
    | dict[str, "Value"]
    | list["Value"]
    | None
)


def encode(*values: Value) -> bytes:
    """The AMF0 encoding of ``values``, one after another.

    Raises:
        TypeError: A value has no AMF0 type.
        AmfError: A value cannot be encoded (an object key or array too long).
    """
    out = bytearray()
    for value in values:
        _encode(out, value, 0)
    return bytes(out)


def _encode(out: bytearray, value: Value, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise AmfError("values nested too deep")
    if isinstance(value, bool):  # before int: bool is an int
        out += bytes((BOOLEAN, int(value)))
    elif isinstance(value, int | float):
        out.append(NUMBER)
        out += struct.pack(">d", float(value))
    elif isinstance(value, str):
        data = value.encode("utf-8")
        if len(data) <= 0xFFFF:
            out.append(STRING)
            out += struct.pack(">H", len(data)) + data
        else:
            out.append(LONG_STRING)
            out += struct.pack(">I", len(data)) + data
    elif value is None:
        out.append(NULL)
    elif isinstance(value, _Undefined):
        out.append(UNDEFINED_MARKER)
    elif isinstance(value, AmfDate):
        out.append(DATE)
        out += struct.pack(">dh", value.millis, value.timezone)
    elif isinstance(value, EcmaArray):
        out.append(ECMA_ARRAY)
        out += struct.pack(">I", len(value))
        _encode_pairs(out, value, depth)
    elif isinstance(value, dict):
        out.append(OBJECT)
        _encode_pairs(out, value, depth)
    elif isinstance(value, list):
        out.append(STRICT_ARRAY)
        out += struct.pack(">I", len(value))
        for item in value:
            _encode(out, item, depth + 1)
    else:
        raise TypeError(f"no AMF0 type for {type(value).__name__}")


def _encode_pairs(out: bytearray, pairs: dict[str, Value], depth: int) -> None:
    for key, item in pairs.items():
        name = key.encode("utf-8")
        if len(name) > 0xFFFF:
            raise AmfError("an object key is longer than 65535 bytes")
        if not name:
            # An empty key followed by 0x09 is the end marker: it cannot be a key.
            raise AmfError("an object key must not be empty")
        out += struct.pack(">H", len(name)) + name
        _encode(out, item, depth + 1)
    out += _END


def decode_all(data: bytes) -> list[Value]:
    """Every value in ``data``, in order.

    Raises:
        AmfError: ``data`` is not a whole number of valid AMF0 values.
    """
    reader = _Reader(data)
    values = []
    while reader.pos < len(data):
        values.append(reader.value(0))
    return values


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise AmfError(f"truncated: needed {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, fmt: str) -> tuple[int | float, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def text(self, size: int) -> str:
        try:
            return self.take(size).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AmfError(f"a string is not UTF-8 ({exc.reason})") from None

    def value(self, depth: int) -> Value:
        if depth > MAX_DEPTH:
            raise AmfError("values nested too deep")
        marker = self.take(1)[0]
        if marker == NUMBER:
            return float(self.unpack(">d")[0])
        if marker == BOOLEAN:
            return self.take(1)[0] != 0
        if marker == STRING:
            return self.text(int(self.unpack(">H")[0]))
        if marker == LONG_STRING:
            return self.text(int(self.unpack(">I")[0]))
        if marker == OBJECT:
            obj: dict[str, Value] = {}
            self.pairs(obj, depth)
            return obj
        if marker == NULL:
            return None
        if marker == UNDEFINED_MARKER:
            return UNDEFINED
        if marker == ECMA_ARRAY:
            self.take(4)  # the count is a hint; the end marker is what ends it
            array = EcmaArray()
            self.pairs(array, depth)
            return array
        if marker == STRICT_ARRAY:
            count = int(self.unpack(">I")[0])
            if count > len(self.data) - self.pos:  # every value takes at least one byte
                raise AmfError(f"a strict array claims {count} items, more than the data holds")
            return [self.value(depth + 1) for _ in range(count)]
        if marker == DATE:
            millis, timezone = self.unpack(">dh")
            return AmfDate(float(millis), int(timezone))
        raise AmfError(f"unsupported AMF0 marker 0x{marker:02x} at offset {self.pos - 1}")

    def pairs(self, into: dict[str, Value], depth: int) -> None:
        while True:
            size = int(self.unpack(">H")[0])
            if size == 0:
                if self.take(1)[0] != OBJECT_END:
                    raise AmfError(f"an empty key without the object end at offset {self.pos}")
                return
            key = self.text(size)
            into[key] = self.value(depth + 1)
