#!/usr/bin/python3
"""Writes samples [START, START+COUNT) of Fashion-MNIST's training split as an IDX folder.

A device's own data for sfn-client --data in tests: OUT/train-images-idx3-ubyte and
OUT/train-labels-idx1-ubyte (uncompressed, or .gz with --gzip), the layout the dataset
itself ships. --size S pads each 28x28 image with zeros to SxS (centred), so that a test can
offer the server images that do not fit its SuperNet.

Usage: write_idx_subset.py OUT START COUNT [--size S] [--gzip] [--source DIR]
"""
import argparse
import gzip
import os
import struct
import sys

IMAGES = "train-images-idx3-ubyte.gz"
LABELS = "train-labels-idx1-ubyte.gz"
IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


def read_header(f, path, magic, dims):
    raw = f.read(4 + 4 * dims)
    if len(raw) != 4 + 4 * dims:
        sys.exit(f"{path}: truncated IDX header")
    values = struct.unpack(">" + "I" * (1 + dims), raw)
    if values[0] != magic:
        sys.exit(f"{path}: IDX magic {values[0]:#010x}, expected {magic:#010x}")
    return values[1:]


def read_range(path, magic, dims, start, count):
    """Returns (shape of one sample, bytes of samples [start, start+count))."""
    with gzip.open(path, "rb") as f:
        shape = read_header(f, path, magic, dims)
        if start + count > shape[0]:
            sys.exit(f"{path}: holds {shape[0]} samples, asked for [{start}, {start + count})")
        per_sample = 1
        for d in shape[1:]:
            per_sample *= d
        f.seek(f.tell() + start * per_sample)  # gzip seeks forward by decompressing
        data = f.read(count * per_sample)
        if len(data) != count * per_sample:
            sys.exit(f"{path}: truncated data")
        return shape[1:], data


def pad(images, count, side, size):
    if size < side:
        sys.exit(f"--size {size} is smaller than the images' {side}")
    before = (size - side) // 2
    out = bytearray(count * size * size)
    for i in range(count):
        for row in range(side):
            src = (i * side + row) * side
            dst = (i * size + before + row) * size + before
            out[dst:dst + side] = images[src:src + side]
    return bytes(out)


def write(path, compress, header, data):
    opener = gzip.open if compress else open
    with opener(path + (".gz" if compress else ""), "wb") as f:
        f.write(header)
        f.write(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("start", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("--size", type=int, default=0, help="pad the images to SxS")
    ap.add_argument("--gzip", action="store_true", help="write .gz files")
    ap.add_argument("--source", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    if a.start < 0 or a.count <= 0:
        sys.exit(f"START must be >= 0 and COUNT > 0 (got {a.start}, {a.count})")
    (rows, cols), images = read_range(os.path.join(a.source, IMAGES), IMAGE_MAGIC, 3,
                                      a.start, a.count)
    _, labels = read_range(os.path.join(a.source, LABELS), LABEL_MAGIC, 1, a.start, a.count)
    if rows != cols:
        sys.exit(f"{IMAGES}: images are {rows}x{cols}, expected square ones")
    if a.size:
        images = pad(images, a.count, rows, a.size)
        rows = cols = a.size
    os.makedirs(a.out, exist_ok=True)
    write(os.path.join(a.out, "train-images-idx3-ubyte"), a.gzip,
          struct.pack(">IIII", IMAGE_MAGIC, a.count, rows, cols), images)
    write(os.path.join(a.out, "train-labels-idx1-ubyte"), a.gzip,
          struct.pack(">II", LABEL_MAGIC, a.count), labels)


if __name__ == "__main__":
    main()
