"""Mounting by URL: the .jigdo (plain or gzip), its template (Template=
relative to the .jigdo's URL) and every slice come from a real HTTP server on
127.0.0.1 (nginx-light, or fault_server.py where requests must be counted).

* a cold mount from a URL gives the exact image (random reads, then the
  whole-image SHA256); each slice is downloaded once;
* a remount --offline with the same cache gives the exact image again with
  zero requests to the server; so does an online remount with the server
  gone (saved .jigdo, cached template and slices);
* pool file names with '+', spaces and '~' reach the server intact;
* [Include URL] is resolved relative to the including file's URL;
* a downloaded template whose Template-SHA256Sum does not match makes the
  mount fail: non-zero exit, one line naming the template URL, no mount.
"""

import os
from pathlib import Path

import pytest

from itlib import http, mounting
from itlib.checks import boundaries, compare_random_reads, sha256_file
from conftest import listing_without_status

ENV = http.no_proxy_env()


def pool_requests(server):
    return http.requested_pool_paths(server.requests())


@pytest.mark.parametrize("vid,gz", [("xorriso-sha256-gzip", False),
                                    ("jigdo-file-md5-bzip2", True)],
                         ids=["sha256-plain-jigdo", "md5-gzip-jigdo"])
def test_cold_mount_from_url(corpus, jig, net, vid, gz):
    v = corpus.variant(vid)
    iso = v.images[0].iso
    site = net.site()
    ng = net.nginx(site.root)
    path, name = site.publish(v, [f"Debian={ng.url}"], gzip_jigdo=gz)
    url = ng.url.rstrip("/") + path

    m = jig.mount([url], extra=["--fetch-timeout", "30"], env=ENV)
    assert listing_without_status(m.mountpoint) == [name]
    img = m.path(name)
    assert os.stat(img).st_size == os.stat(iso).st_size
    compare_random_reads(img, iso, boundaries(iso, corpus.tree), n=300, seed=3)
    assert sha256_file(img) == sha256_file(iso)

    reqs = ng.requests()
    assert reqs.get(path) == 1, reqs
    assert reqs.get(f"/cd/{vid}.template") == 1, reqs
    pool = http.requested_pool_paths(reqs)
    again = {p: n for p, n in pool.items() if n > 1}
    assert not again, f"slices downloaded more than once: {again}"
    assert set(pool) <= set(site.pool_paths), set(pool) - set(site.pool_paths)
    st = m.status()
    assert st["mirror"]["downloads_ok"] == len(pool)
    assert st["mirror"]["downloads_failed"] == 0
    assert 0 < st["cache"]["bytes_used"] <= st["cache"]["capacity"]
    assert st["cache"]["capacity"] == 10 << 30  # the default --cache-size
    # the documents are kept for offline remounts
    assert len(list((jig.cache_dir / "jigdo").iterdir())) == 1
    assert len(list((jig.cache_dir / "templates").iterdir())) == 1


def test_offline_remount_makes_no_request(corpus, jig, net):
    v = corpus.variant("xorriso-sha256-gzip")
    iso = v.images[0].iso
    site, fs, path, name = net.published_behind_fault_server(v)
    url = fs.url.rstrip("/") + path
    want = sha256_file(iso)

    m = jig.mount([url], env=ENV)
    assert sha256_file(m.path(name)) == want
    assert fs.total() > 0
    m.unmount()

    fs.reset()
    m2 = jig.mount([url], extra=["--offline"], env=ENV)
    assert sha256_file(m2.path(name)) == want
    st = m2.status()
    assert st["offline"] is True
    assert st["mirror"]["cache_hits"] > 0 and st["mirror"]["offline_misses"] == 0
    m2.unmount()
    assert fs.total() == 0, f"--offline remount made requests: {fs.requests()}"

    # online, but the server is gone: the saved .jigdo, template and slices
    fs.stop()
    m3 = jig.mount([url], extra=["--fetch-timeout", "10"], env=ENV)
    assert sha256_file(m3.path(name)) == want


def test_file_names_reach_the_server_intact(corpus, jig, net):
    v = corpus.variant("xorriso-sha256-gzip")
    iso = v.images[0].iso
    site, fs, path, name = net.published_behind_fault_server(v)
    m = jig.mount([fs.url.rstrip("/") + path], env=ENV)
    assert sha256_file(m.path(name)) == sha256_file(iso)
    pool = pool_requests(fs)
    unknown = set(pool) - set(site.pool_paths)
    assert not unknown, f"requests for paths the server does not have: {sorted(unknown)}"
    for ch in (" ", "+", "~"):
        assert any(ch in Path(p).name for p in pool), f"no requested file name holds {ch!r}: {sorted(pool)}"
    assert "/pool/main/l/linux/linux-image-6.1+big~1_amd64.deb" in pool, sorted(pool)
    assert "/pool/main/f/firmware/firmware nonfree_20230625-2~bpo_all.deb" in pool, sorted(pool)


def test_include_url_relative_to_including_file(corpus, jig, net):
    """dvd/dvd.jigdo has the [Image]; it includes ../cd/parts.jigdo (by a
    relative URL) for its [Parts] and [Servers]. The included [Image] is
    not shown."""
    v = corpus.variant("xorriso-sha256-gzip")
    iso = v.images[0].iso
    site = net.site()
    fs = net.fault_server(site.root)
    site.publish(v, [f"Debian={fs.url}"], stem="parts")  # cd/parts.jigdo + cd/parts.template
    text = Path(v.jigdo).read_text()
    sums = [l for l in text.splitlines() if l.startswith("Template-SHA256Sum=")]
    assert len(sums) == 1
    dvd = site.root / "dvd"
    dvd.mkdir()
    os.link(site.root / "cd" / "parts.template", dvd / "dvd.template")
    (dvd / "dvd.jigdo").write_text(
        "# JigsawDownload\n[Jigdo]\nVersion=2.0\n\n"
        "[Include ../cd/parts.jigdo]\n\n"
        f"[Image]\nFilename=dvd.iso\nTemplate=dvd.template\n{sums[0]}\n")

    m = jig.mount([fs.url + "dvd/dvd.jigdo"], env=ENV)
    assert listing_without_status(m.mountpoint) == ["dvd.iso"]
    assert sha256_file(m.path("dvd.iso")) == sha256_file(iso)
    reqs = fs.requests()
    assert reqs.get("/dvd/dvd.jigdo") == 1 and reqs.get("/cd/parts.jigdo") == 1, reqs
    assert reqs.get("/dvd/dvd.template") == 1, reqs
    assert "/cd/parts.template" not in reqs, "an included [Image]'s template was fetched"
    assert pool_requests(fs)


def test_template_checksum_mismatch_fails_the_mount(corpus, jig, net, tmp_path):
    v = corpus.variant("xorriso-sha256-gzip")
    site, fs, path, name = net.published_behind_fault_server(v)
    tpl = site.root / "cd" / f"{v.id}.template"
    data = bytearray(tpl.read_bytes())
    data[len(data) // 2] ^= 0x55       # same size, one byte off
    tpl.unlink()                        # (a hard link to the corpus' copy)
    tpl.write_bytes(bytes(data))
    mp = jig.mountpoint()
    cmd = [mounting.binary(), "--cache-dir", str(jig.cache_dir), fs.url.rstrip("/") + path, str(mp)]
    rc, out, err = mounting.run_captured(cmd, tmp_path / "logs", mounting.MOUNT_TIMEOUT_S, env=ENV)
    assert rc != 0
    assert not mounting.is_mounted(mp)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, f"want one line on stderr, got: {err!r}"
    assert f"{fs.url}cd/{v.id}.template" in lines[0], lines[0]
    assert "checksum" in lines[0].lower(), lines[0]
    kept = list((jig.cache_dir / "templates").glob("*")) if (jig.cache_dir / "templates").exists() else []
    assert not [k for k in kept if not k.name.endswith(".part")], f"a bad template was kept: {kept}"
