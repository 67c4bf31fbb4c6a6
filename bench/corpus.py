"""bench/corpus.py: builds the benchmark corpora with the real producer.

Two corpora, both cached under the bench directory and rebuilt only when
missing or when this file changed (its SHA256 is part of the directory name):
  - "image": a tree of random files with a Debian-like size spread (many of
    10 KB-1 MB, some of 1-10 MB, a few of 10-100 MB), tiny files under the
    jigdo minimum size and an excluded zero-filled area (literal data in the
    template, like a distribution's boot files and padding), made into an ISO
    plus SHA256 .jigdo/.template by `xorriso -as mkisofs -jigdo-*`.
  - "dvd": ~3,300 files of 0.1-3.5 MB (4.7 GB image), each a distinct random
    4 KiB head and a sparse zero body (truncate), so it costs ~15 MB of disk;
    the ISO goes to /dev/null, only .jigdo/.template are kept. For mount time
    and memory only.
Not thread-safe; called once by bench.py. REQUIRES: xorriso.
"""
import hashlib
import math
import os
import random
import shutil
import subprocess

GENERATOR = hashlib.sha256(open(__file__, "rb").read()).hexdigest()[:12]


def _write_checksum_list(tree, files, out):
    with open(out, "w") as f:
        for path in files:
            h = hashlib.sha256()
            with open(path, "rb") as src:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
            f.write(f"{h.hexdigest()}  {os.path.getsize(path):12d}  {path}\n")


def _xorriso(tree, out_dir, iso, checksum_list, volid):
    cmd = ["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", volid, "-o", iso,
           "-jigdo-jigdo", os.path.join(out_dir, "bench.jigdo"),
           "-jigdo-template", os.path.join(out_dir, "bench.template"),
           "-jigdo-map", f"Debian={tree}/", "-checksum-list", checksum_list,
           "-jigdo-checksum-algorithm", "sha256", "-jigdo-min-file-size", "1024",
           "-jigdo-exclude", "/install/", "-jigdo-exclude", "/boot/",
           "-jigdo-template-compress", "gzip", tree]
    subprocess.run(cmd, check=True)


def _pool_path(tree, i):
    d = os.path.join(tree, "pool", "main", "abcdefghijklmnopqrstuvwxyz"[i % 26], f"pkg{i}")
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, f"pkg{i}_1.{i % 7}+b1~deb12u1_amd64.deb")


def _image_sizes(target, rng):
    """Debian-like spread: ~55% of the bytes in 10 KB-1 MB files, ~20% in 1-10 MB, the rest 10-100 MB."""
    sizes = []
    shares = [(0.55, 10 << 10, 1 << 20), (0.20, 1 << 20, 10 << 20), (0.25, 10 << 20, 100 << 20)]
    for share, lo, hi in shares:
        budget = int(target * share)
        while budget > lo:
            s = min(int(math.exp(rng.uniform(math.log(lo), math.log(hi)))), budget)
            sizes.append(s)
            budget -= s
    rng.shuffle(sizes)
    return sizes


def _literal_extras(tree, rng, zero_mb):
    """What stays literal in the template: boot blobs, small docs, zero padding."""
    os.makedirs(os.path.join(tree, "boot", "grub"), exist_ok=True)
    with open(os.path.join(tree, "boot", "grub", "efi.img"), "wb") as f:
        f.write(rng.randbytes(2 << 20))
    os.makedirs(os.path.join(tree, "install"), exist_ok=True)
    with open(os.path.join(tree, "install", "zeros.img"), "wb") as f:
        f.truncate(zero_mb << 20)
    os.makedirs(os.path.join(tree, "dists", "bookworm", "main"), exist_ok=True)
    for i in range(300):
        with open(os.path.join(tree, "dists", "bookworm", "main", f"Release-{i}"), "w") as f:
            f.write(f"Origin: Debian\nSuite: bookworm\nComponent: main{i}\n" * rng.randint(1, 15))


def build_image_corpus(out, size_mb):
    """A ~size_mb MB tree + ISO + .jigdo/.template in out/ (made fresh)."""
    rng = random.Random(4)
    tree = os.path.join(out, "tree")
    os.makedirs(tree)
    files = []
    for i, size in enumerate(_image_sizes(size_mb << 20, rng)):
        path = _pool_path(tree, i)
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, 8 << 20)
                f.write(rng.randbytes(n))
                left -= n
        files.append(path)
    _literal_extras(tree, rng, max(2, size_mb // 64))
    _write_checksum_list(tree, files, os.path.join(out, "sha256.list"))
    os.makedirs(os.path.join(out, "iso"))
    _xorriso(tree, out, os.path.join(out, "iso", "bench.iso"), os.path.join(out, "sha256.list"),
             "JIGDOOFUS_BENCH")
    return len(files)


def build_dvd_corpus(out, image_mb=4480, count=3300):
    """A DVD-sized (4.7 GB) .jigdo/.template over a sparse tree in out/ (made fresh)."""
    rng = random.Random(5)
    tree = os.path.join(out, "tree")
    os.makedirs(tree)
    mean = (image_mb << 20) // count
    files = []
    for i in range(count):
        size = rng.randint(mean // 16, 2 * mean - mean // 16)
        path = _pool_path(tree, i)
        with open(path, "wb") as f:
            f.write(rng.randbytes(4096))
            f.truncate(size)
        files.append(path)
    _literal_extras(tree, rng, 16)
    _write_checksum_list(tree, files, os.path.join(out, "sha256.list"))
    _xorriso(tree, out, "/dev/null", os.path.join(out, "sha256.list"), "JIGDOOFUS_DVD")
    return len(files)


def ensure(bench_dir, name, builder, *args):
    """out dir of corpus `name` for this generator version; built if missing, old versions removed."""
    tag = f"{name}-{'-'.join(map(str, args))}-{GENERATOR}"
    out = os.path.join(bench_dir, tag)
    if os.path.exists(os.path.join(out, "DONE")):
        return out
    for old in os.listdir(bench_dir) if os.path.isdir(bench_dir) else []:
        if old.startswith(name + "-") and not old.endswith(GENERATOR):
            shutil.rmtree(os.path.join(bench_dir, old), ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    print(f"== building corpus {tag} (once; cached)", flush=True)
    n = builder(out, *args)
    with open(os.path.join(out, "DONE"), "w") as f:
        f.write(f"{n} slices\n")
    return out
