"""jigdoofus-cat SOURCE [IMAGE] assembles an image to stdout."""

import subprocess

import pytest

from itlib import mounting
from itlib.checks import sha256_file


def cat_sha256(args, tmp_path):
    out = tmp_path / "out.img"
    with open(out, "wb") as f:
        p = subprocess.run([mounting.cat_binary(), *map(str, args)], stdout=f,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 0, f"jigdoofus-cat {' '.join(map(str, args))}: {p.stderr}"
    return sha256_file(out)


def test_cat_single_image(corpus, tmp_path):
    v = corpus.variant("xorriso-sha256-bzip2")
    got = cat_sha256(["--offline", "--cache-dir", tmp_path / "cache", *v.local_args(), v.jigdo],
                     tmp_path)
    assert got == sha256_file(v.images[0].iso)


@pytest.mark.parametrize("image", ["A.iso", "B.iso"])
def test_cat_named_image_of_merged_jigdo(corpus, tmp_path, image):
    v = corpus.variant("jigdo-file-merged")
    iso = next(i.iso for i in v.images if i.name == image)
    got = cat_sha256(["--offline", "--cache-dir", tmp_path / "cache", *v.local_args(),
                      v.jigdo, image], tmp_path)
    assert got == sha256_file(iso)


def test_cat_missing_file_fails(corpus, tmp_path):
    v = corpus.variant("xorriso-md5-gzip")
    empty = tmp_path / "empty"
    empty.mkdir()
    p = subprocess.run([mounting.cat_binary(), "--offline", "--cache-dir", str(tmp_path / "c"),
                        "--local", f"Debian={empty}", str(v.jigdo)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode != 0
    assert p.stderr.strip(), "no error message"
