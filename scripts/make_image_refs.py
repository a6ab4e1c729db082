#!/usr/bin/python3
"""Make the image module's test data (run with Debian's /usr/bin/python3).

1. tests/data/images/*: tiny PNG, JPEG, TIFF and BMP files whose pixels
   follow formulas that tests/test_image.c recomputes. PNG and TIFF are
   written byte by byte here (every bit depth, colour type and plane layout
   we decode); JPEG and BMP come from PIL.
2. tests/data/resize_refs.txt: torch.nn.functional.interpolate outputs
   (bilinear, align_corners=False, antialias=False; nearest) for odd sizes.
3. fuzz/corpus/image/: a copy of the small files as the fuzz seed corpus.

Usage: /usr/bin/python3 scripts/make_image_refs.py   (from the repo root)
"""
import io
import os
import shutil
import struct
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMG = os.path.join(ROOT, "tests", "data", "images")
CORPUS = os.path.join(ROOT, "fuzz", "corpus", "image")


# ---- pixel formulas (mirrored in tests/test_image.c) -------------------

def pat(x, y, ch, maxv):
    """Integer test pattern in [0, maxv]."""
    return (x * 37 + y * 11 + ch * 71) % (maxv + 1)


def pat16(x, y, ch):
    return (x * 9001 + y * 4001 + ch * 17000) % 65536


def smooth(x, y, ch):
    """Slowly varying 8-bit pattern that JPEG keeps within a few levels."""
    return 40 + 5 * x + 3 * y + 30 * ch


def fpat(x, y, ch):
    """float32 pattern with negative, fractional and large values."""
    return np.float32((x - 3) * 0.37 + y * 1.5e3 + ch * -2.25)


# ---- PNG writer --------------------------------------------------------

def chunk(tag, data):
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def pack_row(samples, depth):
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out, acc, nbits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


# Adam7 passes: (first x, first y, x step, y step).
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
         (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(name, w, h, depth, ctype, nch, fn, plte=None, trns=None,
              interlace=False):
    """fn(x, y, ch) gives each stored sample (index for palettes)."""
    raw = b""
    for x0, y0, dx, dy in (ADAM7 if interlace else [(0, 0, 1, 1)]):
        xs = range(x0, w, dx)
        for y in range(y0, h, dy):
            if len(xs) == 0:
                break
            row = [fn(x, y, ch) for x in xs for ch in range(nch)]
            raw += b"\0" + pack_row(row, depth)
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype,
                                       0, 0, int(interlace)))
    if plte is not None:
        data += chunk(b"PLTE", b"".join(bytes(c) for c in plte))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    data += chunk(b"IDAT", zlib.compress(raw, 9))
    data += chunk(b"IEND", b"")
    save(name, data)


# ---- TIFF writer (little-endian, uncompressed) -------------------------

def write_tiff(name, w, h, spp, bps, fmt, planar, fn, photo=None,
               tile=None, ifd_first=False):
    """fmt: 1 uint, 3 float. planar: 1 contiguous, 2 separate.
    tile: (tw, th) for a tiled file, else one strip per plane."""
    dt = {(8, 1): "<u1", (16, 1): "<u2", (32, 3): "<f4"}[(bps, fmt)]
    arr = np.zeros((spp, h, w), dtype=dt)
    for ch in range(spp):
        for y in range(h):
            for x in range(w):
                arr[ch, y, x] = fn(x, y, ch)
    planes = [arr[ch] for ch in range(spp)] if planar == 2 else \
        [arr.transpose(1, 2, 0)]
    chunks = []
    for p in planes:
        if tile is None:
            chunks.append(np.ascontiguousarray(p).tobytes())
            continue
        tw, th = tile
        for ty in range(0, h, th):
            for tx in range(0, w, tw):
                t = np.zeros((th, tw) + p.shape[2:], dtype=dt)
                part = p[ty:ty + th, tx:tx + tw]
                t[:part.shape[0], :part.shape[1]] = part
                chunks.append(t.tobytes())
    body = b"".join(chunks)
    if photo is None:
        photo = 2 if spp >= 3 else 1

    def layout(data_pos, ifd_pos):
        offs = []
        for c in chunks:
            offs.append(data_pos)
            data_pos += len(c)
        tags = [(256, 4, [w]), (257, 4, [h]), (258, 3, [bps] * spp),
                (259, 3, [1]), (262, 3, [photo]), (277, 3, [spp]),
                (284, 3, [planar]), (339, 3, [fmt] * spp)]
        sizes = [len(c) for c in chunks]
        if tile is None:
            tags += [(273, 4, offs), (278, 4, [h]), (279, 4, sizes)]
        else:
            tags += [(322, 4, [tile[0]]), (323, 4, [tile[1]]),
                     (324, 4, offs), (325, 4, sizes)]
        if spp in (2, 4):
            tags.append((338, 3, [2]))  # unassociated alpha
        tags.sort()
        extra_pos = ifd_pos + 2 + 12 * len(tags) + 4
        ifd, extra = b"", b""
        for tag, typ, vals in tags:
            packed = b"".join(struct.pack("<H" if typ == 3 else "<I", v)
                              for v in vals)
            if len(packed) <= 4:
                field = packed + b"\0" * (4 - len(packed))
            else:
                field = struct.pack("<I", extra_pos + len(extra))
                extra += packed
            ifd += struct.pack("<HHI", tag, typ, len(vals)) + field
        return struct.pack("<H", len(tags)) + ifd + b"\0\0\0\0" + extra

    if ifd_first:
        # Directory at offset 8, pixel data after it: a cut file keeps its
        # header and loses pixels.
        n = len(layout(0, 8))
        data = b"II*\0" + struct.pack("<I", 8) + layout(8 + n, 8) + body
    else:
        pos = 8 + len(body)
        ifd_pos = pos + (pos & 1)
        data = b"II*\0" + struct.pack("<I", ifd_pos) + body
        data += b"\0" * (ifd_pos - pos) + layout(8, ifd_pos)
    save(name, data)


# ---- PIL-made JPEG and BMP ---------------------------------------------

def pil_image(mode, w, h, fn, nch):
    arr = np.zeros((h, w, nch), dtype=np.uint8)
    for y in range(h):
        for x in range(w):
            for ch in range(nch):
                arr[y, x, ch] = fn(x, y, ch)
    return Image.fromarray(arr[:, :, 0] if nch == 1 else arr, mode)


def save_pil(name, img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    save(name, buf.getvalue())


def save(name, data):
    with open(os.path.join(IMG, name), "wb") as f:
        f.write(data)


def make_images():
    os.makedirs(IMG, exist_ok=True)
    p8 = lambda x, y, ch: pat(x, y, ch, 255)
    # PNG: every colour type and bit depth.
    write_png("g8.png", 7, 5, 8, 0, 1, p8)
    g16 = [0, 1, 257, 65535, 32768, 12345, 65534, 256]
    write_png("g16.png", 4, 2, 16, 0, 1, lambda x, y, ch: g16[y * 4 + x])
    write_png("rgb16.png", 3, 2, 16, 2, 3, pat16)
    write_png("g8_adam7.png", 11, 9, 8, 0, 1, p8, interlace=True)
    write_png("rgb16_adam7.png", 10, 9, 16, 2, 3, pat16, interlace=True)
    write_png("rgb8.png", 5, 4, 8, 2, 3, p8)
    write_png("ga8.png", 5, 3, 8, 4, 2,
              lambda x, y, ch: p8(x, y, 0) if ch == 0 else 7 * x)
    write_png("ga16.png", 3, 3, 16, 4, 2,
              lambda x, y, ch: pat16(x, y, 0) if ch == 0 else 1)
    write_png("rgba8.png", 4, 3, 8, 6, 4,
              lambda x, y, ch: p8(x, y, ch) if ch < 3 else 100)
    for d in (1, 2, 4):
        write_png("g%d.png" % d, 9, 3, d, 0, 1,
                  lambda x, y, ch, d=d: pat(x, y, 0, (1 << d) - 1))
    pal = [(255, 0, 0), (0, 128, 255), (10, 20, 30), (200, 200, 7)]
    write_png("pal8_trns.png", 6, 4, 8, 3, 1,
              lambda x, y, ch: (x + y) % 4, plte=pal, trns=b"\x00\x80")
    write_png("pal2.png", 5, 2, 2, 3, 1,
              lambda x, y, ch: (x + 2 * y) % 4, plte=pal)
    gray_pal = [(v, v, v) for v in (0, 17, 34, 51, 255)]
    write_png("pal4_gray.png", 7, 3, 4, 3, 1,
              lambda x, y, ch: (x + y) % 5, plte=gray_pal)
    # IHDR of 100000 x 100000 and no pixel data: must hit the pixel limit.
    huge = b"\x89PNG\r\n\x1a\n" + chunk(
        b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0))
    save("huge.png", huge + chunk(b"IEND", b""))

    # JPEG: smooth pattern, 4:4:4, high quality.
    g = pil_image("L", 16, 16, smooth, 1)
    c = pil_image("RGB", 16, 16, smooth, 3)
    save_pil("gray_base.jpg", g, "JPEG", quality=95)
    save_pil("gray_prog.jpg", g, "JPEG", quality=95, progressive=True)
    save_pil("rgb_base.jpg", c, "JPEG", quality=95, subsampling=0)
    save_pil("rgb_prog.jpg", c, "JPEG", quality=95, subsampling=0,
             progressive=True)
    save_pil("cmyk.jpg", c.convert("CMYK"), "JPEG", quality=95)

    # TIFF: 8/16-bit integer and 32-bit float, 1/2/3/4 samples, both plane
    # layouts, strips and tiles.
    write_tiff("g8.tif", 7, 5, 1, 8, 1, 1, p8)
    write_tiff("g16.tif", 4, 3, 1, 16, 1, 1, pat16)
    write_tiff("f32.tif", 6, 4, 1, 32, 3, 1, fpat)
    write_tiff("rgb16_ifd_first.tif", 9, 7, 3, 16, 1, 1, pat16,
               ifd_first=True)
    write_tiff("rgb16_sep.tif", 5, 3, 3, 16, 1, 2, pat16)
    write_tiff("rgba8.tif", 4, 3, 4, 8, 1, 1, p8)
    write_tiff("ga8_sep.tif", 4, 3, 2, 8, 1, 2, p8)
    write_tiff("f32rgb_sep.tif", 5, 4, 3, 32, 3, 2, fpat)
    write_tiff("rgb8_tiled.tif", 20, 18, 3, 8, 1, 1, p8, tile=(16, 16))
    write_tiff("f32_tiled_sep.tif", 20, 18, 3, 32, 3, 2, fpat,
               tile=(16, 16))
    # PIL's deflate-compressed TIFF exercises libtiff's codecs.
    save_pil("g8_deflate.tif", pil_image("L", 7, 5, p8, 1), "TIFF",
             compression="tiff_adobe_deflate")

    # BMP: 8-bit palette, 24-bit, 32-bit.
    save_pil("p8.bmp", pil_image("L", 7, 5, p8, 1), "BMP")
    save_pil("rgb24.bmp", pil_image("RGB", 7, 5, p8, 3), "BMP")
    save_pil("rgba32.bmp", pil_image("RGBA", 7, 5, p8, 4), "BMP")


# ---- resize references -------------------------------------------------

def make_resize_refs():
    """Text file: per case a header line
         case <c> <in_h> <in_w> <out_h> <out_w> <mode> <n_in> <n_out>
       then n_in input values, then n_out lines "<flat index> <value>"
       (every output value, or every 97th for big outputs)."""
    g = torch.Generator().manual_seed(7)
    cases = [(1, 5, 7, 9, 13), (2, 9, 13, 6, 4), (1, 23, 37, 256, 256),
             (3, 8, 8, 16, 16), (1, 6, 10, 3, 5), (1, 4, 4, 4, 4),
             (1, 5, 7, 10, 14), (1, 64, 48, 7, 9)]
    lines = []
    for c, ih, iw, oh, ow in cases:
        x = torch.rand((1, c, ih, iw), generator=g, dtype=torch.float32)
        for mode in ("bilinear", "nearest"):
            kw = {"align_corners": False} if mode == "bilinear" else {}
            y = F.interpolate(x, size=(oh, ow), mode=mode, **kw)
            flat = y.flatten()
            step = 97 if flat.numel() > 5000 else 1
            idx = list(range(0, flat.numel(), step))
            lines.append("case %d %d %d %d %d %s %d %d" % (
                c, ih, iw, oh, ow, mode, x.numel(), len(idx)))
            lines += ["%.9g" % v for v in x.flatten().tolist()]
            lines += ["%d %.9g" % (i, flat[i].item()) for i in idx]
    with open(os.path.join(ROOT, "tests", "data", "resize_refs.txt"),
              "w") as f:
        f.write("\n".join(lines) + "\n")


def make_corpus():
    os.makedirs(CORPUS, exist_ok=True)
    for name in sorted(os.listdir(IMG)):
        path = os.path.join(IMG, name)
        if os.path.getsize(path) <= 2048 and name != "huge.png":
            shutil.copy(path, os.path.join(CORPUS, "seed_" + name))


if __name__ == "__main__":
    make_images()
    make_resize_refs()
    make_corpus()
