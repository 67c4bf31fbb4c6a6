"""Documents from the network are untrusted: a .jigdo served by a (local)
web server must never make jigdoofus read a local file, and what it keeps
in the cache directory is private.

* Template=file:///SECRET in a .jigdo given by URL: refused with one line,
  nothing of the secret copied anywhere under the cache dir.
* [Include file:///SECRET] in a remote .jigdo, and in a remote include of
  it (taint through includes): refused with one line that does not echo
  the secret's first line.
* A .jigdo given by URL that includes a payload by URL and then the path
  where that payload was saved in the cache dir: refused.
* The cache dir and its document folders are 0700, saved documents 0600;
  a cache dir owned by another user is refused.
* A Filename= with bytes that are not UTF-8 still gives a readable status
  file.
* file: URLs of a local .jigdo (what jigdo-file writes without --uri) are
  read beneath the .jigdo's own directory; a file: server elsewhere is
  named in a mount-time warning and read only with --trust-file-urls.
"""

import gzip
import hashlib
import json
import os
import re
import stat
import subprocess

from itlib import checks, http, mounting

ENV = http.no_proxy_env()
VID = "xorriso-sha256-gzip"
TIMEOUT_S = 60
SECRET_LINE = "root-only-secret-7f3a9c"


def make_secret(tmp_path):
    p = tmp_path / "secret.txt"
    p.write_text(SECRET_LINE + "\n" + "x" * 5000 + "\n")
    os.chmod(p, 0o600)
    return p


def mount_fails(url, tmp_path, cache, mentions):
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    rc, out, err = mounting.run_captured([mounting.binary(), "--cache-dir", str(cache), url, str(mnt)],
                                         tmp_path / "logs", TIMEOUT_S, env=ENV)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc != 0, f"mounted a hostile document: {url}"
    assert not mounting.is_mounted(mnt)
    assert len(lines) == 1, f"want one line on stderr, got:\n{err}"
    assert any(m in lines[0] for m in mentions), lines[0]
    assert SECRET_LINE not in err
    return lines[0]


def nothing_of(secret, cache):
    needle = secret.read_bytes()[:200]
    for root, _, files in os.walk(cache):
        for f in files:
            data = open(os.path.join(root, f), "rb").read()
            assert needle not in data, f"the secret was copied to {os.path.join(root, f)}"


def test_remote_template_may_not_be_a_local_file(corpus, net, tmp_path):
    secret = make_secret(tmp_path)
    site = net.site()
    ng = net.nginx(site.root)
    path, _ = site.publish(corpus.variant(VID), [f"Debian={ng.url}"], template_ref=f"file://{secret}")
    cache = tmp_path / "cache"
    line = mount_fails(ng.url.rstrip("/") + path, tmp_path, cache, ["may only name an http"])
    print(line)
    nothing_of(secret, cache)


def test_remote_include_may_not_be_a_local_file(corpus, net, tmp_path):
    secret = make_secret(tmp_path)
    site = net.site()
    ng = net.nginx(site.root)
    path, _ = site.publish(corpus.variant(VID), [f"Debian={ng.url}"])
    jigdo = site.root / path.lstrip("/")
    # directly, and one include further down (the included file is remote too)
    (site.root / "cd" / "inner.jigdo").write_text(f"[Include file://{secret}]\n")
    # (an absolute path resolves against the .jigdo's URL: the web server's)
    for inc in (f"file://{secret}", "inner.jigdo"):
        jigdo.write_text(jigdo.read_text().split("[Include", 1)[0] + f"[Include {inc}]\n")
        cache = tmp_path / f"cache-{len(inc)}"
        mount_fails(ng.url.rstrip("/") + path, tmp_path, cache, ["may only include http"])
        nothing_of(secret, cache)


def test_remote_document_cannot_make_itself_local(corpus, net, tmp_path):
    """Include a payload by URL (saved in the cache dir), then include the
    saved copy by its local path: the second include is refused."""
    site = net.site()
    ng = net.nginx(site.root)
    path, _ = site.publish(corpus.variant(VID), [f"Debian={ng.url}"])
    cache = tmp_path / "cache"
    payload_url = ng.url.rstrip("/") + "/cd/payload.jigdo"
    (site.root / "cd" / "payload.jigdo").write_text("[Servers]\nEvil=file:/\n")
    saved = cache / "jigdo" / hashlib.sha256(payload_url.encode()).hexdigest()
    jigdo = site.root / path.lstrip("/")
    jigdo.write_text(jigdo.read_text() + f"[Include {payload_url}]\n[Include file://{saved}]\n")
    mount_fails(ng.url.rstrip("/") + path, tmp_path, cache, ["may only include http"])


def test_cache_files_are_private(corpus, jig, net, tmp_path):
    site = net.site()
    ng = net.nginx(site.root)
    path, name = site.publish(corpus.variant(VID), [f"Debian={ng.url}"])
    m = jig.mount([ng.url.rstrip("/") + path], env=ENV)
    with open(m.path(name), "rb") as f:
        f.read(1 << 20)
    m.unmount()
    cache = jig.cache_dir
    for root, dirs, files in os.walk(cache):
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700, root
        for f in files:
            mode = stat.S_IMODE(os.stat(os.path.join(root, f)).st_mode)
            assert mode & 0o077 == 0, f"{os.path.join(root, f)} is {oct(mode)}"
    assert (cache / "jigdo").is_dir() and (cache / "templates").is_dir()


def test_cache_dir_of_another_user_is_refused(corpus, net, tmp_path):
    site = net.site()
    ng = net.nginx(site.root)
    path, _ = site.publish(corpus.variant(VID), [f"Debian={ng.url}"])
    cache = tmp_path / "theirs"
    cache.mkdir()
    os.chown(cache, 65534, 65534)
    mount_fails(ng.url.rstrip("/") + path, tmp_path, cache, ["owned by uid 65534"])


def test_status_file_survives_names_that_are_not_utf8(corpus, jig, tmp_path):
    v = corpus.variant(VID)
    src = v.jigdo
    raw = open(src, "rb").read()
    text = raw if raw[:2] != b"\x1f\x8b" else gzip.decompress(raw)
    bad = re.sub(rb"^Filename=.*$", b"Filename=caf\xe9-\xff.iso", text, flags=re.M)
    j = tmp_path / "latin1.jigdo"
    j.write_bytes(bad)
    os.symlink(os.path.splitext(src)[0] + ".template", tmp_path / "latin1.template")
    m = jig.mount([j], extra=v.local_args() + ["--offline"])
    st = m.status()
    assert len(st["images"]) == 1
    assert os.listdir(m.mountpoint) and any(n.startswith(b"caf\xe9") for n in os.listdir(os.fsencode(m.mountpoint)))
    print(json.dumps(st["images"][0]["name"]))


def _jigdo_file_image(tmp_path, jigdo_dir, tree_arg):
    """A small image of three files of `tmp_path/tree` between literal
    bytes, and jigdo-file's .jigdo/.template for it in `jigdo_dir`, with
    the tree named as `tree_arg` (no --uri: jigdo-file writes a file:
    server)."""
    tree = tmp_path / "tree"
    tree.mkdir(exist_ok=True)
    rng = os.urandom
    parts = []
    for i in range(3):
        data = rng(150_000 + 1000 * i)
        (tree / f"pkg{i}.deb").write_bytes(data)
        parts += [rng(3000 + i), data]
    image = tmp_path / "img.iso"
    image.write_bytes(b"".join(parts) + rng(777))
    jigdo_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["jigdo-file", "make-template", "--no-cache", "--force", "--report=quiet",
                    f"--image={image}", "--jigdo=img.jigdo", "--template=img.template",
                    "--min-length=1024", tree_arg], cwd=jigdo_dir, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = (jigdo_dir / "img.jigdo").read_text()
    assert "=file:" in text, text
    return jigdo_dir / "img.jigdo", image


def test_file_urls_of_a_local_jigdo_stay_beneath_it(jig, tmp_path):
    # The tree beneath the .jigdo (jigdo-file run in the parent of tree/):
    # read without asking, no warning.
    jigdo, image = _jigdo_file_image(tmp_path, tmp_path, "tree/")
    m = jig.mount([jigdo], extra=["--offline"])
    assert "warning" not in m.stderr, m.stderr
    assert (m.mountpoint / "img.iso").read_bytes() == image.read_bytes()


def test_file_server_outside_the_jigdo_needs_trust(jig, tmp_path):
    # "A=file:/abs/tree/" in a .jigdo kept in another directory.
    jigdo, image = _jigdo_file_image(tmp_path, tmp_path / "jigdos", f"{tmp_path / 'tree'}//")
    m = jig.mount([jigdo], extra=["--offline"])
    warnings = [ln for ln in m.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1, m.stderr
    assert str(jigdo) in warnings[0] and "--trust-file-urls" in warnings[0], warnings[0]
    served = m.mountpoint / "img.iso"
    assert checks.read_errno(served, 3000, 4096) == checks.EIO  # the package is not read
    trusted = jig.mount([jigdo], extra=["--offline", "--trust-file-urls"])
    assert "warning" not in trusted.stderr, trusted.stderr
    assert (trusted.mountpoint / "img.iso").read_bytes() == image.read_bytes()


def test_file_server_names_with_hash_and_question_mark(jig, tmp_path):
    """Real .jigdo files hold names like "English SR #3/" and "What is
    HyperCard?" under file: servers: they are names, not URL syntax."""
    tree = tmp_path / "tree"
    (tree / "English SR #3").mkdir(parents=True)
    a, b = os.urandom(120_000), os.urandom(90_000)
    (tree / "What is HyperCard?").write_bytes(a)
    (tree / "English SR #3" / "a%b c+d.bin").write_bytes(b)
    image = tmp_path / "img.iso"
    image.write_bytes(os.urandom(3000) + a + bytes(1000) + b + os.urandom(500))
    # one server per directory: B='file:.../English SR #3/'
    subprocess.run(["jigdo-file", "make-template", "--no-cache", "--force", "--report=quiet",
                    f"--image={image}", "--jigdo=img.jigdo", "--template=img.template", "--min-length=1024",
                    f"{tree / 'English SR #3'}//", f"{tree}//"], cwd=tmp_path, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert "#3/'" in (tmp_path / "img.jigdo").read_text()
    m = jig.mount([tmp_path / "img.jigdo"], extra=["--offline"])
    assert (m.mountpoint / "img.iso").read_bytes() == image.read_bytes()
