"""Builds the integration-test corpus: a tree of package-like files and the
images made from it by the real producers (xorriso, genisoimage, jigdo-file,
mksquashfs), each with its .jigdo and .template.

Everything is deterministic (seeded) and lives in one directory that several
pytest processes share (ctest runs test files in parallel): the first process
builds it under a lock, the others reuse it. The directory name carries a hash
of this file, so editing the recipe rebuilds.

Standalone use (to debug the recipe):  /usr/bin/python3 -m itlib.corpus DIR
"""

import fcntl
import gzip
import hashlib
import math
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

LABEL = "Debian"
SEED = 20240611
MIN_FILE_SIZE = 1024
ZERO_AREA = 64 * 1024 * 1024
UNREACHABLE_MIRROR = "http://127.0.0.1:9/debian/"
# xorriso writes Filename=stdio:<name> (its drive address of the output
# file). CONTRACT.md: the mount names a file by its Filename=, so the prefix
# stays; change this to "" if the mount starts stripping it.
XORRISO_FILENAME_PREFIX = "stdio:"

REQUIRED_TOOLS = ["xorriso", "genisoimage", "jigdo-file", "mksquashfs",
                  "fusermount3", "mount.fuse3", "losetup"]


@dataclass
class Image:
    name: str        # the file name the mount must show
    iso: Path        # the original image, for comparison


@dataclass
class Variant:
    id: str                      # pytest id
    jigdo: Path                  # the SOURCE to mount
    images: list                 # [Image]
    local: dict = field(default_factory=dict)   # --local LABEL -> DIR
    producer: str = ""

    def local_args(self):
        args = []
        for label, d in self.local.items():
            args += ["--local", f"{label}={d}"]
        return args


def check_tools():
    """Fails loudly (never skips) when a producer is missing."""
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None
               and not Path("/usr/sbin", t).exists() and not Path("/sbin", t).exists()]
    if missing:
        raise RuntimeError(
            "integration tests need these tools: " + " ".join(missing) +
            " (run .ci/install-deps as root)")


def run(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, errors="replace")
    if p.returncode != 0:
        raise RuntimeError(f"fixture command failed ({p.returncode}): {' '.join(map(str, cmd))}\n"
                           + p.stdout[-3000:])
    return p.stdout


# ---------------------------------------------------------------- the tree

def _pkg_name(rng, i):
    stems = ["libfoo", "bar-utils", "g++-12", "python3-baz", "zlib1g", "libc6",
             "perl-base", "fonts-x", "qt6-base", "libstdc++6", "xserver", "nano"]
    stem = rng.choice(stems) + str(i)
    ver = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}"
    if i % 5 == 0:
        ver += "~rc1"
    if i % 3 == 0:
        ver += "+dfsg"
    ver += f"-{rng.randint(1, 9)}"
    arch = rng.choice(["amd64", "all", "arm64"])
    name = f"{stem}_{ver}_{arch}.deb"
    if i % 7 == 3:
        name = name.replace("_", " ", 1)  # a space in the name
    return stem, name


def make_tree(root: Path, big=True):
    """A Debian-like pool. Returns {relpath: size}."""
    rng = random.Random(SEED)
    files = {}

    def put(rel, data):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        files[rel] = len(data)

    for i in range(40):
        stem, name = _pkg_name(rng, i)
        size = int(math.exp(rng.uniform(math.log(1024), math.log(200 * 1024))))
        if i == 4:
            size = 32 * 2048          # sector multiple: slices back to back
        if i == 5:
            size = MIN_FILE_SIZE      # exactly the threshold
        put(f"pool/main/{stem[0]}/{stem}/{name}", rng.randbytes(size))
    if big:
        put("pool/main/l/linux/linux-image-6.1+big~1_amd64.deb", rng.randbytes(1_234_567))
        put("pool/main/f/firmware/firmware nonfree_20230625-2~bpo_all.deb",
            rng.randbytes(2_765_433))
    put("pool/main/t/tiny/tiny_0.1_all.deb", rng.randbytes(700))  # < 1 KiB: stays in template
    # duplicates: the same content twice in the image
    srcs = sorted(r for r, s in files.items() if 20_000 < s < 200_000)[:2]
    for n, rel in enumerate(srcs):
        put(f"pool/contrib/d/dup{n}/copy {n}+of_{Path(rel).name}", (root / rel).read_bytes())
    return files


def write_checksum_list(tree: Path, out: Path, algo):
    lines = []
    for p in sorted(tree.rglob("*")):
        if p.is_file():
            h = hashlib.new(algo, p.read_bytes()).hexdigest()
            lines.append(f"{h}  {p.stat().st_size:12d}  {p.resolve()}\n")
    out.write_text("".join(lines))


# ---------------------------------------------------------------- producers

def xorriso(vdir: Path, tree: Path, lists: dict, algo, compress, extra=(), sources=None,
            name=None):
    vdir.mkdir(parents=True, exist_ok=True)
    name = name or vdir.name
    cmd = ["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "JIGDOOFUS_IT",
           "-o", f"{name}.iso",
           "-jigdo-jigdo", f"{name}.jigdo", "-jigdo-template", f"{name}.template",
           "-jigdo-map", f"{LABEL}={tree.resolve()}/",
           "-jigdo-min-file-size", str(MIN_FILE_SIZE),
           "-jigdo-template-compress", compress]
    if algo == "sha256":
        cmd += ["-checksum-list", str(lists["sha256"]), "-jigdo-checksum-algorithm", "sha256"]
    else:
        cmd += ["-md5-list", str(lists["md5"])]
    cmd += list(extra)
    cmd += sources or [str(tree.resolve())]
    run(cmd, cwd=vdir)
    return vdir / f"{name}.jigdo", Image(f"{XORRISO_FILENAME_PREFIX}{name}.iso",
                                         vdir / f"{name}.iso")


def genisoimage(vdir: Path, tree: Path, lists: dict):
    vdir.mkdir(parents=True, exist_ok=True)
    name = vdir.name
    run(["genisoimage", "-quiet", "-R", "-J", "-o", f"{name}.iso",
         "-jigdo-jigdo", f"{name}.jigdo", "-jigdo-template", f"{name}.template",
         "-jigdo-map", f"{LABEL}={tree.resolve()}/", "-md5-list", str(lists["md5"]),
         "-jigdo-min-file-size", str(MIN_FILE_SIZE), str(tree.resolve())], cwd=vdir)
    return vdir / f"{name}.jigdo", Image(f"{name}.iso", vdir / f"{name}.iso")


def jigdo_make_template(vdir: Path, image: Path, tree: Path, name, sha256=False,
                        bzip2=False, merge=None):
    """jigdo-file make-template for an existing image; the image is
    hard-linked into vdir under `name` so Filename= is that name."""
    vdir.mkdir(parents=True, exist_ok=True)
    iso = vdir / name
    if not iso.exists():
        os.link(image, iso)
    stem = Path(name).stem
    cmd = ["jigdo-file", "make-template", "--no-cache", "--force",
           f"--image={name}", f"--jigdo={stem}.jigdo", f"--template={stem}.template",
           f"--label={LABEL}={tree.resolve()}", f"--min-length={MIN_FILE_SIZE}",
           # a server that is never reachable (tests run --offline); without
           # --uri jigdo-file writes a file: URL of the build directory
           f"--uri={LABEL}={UNREACHABLE_MIRROR}",
           "--report=quiet"]
    if sha256:
        cmd += ["-C", "sha256"]
    if bzip2:
        cmd += ["--bzip2"]
    if merge:
        cmd += [f"--merge={merge}"]
    cmd += [f"{tree.resolve()}//"]
    run(cmd, cwd=vdir)
    return vdir / f"{stem}.jigdo", Image(name, iso)


def squashfs(vdir: Path, tree: Path):
    vdir.mkdir(parents=True, exist_ok=True)
    img = vdir / "sq.img"
    # uncompressed, no fragments, no dedup: every file is contiguous in the image
    run(["mksquashfs", str(tree), str(img), "-noI", "-noD", "-noF", "-noX",
         "-no-fragments", "-no-duplicates", "-noappend", "-quiet", "-no-progress",
         "-all-root", "-mkfs-time", "0"])
    return jigdo_make_template(vdir, img, tree, "sq.img")


def zero_padded(vdir: Path, tree: Path, lists: dict):
    """A 64 MiB file of zeros inside the ISO, excluded from the jigdo: the
    template carries it as (highly compressed) literal data."""
    vdir.mkdir(parents=True, exist_ok=True)
    zeros = vdir / "zeros.bin"
    with open(zeros, "wb") as f:
        f.truncate(ZERO_AREA)  # sparse on disk
    return xorriso(vdir, tree, lists, "sha256", "gzip",
                   extra=["-jigdo-exclude", "zeros.bin", "-graft-points"],
                   sources=[f"/={tree.resolve()}", f"/zz/zeros.bin={zeros}"])


# ---------------------------------------------------------------- the whole corpus

def build(root: Path):
    """Runs every producer into `root`. The names must match build_index()."""
    check_tools()
    tree = root / "tree"
    make_tree(tree)
    lists = {"sha256": root / "sha256.list", "md5": root / "md5.list"}
    write_checksum_list(tree, lists["sha256"], "sha256")
    write_checksum_list(tree, lists["md5"], "md5")
    for algo in ("sha256", "md5"):
        for comp in ("gzip", "bzip2"):
            xorriso(root / f"xorriso-{algo}-{comp}", tree, lists, algo, comp)
    genisoimage(root / "genisoimage-md5", tree, lists)

    # jigdo-file on the plain ISO of the first xorriso variant
    base_iso = root / "xorriso-sha256-gzip" / "xorriso-sha256-gzip.iso"
    for sha in ("md5", "sha256"):
        for comp in ("gzip", "bzip2"):
            vid = f"jigdo-file-{sha}-{comp}"
            jigdo_make_template(root / vid, base_iso, tree, f"{vid}.iso",
                                sha256=(sha == "sha256"), bzip2=(comp == "bzip2"))

    # merged: image A (a subset of the tree), then B with --merge=A.jigdo
    mdir = root / "merged"
    sub = root / "merged-src"
    sub.mkdir()
    run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-o", str(sub / "A.iso"),
         str((tree / "pool" / "main").resolve())])
    ja, _ = jigdo_make_template(mdir, sub / "A.iso", tree, "A.iso")
    jigdo_make_template(mdir, base_iso, tree, "B.iso", sha256=True, merge=ja.name)

    squashfs(root / "squashfs", tree)
    zero_padded(root / "zero-padded", tree, lists)


def _digest_of_recipe():
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def default_root():
    base = os.environ.get("JIGDOOFUS_IT_FIXTURES") or f"/tmp/jigdoofus-it-{os.getuid()}"
    return Path(base) / f"corpus-{_digest_of_recipe()}"


def ensure(root: Path = None):
    """Builds the corpus once (across processes) and returns its variants."""
    root = Path(root or default_root())
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(str(root) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / "DONE"
        if not done.exists():
            if root.exists():
                shutil.rmtree(root)
            tmp = Path(f"{root}.tmp{os.getpid()}")
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
            # The .jigdo files hold only Label:relative paths (the checksum
            # lists with absolute paths are build inputs), so the finished
            # corpus can be moved into place.
            build(tmp)
            (tmp / "DONE").write_text("ok\n")
            os.rename(tmp, root)
            # corpora of older recipes are stale
            for old in root.parent.glob("corpus-*"):
                if old.is_dir() and old.name != root.name and ".tmp" not in old.name:
                    shutil.rmtree(old, ignore_errors=True)
    return build_index(root)


def build_index(root: Path):
    """The variant list of an existing corpus (no tool runs)."""
    tree = root / "tree"
    loc = {LABEL: str(tree)}
    v = []
    for algo in ("sha256", "md5"):
        for comp in ("gzip", "bzip2"):
            vid = f"xorriso-{algo}-{comp}"
            v.append(Variant(vid, root / vid / f"{vid}.jigdo",
                             [Image(f"{XORRISO_FILENAME_PREFIX}{vid}.iso",
                                    root / vid / f"{vid}.iso")], loc, "xorriso"))
    vid = "genisoimage-md5"
    v.append(Variant(vid, root / vid / f"{vid}.jigdo",
                     [Image(f"{vid}.iso", root / vid / f"{vid}.iso")], loc, "genisoimage"))
    for sha in ("md5", "sha256"):
        for comp in ("gzip", "bzip2"):
            vid = f"jigdo-file-{sha}-{comp}"
            v.append(Variant(vid, root / vid / f"{vid}.jigdo",
                             [Image(f"{vid}.iso", root / vid / f"{vid}.iso")], loc, "jigdo-file"))
    m = root / "merged"
    v.append(Variant("jigdo-file-merged", m / "B.jigdo",
                     [Image("A.iso", m / "A.iso"), Image("B.iso", m / "B.iso")], loc,
                     "jigdo-file"))
    s = root / "squashfs"
    v.append(Variant("squashfs", s / "sq.jigdo", [Image("sq.img", s / "sq.img")], loc,
                     "mksquashfs+jigdo-file"))
    z = root / "zero-padded"
    v.append(Variant("zero-padded", z / "zero-padded.jigdo",
                     [Image(f"{XORRISO_FILENAME_PREFIX}zero-padded.iso",
                            z / "zero-padded.iso")], loc, "xorriso"))
    return v


# the pytest parameter list (build_index touches no file)
VARIANT_IDS = [v.id for v in build_index(Path("/nonexistent"))]


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else default_root()
    for var in ensure(out):
        print(var.id, var.jigdo, [(i.name, i.iso.stat().st_size) for i in var.images])

