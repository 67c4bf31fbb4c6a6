"""Bad input: each case must exit non-zero within 10 s, print exactly ONE
line on stderr naming the offending file (or option / mountpoint), and
leave no mount behind."""

import base64
from collections import Counter
import gzip
import hashlib
import random
import os
import re
import shutil
import subprocess

import pytest

from itlib import mounting

VID = "xorriso-sha256-gzip"
TIMEOUT_S = 10


def good_copy(corpus, d, name=VID):
    """A copy of one variant's .jigdo and .template in directory d."""
    v = corpus.variant(VID)
    d.mkdir(parents=True, exist_ok=True)
    j = d / f"{name}.jigdo"
    t = d / f"{VID}.template"
    shutil.copyfile(v.jigdo, j)
    shutil.copyfile(v.jigdo.with_suffix(".template"), t)
    return j, t


def drop_template_sums(jigdo):
    """Without Template-*Sum= only the template's own structure can tell."""
    text = jigdo.read_text()
    jigdo.write_text(re.sub(r"^Template-(MD5|SHA256)Sum=.*\n", "", text, flags=re.M))


def case_missing_jigdo(corpus, tmp):
    return [tmp / "no-such-file.jigdo"], ["no-such-file.jigdo"]


def case_garbage_jigdo(corpus, tmp):
    j = tmp / "garbage.jigdo"
    j.write_bytes(random.Random(3).randbytes(8192))
    return [j], ["garbage.jigdo"]


def case_truncated_gzip_jigdo(corpus, tmp):
    j, _ = good_copy(corpus, tmp)
    z = gzip.compress(j.read_bytes())
    bad = tmp / "truncated.jigdo"
    bad.write_bytes(z[:len(z) // 2])
    return [bad], ["truncated.jigdo"]


def case_jigdo_without_image(corpus, tmp):
    j, _ = good_copy(corpus, tmp)
    text = j.read_text()
    text = re.sub(r"\[Image\]\n(?:(?!\[).*\n)*", "", text)
    assert "[Image]" not in text and "[Parts]" in text
    j.write_text(text)
    return [j], [j.name]


def case_missing_template(corpus, tmp):
    j, t = good_copy(corpus, tmp)
    t.unlink()
    return [j], [t.name]


def case_template_is_a_fifo(corpus, tmp):
    j, t = good_copy(corpus, tmp)
    t.unlink()
    os.mkfifo(t)           # opening it for reading would block forever
    return [j], ["not a regular file"]


def case_include_is_a_fifo(corpus, tmp):
    j, _ = good_copy(corpus, tmp)
    fifo = j.parent / "inc.jigdo"
    os.mkfifo(fifo)
    j.write_text(j.read_text() + "[Include inc.jigdo]\n")
    return [j], ["inc.jigdo"]


def case_include_is_a_huge_sparse_file(corpus, tmp):
    j, _ = good_copy(corpus, tmp)
    big = j.parent / "big.jigdo"
    with open(big, "wb") as f:
        f.truncate(1 << 40)  # 1 TiB of holes: reading it whole would exhaust memory
    j.write_text(j.read_text() + "[Include big.jigdo]\n")
    return [j], ["more than the"]


def case_bzip2_part_claims_2_gib(corpus, tmp):
    """A bzip2 'bomb': a BZIP part that says it holds 2 GiB."""
    j, t = good_copy(corpus, tmp)
    shutil.copyfile(corpus.variant("xorriso-sha256-bzip2").jigdo.with_suffix(".template"), t)
    drop_template_sums(j)
    data = bytearray(t.read_bytes())
    at = data.find(b"BZIP")
    assert at >= 0
    data[at + 10:at + 16] = (2 << 30).to_bytes(6, "little")
    t.write_bytes(bytes(data))
    return [j], ["jigdoofus decodes in one bzip2 part"]


def case_truncated_template(corpus, tmp):
    j, t = good_copy(corpus, tmp)
    drop_template_sums(j)
    data = t.read_bytes()
    t.write_bytes(data[:len(data) // 2])
    return [j], [t.name]


def case_corrupted_desc(corpus, tmp):
    j, t = good_copy(corpus, tmp)
    drop_template_sums(j)
    data = bytearray(t.read_bytes())
    for i in range(len(data) - 100, len(data)):
        data[i] ^= 0xFF
    t.write_bytes(bytes(data))
    return [j], [t.name]


def case_template_checksum_mismatch(corpus, tmp):
    j, t = good_copy(corpus, tmp)
    other = base64.urlsafe_b64encode(hashlib.sha256(b"not the template").digest())
    other = other.decode().rstrip("=")
    text, n = re.subn(r"^Template-SHA256Sum=.*$", f"Template-SHA256Sum={other}", j.read_text(),
                      flags=re.M)
    assert n == 1
    j.write_text(text)
    return [j], [t.name]


def case_filename_with_slash(corpus, tmp):
    j, _ = good_copy(corpus, tmp)
    j.write_text(re.sub(r"^Filename=.*$", "Filename=sub/dir.iso", j.read_text(), flags=re.M))
    return [j], [j.name]


def case_filename_dotdot(corpus, tmp):
    j, _ = good_copy(corpus, tmp)
    j.write_text(re.sub(r"^Filename=.*$", "Filename=..", j.read_text(), flags=re.M))
    return [j], [j.name]


def case_filename_too_long(corpus, tmp):
    j, _ = good_copy(corpus, tmp)
    j.write_text(re.sub(r"^Filename=.*$", "Filename=" + "x" * 252 + ".iso", j.read_text(), flags=re.M))
    return [j], ["256 bytes", "at most 255"]


def case_filename_is_the_status_file(corpus, tmp):
    j, _ = good_copy(corpus, tmp)
    j.write_text(re.sub(r"^Filename=.*$", "Filename=.jigdoofus-status", j.read_text(), flags=re.M))
    return [j], ["status file"]


def case_two_images_same_name(corpus, tmp):
    j1, _ = good_copy(corpus, tmp / "one")
    j2, _ = good_copy(corpus, tmp / "two")
    return [j1, j2], [str(j1), str(j2), "one/", "two/"]


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def check_failure(cmd, mountpoint, mentions, tmp):
    before = mounting.mounts_under(mountpoint)
    rc, out, err = mounting.run_captured(cmd, tmp / "logs", TIMEOUT_S)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    after = mounting.mounts_under(mountpoint)
    # clean up a mount the binary wrongly made (maybe stacked on a busy
    # mountpoint, hence the multiset difference), before asserting
    for mp in (Counter(after) - Counter(before)).elements():
        subprocess.run(["umount", "-l", mp])
    assert rc != 0, f"exit 0 for bad input: {' '.join(map(str, cmd))}"
    assert len(lines) == 1, f"want ONE line on stderr, got {len(lines)}:\n{err}"
    assert any(s in lines[0] for s in mentions), \
        f"stderr does not name any of {mentions}: {lines[0]!r}"
    assert after == before, f"mount left behind: {after}"
    print(f"stderr: {lines[0]}")
    return lines[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_source(corpus, tmp_path, case):
    sources, mentions = CASES[case](corpus, tmp_path)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    v = corpus.variant(VID)
    cmd = [mounting.binary(), "--offline", "--cache-dir", str(tmp_path / "cache"),
           *v.local_args(), *map(str, sources), str(mnt)]
    check_failure(cmd, mnt, mentions, tmp_path)


def test_template_mismatch_is_not_called_missing(corpus, tmp_path):
    sources, mentions = case_template_checksum_mismatch(corpus, tmp_path)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    v = corpus.variant(VID)
    cmd = [mounting.binary(), "--offline", "--cache-dir", str(tmp_path / "cache"),
           *v.local_args(), *map(str, sources), str(mnt)]
    line = check_failure(cmd, mnt, mentions, tmp_path)
    assert "does not match" in line and "not found" not in line, line


def test_mountpoint_missing(corpus, tmp_path):
    v = corpus.variant(VID)
    mnt = tmp_path / "no-such-mountpoint"
    cmd = [mounting.binary(), "--offline", "--cache-dir", str(tmp_path / "cache"),
           *v.local_args(), str(v.jigdo), str(mnt)]
    check_failure(cmd, mnt, [mnt.name], tmp_path)


def test_mountpoint_busy(corpus, tmp_path):
    v = corpus.variant(VID)
    mnt = tmp_path / "busy"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "busytmpfs", str(mnt)], check=True)
    try:
        cmd = [mounting.binary(), "--offline", "--cache-dir", str(tmp_path / "cache"),
               *v.local_args(), str(v.jigdo), str(mnt)]
        check_failure(cmd, mnt, [mnt.name], tmp_path)
        assert mounting.fuse_type_of(mnt) == "tmpfs"
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_unknown_option(corpus, tmp_path):
    v = corpus.variant(VID)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cmd = [mounting.binary(), "--no-such-option", str(v.jigdo), str(mnt)]
    check_failure(cmd, mnt, ["no-such-option"], tmp_path)


def test_local_without_equals(corpus, tmp_path):
    v = corpus.variant(VID)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cmd = [mounting.binary(), "--offline", "--local", "Debian", str(v.jigdo), str(mnt)]
    check_failure(cmd, mnt, ["--local", "local"], tmp_path)
