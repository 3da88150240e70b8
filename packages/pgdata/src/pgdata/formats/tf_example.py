"""Minimal protobuf wire-format decoding of tf.train.Example, as the original TFRecords datasets store images.

No protobuf or TensorFlow dependency: only the fields the datasets use are read, by walking the wire format.
TensorFlow writes the two features in a varying order, so the decoder reads the feature map, not fixed offsets.
"""

from __future__ import annotations

from collections.abc import Iterator

# The messages read (field numbers as in TensorFlow's example.proto and feature.proto):
#   Example { Features features = 1; }   Features { map<string, Feature> feature = 1; }
#   Feature { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
#   BytesList { repeated bytes value = 1; }   Int64List { repeated int64 value = 1 [packed]; }


class WireError(ValueError):
    """A record that is not a well-formed tf.train.Example holding `shape` and `data`."""


def _varint(buffer: bytes, position: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if position >= end or shift > 63:
            raise WireError("bad varint")
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


def _fields(buffer: bytes, start: int, end: int) -> Iterator[tuple[int, int, int | tuple[int, int]]]:
    """Yield (field number, wire type, value); length-delimited values as (start, end) spans."""
    position = start
    while position < end:
        key, position = _varint(buffer, position, end)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(buffer, position, end)
            yield number, wire_type, value
        elif wire_type == 2:
            length, position = _varint(buffer, position, end)
            if position + length > end:
                raise WireError("field runs past its message")
            yield number, wire_type, (position, position + length)
            position += length
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        else:
            raise WireError(f"unsupported wire type {wire_type}")
    if position != end:
        raise WireError("message ends inside a field")


def _to_int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _int64_list(buffer: bytes, start: int, end: int) -> list[int]:
    values: list[int] = []
    for number, wire_type, value in _fields(buffer, start, end):
        if number != 1:
            continue
        if wire_type == 0:  # unpacked
            values.append(_to_int64(value))
        elif wire_type == 2:  # packed
            position, stop = value
            while position < stop:
                item, position = _varint(buffer, position, stop)
                values.append(_to_int64(item))
    return values


def _bytes_list(buffer: bytes, start: int, end: int) -> list[tuple[int, int]]:
    return [value for number, wire_type, value in _fields(buffer, start, end) if number == 1 and wire_type == 2]


def decode_example(record: bytes) -> tuple[tuple[int, ...], int, int]:
    """Decode an Example holding `shape` and `data` -> (shape, data start, data end) within `record`.

    The image bytes are not copied; the caller slices them out.
    """
    shape: list[int] | None = None
    data: tuple[int, int] | None = None
    for number, wire_type, features in _fields(record, 0, len(record)):
        if number != 1 or wire_type != 2:
            continue
        for entry_number, entry_type, entry in _fields(record, *features):
            if entry_number != 1 or entry_type != 2:
                continue
            key: bytes | None = None
            feature: tuple[int, int] | None = None
            for item_number, item_type, item in _fields(record, *entry):
                if item_number == 1 and item_type == 2:
                    key = bytes(record[item[0]:item[1]])
                elif item_number == 2 and item_type == 2:
                    feature = item
            if feature is None:
                continue
            for kind, kind_type, payload in _fields(record, *feature):
                if kind_type != 2:
                    continue
                if key == b"shape" and kind == 3:
                    shape = _int64_list(record, *payload)
                elif key == b"data" and kind == 1:
                    values = _bytes_list(record, *payload)
                    if len(values) != 1:
                        raise WireError(f"feature 'data' holds {len(values)} byte strings, expected 1")
                    data = values[0]
    if shape is None or data is None:
        missing = " and ".join(name for name, value in (("shape", shape), ("data", data)) if value is None)
        raise WireError(f"Example has no {missing} feature")
    if len(shape) != 3 or min(shape) <= 0 or shape[0] * shape[1] * shape[2] != data[1] - data[0]:
        raise WireError(f"shape {shape} does not match {data[1] - data[0]} data bytes")
    return tuple(shape), data[0], data[1]
