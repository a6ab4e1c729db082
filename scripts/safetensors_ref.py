#!/usr/bin/python3
"""Reference files for tests/test_safetensors.c, written and read with
nothing but struct and json, following the format description of
https://github.com/huggingface/safetensors ("Format" section):

    8-byte little-endian u64 N | N bytes of UTF-8 JSON | data

Usage (run by hand when the reference files change, not by the tests):
    scripts/safetensors_ref.py write tests/data/st_python.safetensors
    scripts/safetensors_ref.py check tests/data/st_uniadc.safetensors

`write` makes a file independently of uniadc: its JSON lists the tensors
by name while the data lies in reverse order, so a reader must follow the
offsets. `check` validates a file written by uniadc's writer (header
layout, offsets tiling the data, 8-byte aligned data start) and compares
every value with TENSORS below; it exits non-zero on any mismatch.
"""
import json
import math
import struct
import sys

FMT = {"F32": "f", "F16": "e", "F64": "d", "I64": "q", "I32": "i",
       "I16": "h", "I8": "b", "U8": "B", "BOOL": "?"}
SIZE = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4,
        "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}

# name -> (dtype, shape, values); the C test holds the same table.
TENSORS = {
    "weight": ("F32", [2, 3], [0.5, -1.0, 2.0, 3.25, -4.5, 0.001]),
    "half": ("F16", [5], [1.0, -2.5, 65504.0, 2.0 ** -24, math.inf]),
    "brain": ("BF16", [3], [1.0, -2.5, 0.15625]),
    "double": ("F64", [], [3.141592653589793]),
    "ints": ("I32", [2, 2], [1, -2, 3, -4]),
    "longs": ("I64", [2], [-(2 ** 40), 7]),
    "shorts": ("I16", [2], [-300, 300]),
    "tiny": ("I8", [2], [-5, 5]),
    "bytes": ("U8", [3], [0, 127, 255]),
    "mask": ("BOOL", [4], [True, False, False, True]),
    "empty": ("F32", [0, 4], []),
}


def pack(dtype, values):
    if dtype == "BF16":
        # bfloat16 keeps the top 16 bits of a binary32 (values above are
        # exact in bfloat16, so no rounding question arises).
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    return struct.pack("<%d%s" % (len(values), FMT[dtype]), *values)


def unpack(dtype, raw):
    if dtype == "BF16":
        return [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0]
                for i in range(0, len(raw), 2)]
    return list(struct.unpack("<%d%s" % (len(raw) // SIZE[dtype],
                                          FMT[dtype]), raw))


def write(path):
    blobs, header, off = [], {"__metadata__": {"format": "pt",
                                                "source": "python"}}, 0
    for name in reversed(sorted(TENSORS)):  # data in reverse name order
        dtype, shape, values = TENSORS[name]
        raw = pack(dtype, values)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    ordered = {"__metadata__": header.pop("__metadata__")}
    ordered.update(sorted(header.items()))
    text = json.dumps(ordered).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def check(path, source):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0, "data start not 8-byte aligned"
    header = json.loads(raw[8:8 + n].decode())
    data = raw[8 + n:]
    meta = header.pop("__metadata__")
    assert meta == {"format": "pt", "source": source}, meta
    assert sorted(header) == sorted(TENSORS), sorted(header)
    spans = sorted(tuple(e["data_offsets"]) for e in header.values())
    at = 0
    for b, e in spans:
        assert b == at, "gap or overlap at %d" % b
        at = e
    assert at == len(data), "trailing bytes"
    for name, (dtype, shape, values) in TENSORS.items():
        e = header[name]
        assert e["dtype"] == dtype and e["shape"] == shape, (name, e)
        b, end = e["data_offsets"]
        assert end - b == math.prod(shape) * SIZE[dtype], name
        got = unpack(dtype, data[b:end])
        want = unpack(dtype, pack(dtype, values))  # rounded to dtype
        assert got == want, (name, got, want)
    print("%s: %d tensors, values match" % (path, len(TENSORS)))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        sys.exit(__doc__)
    if sys.argv[1] == "write":
        write(sys.argv[2])
        check(sys.argv[2], "python")
    else:
        check(sys.argv[2], "uniadc")
