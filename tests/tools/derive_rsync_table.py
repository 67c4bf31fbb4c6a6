#!/usr/bin/python3
"""Derives RsyncSum64's byte table from jigdo-file's own output.

A template's DESC entries of types 6 and 9 carry the RsyncSum64 of each
file's first blockLen bytes. The sum is sumLo | sumHi << 32 with, over the
bytes b_0 .. b_{n-1}:
    sumLo = sum T[b_i]            sumHi = sum (n - i) * T[b_i]   (mod 2**32)
where T is a fixed table of 256 words. For a file whose first n bytes are
all x, sumLo = n * T[x]; with n odd, n is invertible mod 2**32, so T[x]
follows from one template entry. sumHi is checked against the same T.

This makes one template with `jigdo-file make-template --min-length=1025`
over 256 such files and prints core/rsync_sum_table.inc. It exists so that
the table in the source can be re-derived and checked by anyone who has
jigdo-file; tests (core/rsync_sum_test, the integration test of image-file
scans) check the result against jigdo-file and xorriso templates.

usage: derive_rsync_table.py WORKDIR > core/rsync_sum_table.inc
"""
import hashlib
import os
import random
import struct
import subprocess
import sys

N = 1025  # odd: invertible mod 2**32
MASK = 0xFFFFFFFF


def desc_entries(template):
    data = open(template, "rb").read()
    desc_len = int.from_bytes(data[-6:], "little")
    desc = data[len(data) - desc_len:]
    assert desc[:4] == b"DESC", "no DESC part at the end of " + template
    pos, end = 10, desc_len - 6
    sizes = {1: 22, 2: 6, 3: 22, 5: 26, 6: 30, 8: 42, 9: 46}
    while pos < end:
        kind = desc[pos]
        body = desc[pos + 1:pos + 1 + sizes[kind]]
        pos += 1 + sizes[kind]
        yield kind, body


def main():
    work = sys.argv[1]
    files = os.path.join(work, "files")
    os.makedirs(files, exist_ok=True)
    rng = random.Random(1025)
    by_md5 = {}
    image = bytearray()
    for x in range(256):
        body = bytes([x]) * N + bytes(rng.randrange(256) for _ in range(31))
        with open(os.path.join(files, "f%03d" % x), "wb") as f:
            f.write(body)
        by_md5[hashlib.md5(body).digest()] = x
        image += bytes(rng.randrange(256) for _ in range(512)) + body
    img = os.path.join(work, "table.img")
    with open(img, "wb") as f:
        f.write(image)
    for name in ("table.jigdo", "table.template"):
        if os.path.exists(os.path.join(work, name)):
            os.unlink(os.path.join(work, name))
    subprocess.run(["jigdo-file", "make-template", "--force", "--no-cache", "--min-length=%d" % N,
                    "--image=" + img, "--jigdo=" + os.path.join(work, "table.jigdo"),
                    "--template=" + os.path.join(work, "table.template"), files + "/"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    inverse = pow(N, -1, 1 << 32)
    table = [None] * 256
    for kind, body in desc_entries(os.path.join(work, "table.template")):
        if kind == 5:
            assert struct.unpack("<I", body[22:26])[0] == N, "blockLen is not --min-length"
        if kind != 6:
            continue
        lo, hi = struct.unpack("<II", body[6:14])
        x = by_md5[body[14:30]]
        t = (lo * inverse) & MASK
        assert hi == (N * (N + 1) // 2 * t) & MASK, "sumHi disagrees for byte %d" % x
        table[x] = t
    missing = [x for x in range(256) if table[x] is None]
    assert not missing, "jigdo-file did not match the files for bytes %s" % missing
    print("// RsyncSum64's byte table, derived from jigdo-file's templates by")
    print("// tests/tools/derive_rsync_table.py. Do not edit.")
    for row in range(0, 256, 4):
        print("    " + " ".join("0x%08x," % t for t in table[row:row + 4]))


if __name__ == "__main__":
    main()
