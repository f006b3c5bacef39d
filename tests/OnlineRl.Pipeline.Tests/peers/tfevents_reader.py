#!/usr/bin/python3
"""An independent reader of TensorBoard event files, checked against the run's metrics.csv.

Written from the formats alone, with nothing shared with the C# writer: the TFRecord framing (uint64 length,
masked CRC-32C of the length, the data, masked CRC-32C of the data; little-endian) with its own CRC-32C table,
and the Event protobuf decoded by hand (varints, fixed32/64, length-delimited fields):

  Event:   wall_time = 1 (double), step = 2 (int64), file_version = 3 (string), summary = 5 (Summary)
  Summary: value = 1 (repeated Value)
  Value:   tag = 1 (string), simple_value = 2 (float)

Usage: tfevents_reader.py RUN_DIR
Reads every events.out.tfevents.* file under RUN_DIR and RUN_DIR/metrics.csv. Every scalar tag must be
"<group>/<csv column>"; every non-empty csv cell (but the step column) must have exactly one event with that column,
at that step, whose float32 value lies within the rounding of both (the csv's printed digits, float32's half ulp).
Prints one JSON object: {"events": N, "compared": N, "tags": [...], "file_versions": [...], "wall_times_ok": bool,
"unmatched": [{"tag", "step", "value"}...]} (events with no csv cell, e.g. the accuracy before RL).
Exits 1 with the reason on stderr on any framing, CRC, protobuf or value mismatch.
"""

import csv
import glob
import json
import math
import os
import struct
import sys
import time


def crc32c_table():
    # CRC-32C (Castagnoli), reflected polynomial 0x82F63B78.
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class Bad(Exception):
    pass


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at < len(data):
        if len(data) - at < 12:
            raise Bad(f"{path}: truncated record header at byte {at}")
        header = data[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        if masked(crc32c(header)) != length_crc:
            raise Bad(f"{path}: length CRC mismatch at byte {at}")
        start = at + 12
        if start + length + 4 > len(data):
            raise Bad(f"{path}: truncated record at byte {at} (length {length})")
        payload = data[start:start + length]
        (data_crc,) = struct.unpack("<I", data[start + length:start + length + 4])
        if masked(crc32c(payload)) != data_crc:
            raise Bad(f"{path}: data CRC mismatch in the record at byte {at}")
        yield payload
        at = start + length + 4


def varint(buf, at):
    result, shift = 0, 0
    while True:
        if at >= len(buf):
            raise Bad("truncated varint")
        b = buf[at]
        at += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, at
        shift += 7
        if shift > 63:
            raise Bad("varint longer than 10 bytes")


def fields(buf):
    """(field number, wire type, value) of a message: ints for varints, bytes for fixed and length-delimited."""
    at = 0
    while at < len(buf):
        key, at = varint(buf, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = varint(buf, at)
        elif wire == 1:
            value, at = buf[at:at + 8], at + 8
        elif wire == 2:
            length, at = varint(buf, at)
            value, at = buf[at:at + length], at + length
        elif wire == 5:
            value, at = buf[at:at + 4], at + 4
        else:
            raise Bad(f"unsupported wire type {wire} (field {number})")
        if at > len(buf):
            raise Bad(f"field {number} runs past the end of its message")
        yield number, wire, value


def event(payload):
    out = {"wall_time": None, "step": 0, "file_version": None, "values": []}
    for number, wire, value in fields(payload):
        if number == 1 and wire == 1:
            out["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2 and wire == 0:
            out["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3 and wire == 2:
            out["file_version"] = value.decode("utf-8")
        elif number == 5 and wire == 2:
            for n, w, v in fields(value):
                if n == 1 and w == 2:
                    tag, simple = None, None
                    for vn, vw, vv in fields(v):
                        if vn == 1 and vw == 2:
                            tag = vv.decode("utf-8")
                        elif vn == 2 and vw == 5:
                            simple = struct.unpack("<f", vv)[0]
                    if tag is None or simple is None:
                        raise Bad(f"a summary value without a tag or a simple_value (tag {tag})")
                    out["values"].append((tag, simple))
    return out


def printed_rounding(text):
    """Half a unit in the last digit the csv printed (e.g. '0.1235' -> 5e-5, '1.5e-05' -> 5e-7, '12' -> 0.5)."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or "0") - decimals)


def half_ulp32(x):
    if x == 0 or not math.isfinite(x):
        return 0.0
    return 2.0 ** (math.frexp(abs(x))[1] - 1 - 24)


def main(run_dir):
    # The standard check value of CRC-32C (RFC 3720, B.4): the reader's own checksum is right before it judges a file.
    assert crc32c(b"123456789") == 0xE3069283
    files = sorted(glob.glob(os.path.join(run_dir, "**", "events.out.tfevents.*"), recursive=True))
    if not files:
        raise Bad(f"no events.out.tfevents.* file under {run_dir}")
    scalars = {}  # (column, step) -> (tag, value)
    file_versions, count = [], 0
    now, wall_times_ok = time.time(), True
    for path in files:
        for i, payload in enumerate(records(path)):
            e = event(payload)
            # A wall time in Unix seconds, within the last day (not .NET ticks, not 0).
            wall_times_ok &= e["wall_time"] is not None and now - 86400 < e["wall_time"] <= now + 60
            if i == 0:
                if e["file_version"] is None:
                    raise Bad(f"{path}: the first record is not a file_version event")
                file_versions.append(e["file_version"])
            for tag, value in e["values"]:
                group, slash, column = tag.rpartition("/")
                if not slash or not group:
                    raise Bad(f"tag {tag!r} is not <group>/<column>")
                if (column, e["step"]) in scalars:
                    raise Bad(f"two events for {column} at step {e['step']}")
                scalars[(column, e["step"])] = (tag, value)
                count += 1

    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise Bad("metrics.csv has no rows")
    compared, compared_tags = 0, set()
    for row in rows:
        step = int(row["step"])
        for column, text in row.items():
            if column == "step" or text == "":
                continue
            if (column, step) not in scalars:
                raise Bad(f"metrics.csv has {column}={text} at step {step}; the event files have no such value")
            tag, value = scalars.pop((column, step))
            compared_tags.add(tag)
            expected = float(text)
            if math.isnan(expected) or math.isnan(value):
                if not (math.isnan(expected) and math.isnan(value)):
                    raise Bad(f"{tag} at step {step}: events {value!r}, csv {text}")
            elif abs(value - expected) > printed_rounding(text) + half_ulp32(expected) + half_ulp32(value):
                raise Bad(f"{tag} at step {step}: events {value!r}, csv {text}")
            compared += 1
    unmatched = [{"tag": tag, "step": step, "value": value} for (_, step), (tag, value) in sorted(scalars.items(), key=lambda kv: (kv[0][1], kv[1][0]))]
    tags = sorted(compared_tags | {tag for tag, _ in scalars.values()})
    print(json.dumps({"events": count, "compared": compared, "tags": tags, "file_versions": file_versions,
                      "wall_times_ok": wall_times_ok, "unmatched": unmatched}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        main(sys.argv[1])
    except Bad as e:
        sys.stderr.write(f"tfevents_reader: {e}\n")
        sys.exit(1)
