#!/usr/bin/python3
"""bench/bench.py: the benchmark suite (issue 4): jigdoofus against the baselines.

One command builds jigdoofus (RelWithDebInfo), builds or reuses the corpora
(bench/corpus.py, cached in --bench-dir), runs the nine figures with each
pair measured in the same run, alternating, median of --runs, and prints a
markdown table of ratios with the targets next to them (also written to
BENCH_DIR/results-*.md and .json).

Run as root (FUSE mounts, nginx). Everything it mounts or starts (jigdoofus,
passthrough_ll, httpdirfs, nginx, delay proxies) is unmounted/stopped by
pid in a finally block, also on Ctrl-C or SIGTERM. Network traffic goes only
to 127.0.0.1. Not thread-safe; one run at a time per bench dir.

Usage: /usr/bin/python3 bench/bench.py [--quick] [--runs N] [--size-mb MB]
       [--only 1,2,3,4,5,6,7,8,9] [--build-dir DIR] [--bench-dir DIR]
"""
import argparse
import bisect
import datetime
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import corpus  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def log(msg):
    print(msg, flush=True)


class Session:
    """Owns every mount, process and temp path of the run; cleanup() releases them all."""

    def __init__(self, bench_dir):
        self.bench_dir = bench_dir
        self.mounts = []
        self.procs = []
        self.paths = []
        self.logf = open(os.path.join(bench_dir, "bench-daemons.log"), "a")

    def popen(self, cmd, **kw):
        kw.setdefault("stdout", self.logf)
        kw.setdefault("stderr", self.logf)
        p = subprocess.Popen(cmd, env=kw.pop("env", ENV), **kw)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def mounted(self, mnt, proc=None, timeout=60):
        t_end = time.monotonic() + timeout
        while not os.path.ismount(mnt):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"bench: {proc.args[0]} exited with {proc.returncode} before mounting {mnt}")
            if time.monotonic() > t_end:
                raise RuntimeError(f"bench: {mnt} not mounted after {timeout} s")
            time.sleep(0.002)
        if mnt not in self.mounts:
            self.mounts.append(mnt)

    def umount(self, mnt):
        for _ in range(50):
            if not os.path.ismount(mnt):
                break
            if subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.2)
        else:
            subprocess.run(["fusermount3", "-uz", mnt], stderr=subprocess.DEVNULL)
        if mnt in self.mounts:
            self.mounts.remove(mnt)

    def cleanup(self):
        for m in reversed(self.mounts[:]):
            self.umount(m)
        for p in reversed(self.procs[:]):
            self.stop(p)
        for path in self.paths:
            shutil.rmtree(path, ignore_errors=True)


def iso_file_extents(iso):
    """[(byte offset, size)] of the files in an ISO image, sorted (xorriso)."""
    out = subprocess.run(["xorriso", "-indev", iso, "-find", "/", "-type", "f", "-exec", "report_lba", "--"],
                         capture_output=True, text=True, check=True).stdout
    ext = []
    for line in out.splitlines():
        if line.startswith("File data lba:"):
            f = [x.strip() for x in line.split(":", 1)[1].split(",")]
            ext.append((int(f[1]) * 2048, int(f[3])))
    return sorted(ext)


def served_jigdo(jigdo, template_url, server_urls):
    """The corpus .jigdo's text as served: Template= the given URL, the image
    named bench.iso, and Debian= servers (in this order) first in [Servers]."""
    lines = []
    for line in open(jigdo).read().splitlines():
        if line.startswith("Template="):
            line = f"Template={template_url}"
        elif line.startswith("Filename="):
            line = "Filename=bench.iso"
        lines.append(line)
        if line.strip() == "[Servers]":
            lines += [f"Debian={u}" for u in server_urls]
    return "\n".join(lines) + "\n"


def timed(cmd, **kw):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=ENV, **kw)
    return time.perf_counter() - t0


def cat(path):
    return timed(["cat", path], stdout=subprocess.DEVNULL)


def image_in(mnt):
    names = sorted(n for n in os.listdir(mnt) if not n.startswith("."))
    if not names:
        raise RuntimeError(f"bench: no image file in {mnt}")
    return os.path.join(mnt, names[0])


def proc_cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_hwm_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_reads(path, count, seed, size=4096):
    """count preads of `size` bytes at random size-aligned offsets; returns reads per second."""
    fd = os.open(path, os.O_RDONLY)
    try:
        blocks = os.fstat(fd).st_size // size
        rng = random.Random(seed)
        offsets = [rng.randrange(blocks) * size for _ in range(count)]
        t0 = time.perf_counter()
        for off in offsets:
            if len(os.pread(fd, size, off)) != size:
                raise RuntimeError(f"bench: short read at {off} in {path}")
        return count / (time.perf_counter() - t0)
    finally:
        os.close(fd)


RANDOM_READER = r"""
import os, random, sys, time
path, size, seconds, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
fd = os.open(path, os.O_RDONLY); n = os.fstat(fd).st_size // size; rng = random.Random(seed)
end = time.monotonic() + seconds
while time.monotonic() < end:
    os.pread(fd, size, rng.randrange(n) * size)
"""


class Bench:
    def __init__(self, args, s):
        self.a = args
        self.s = s
        self.r = {}  # key -> list of values
        self.extra = {}  # key -> list of values (informative, not in ratios)
        self.bd = args.bench_dir
        self.work = os.path.join(self.bd, f"work-{os.getpid()}")
        os.makedirs(self.work)
        s.paths.append(self.work)
        self.mnt = os.path.join(self.work, "mnt")
        os.makedirs(self.mnt)

    def add(self, key, v, extra=False):
        (self.extra if extra else self.r).setdefault(key, []).append(v)

    def fresh_dir(self, name):
        d = os.path.join(self.work, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return d

    # ------------------------------------------------------------ setup
    def setup(self):
        a = self.a
        self.bin = os.path.join(a.build_dir, "fs", "jigdoofus")
        if not a.no_build:
            if not os.path.exists(os.path.join(a.build_dir, "build.ninja")):
                subprocess.run(["cmake", "-S", SRC, "-B", a.build_dir, "-G", "Ninja",
                                "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["ninja", "-C", a.build_dir, "-j2", "jigdoofus"], check=True, stdout=subprocess.DEVNULL)
        tools = os.path.join(self.bd, "tools")
        os.makedirs(tools, exist_ok=True)
        self.ptll = os.path.join(tools, "passthrough_ll")
        if not os.path.exists(self.ptll):
            flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], check=True,
                                   capture_output=True, text=True).stdout.split()
            subprocess.run(["gcc", "-O2", "-o", self.ptll,
                            "/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c", *flags], check=True)
        c = corpus.ensure(self.bd, "image", corpus.build_image_corpus, a.size_mb)
        self.corpus = c
        self.tree = os.path.join(c, "tree")
        self.iso_dir = os.path.join(c, "iso")
        self.iso = os.path.join(self.iso_dir, "bench.iso")
        self.jigdo = os.path.join(c, "bench.jigdo")
        self.template = os.path.join(c, "bench.template")
        self.size = os.path.getsize(self.iso)
        self.slices = int(open(os.path.join(c, "DONE")).read().split()[0])
        if 5 in a.only:
            self.dvd = corpus.ensure(self.bd, "dvd", corpus.build_dvd_corpus)

    def warm(self):
        subprocess.run(["find", self.tree, "-type", "f", "-exec", "cat", "{}", "+"],
                       stdout=subprocess.DEVNULL, check=True)
        subprocess.run(["cat", self.iso, self.template, self.jigdo], stdout=subprocess.DEVNULL, check=True)

    # ------------------------------------------------------------ mounts
    def jfs(self, sources, cache, extra=(), ns_prefix=()):
        p = self.s.popen([*ns_prefix, self.bin, "-f", "--cache-dir", cache, *extra, *sources, self.mnt])
        t0 = time.perf_counter()
        self.s.mounted(self.mnt, p)
        return p, time.perf_counter() - t0

    def jfs_local(self, cache):
        return self.jfs([self.jigdo], cache, ["--offline", "--local", f"Debian={self.tree}"])

    def unmount(self, p):
        self.s.umount(self.mnt)
        p.wait(timeout=60)
        self.s.procs.remove(p)

    def ptll_mount(self):
        p = self.s.popen([self.ptll, "-f", "-o", f"source={self.iso_dir}", self.mnt])
        self.s.mounted(self.mnt, p)
        return p

    # ------------------------------------------------------------ figures 1, 2
    def fig12(self):
        log("== figures 1 and 2: local tree, sequential read")
        warm_cache = os.path.join(self.work, "cache-verified")
        self.warm()
        p, _ = self.jfs_local(warm_cache)  # prime: every slice verified once, and the correctness check
        if subprocess.run(["cmp", image_in(self.mnt), self.iso]).returncode != 0:
            raise RuntimeError("bench: mounted image differs from the original ISO")
        self.unmount(p)
        shm = "/dev/shm/jigdoofus-bench.iso"
        self.s.paths.append(shm)
        for run in range(self.a.runs):
            self.warm()
            p = self.ptll_mount()
            self.add("ptll_seq", cat(os.path.join(self.mnt, "bench.iso")))
            self.unmount(p)

            self.warm()
            p, mt = self.jfs_local(self.fresh_dir("cache-first"))
            self.add("jfs_first", cat(image_in(self.mnt)))
            self.add("jfs_first_cpu", proc_cpu(p.pid), extra=True)
            self.add("jfs_mount_1g", mt, extra=True)
            self.unmount(p)

            self.warm()
            p, _ = self.jfs_local(warm_cache)
            cpu0 = proc_cpu(p.pid)
            self.add("jfs_remount", cat(image_in(self.mnt)))
            self.add("jfs_remount_cpu", proc_cpu(p.pid) - cpu0, extra=True)
            self.add("jfs_warm", cat(image_in(self.mnt)))
            self.add("jfs_rss_1g", proc_hwm_mib(p.pid), extra=True)
            self.unmount(p)

            cat(self.iso)
            self.add("cat_warm", cat(self.iso))

            self.warm()
            self.add("jigit", timed(["jigit-mkimage", "-j", self.jigdo, "-t", self.template,
                                     "-m", f"Debian={self.tree}/", "-o", "/dev/null"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.warm()
            self.add("jigdo_file", timed(["jigdo-file", "make-image", "--no-cache", "--force", "--report=quiet",
                                          f"--image={shm}", f"--jigdo={self.jigdo}",
                                          f"--template={self.template}", f"{self.tree}//"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            os.unlink(shm)
            log(f"   run {run + 1}/{self.a.runs} done")
        self.verified_cache = warm_cache

    # ------------------------------------------------------------ figures 8, 9
    def md5_jigdo(self):
        """An MD5 .jigdo/.template of the bench ISO, as Debian publishes them
        (jigdo-file's default checksum), made once beside the corpus."""
        d = os.path.join(self.corpus, "md5")
        jigdo = os.path.join(d, "bench.jigdo")
        if not os.path.exists(os.path.join(d, "DONE")):
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            log("   making the MD5 template with jigdo-file (once)")
            subprocess.run(["jigdo-file", "make-template", "--no-cache", "--force", "--report=quiet",
                            f"--image={self.iso}", f"--jigdo={jigdo}", f"--template={d}/bench.template",
                            f"--label=Debian={self.tree}", "--uri=Debian=http://127.0.0.1:9/debian/",
                            f"{self.tree}//pool"], check=True)
            open(os.path.join(d, "DONE"), "w").close()
        return jigdo

    def fig8(self):
        log("== figure 8: first-ever mount of an MD5 image from a local tree")
        jigdo = self.md5_jigdo()
        for run in range(self.a.runs):
            self.warm()
            p = self.ptll_mount()
            self.add("ptll_seq_md5", cat(os.path.join(self.mnt, "bench.iso")))
            self.unmount(p)
            self.warm()
            p, _ = self.jfs([jigdo], self.fresh_dir("cache-md5"), ["--offline", "--local", f"Debian={self.tree}"])
            if run == 0 and subprocess.run(["cmp", image_in(self.mnt), self.iso]).returncode != 0:
                raise RuntimeError("bench: mounted MD5 image differs from the original ISO")
            self.unmount(p)
            self.warm()
            p, _ = self.jfs([jigdo], self.fresh_dir("cache-md5"), ["--offline", "--local", f"Debian={self.tree}"])
            self.add("jfs_first_md5", cat(image_in(self.mnt)))
            self.add("jfs_first_md5_cpu", proc_cpu(p.pid), extra=True)
            self.unmount(p)
            log(f"   run {run + 1}/{self.a.runs} done")

    def fig9(self):
        log("== figure 9: an ISO file as the only source vs the same files in a tree (MD5 image)")
        jigdo = self.md5_jigdo()
        sources = {"iso": ["--scan", self.iso], "tree": ["--scan", self.tree]}
        for run in range(self.a.runs):
            for tag, extra in sources.items():
                self.warm()
                p, mt = self.jfs([jigdo], self.fresh_dir(f"cache-scan-{tag}"), ["--offline", *extra])
                self.add(f"scan_{tag}_ready", mt)
                t = cat(image_in(self.mnt))
                if run == 0 and subprocess.run(["cmp", image_in(self.mnt), self.iso]).returncode != 0:
                    raise RuntimeError(f"bench: image rebuilt from --scan {tag} differs from the original ISO")
                self.add(f"scan_{tag}_read", t)
                self.unmount(p)
            log(f"   run {run + 1}/{self.a.runs} done")

    # ------------------------------------------------------------ figure 4
    def fig4(self):
        log("== figure 4: random 4 KiB reads")
        cache = getattr(self, "verified_cache", None)
        if cache is None:
            cache = os.path.join(self.work, "cache-verified")
            p, _ = self.jfs_local(cache)
            cat(image_in(self.mnt))
            self.unmount(p)
        for run in range(self.a.runs):
            self.warm()
            p = self.ptll_mount()
            self.add("ptll_rand", random_reads(os.path.join(self.mnt, "bench.iso"), self.a.rand_count, run))
            self.unmount(p)
            self.warm()
            p, _ = self.jfs_local(cache)
            self.add("jfs_rand", random_reads(image_in(self.mnt), self.a.rand_count, run))
            self.unmount(p)
        self.verified_cache = cache

    # ------------------------------------------------------------ figure 6
    def fig6(self):
        log("== figure 6: sequential reader alone and with 8 random readers (PXE)")
        cache = self.verified_cache
        for run in range(self.a.runs):
            self.warm()
            p, _ = self.jfs_local(cache)
            self.add("pxe_solo", cat(image_in(self.mnt)))
            self.unmount(p)
            self.warm()
            p, _ = self.jfs_local(cache)
            img = image_in(self.mnt)
            readers = [self.s.popen(["/usr/bin/python3", "-c", RANDOM_READER, img, str(256 << 10), "900",
                                     str(100 * run + i)]) for i in range(8)]
            time.sleep(0.5)
            self.add("pxe_loaded", cat(img))
            for r in readers:
                self.s.stop(r)
            self.unmount(p)

    # ------------------------------------------------------------ figure 5
    def fig5(self):
        log("== figure 5: DVD-sized template: mount time, RSS, time to first byte")
        jigdo = os.path.join(self.dvd, "bench.jigdo")
        local = ["--offline", "--local", f"Debian={os.path.join(self.dvd, 'tree')}"]
        subprocess.run(["cat", os.path.join(self.dvd, "bench.template"), jigdo], stdout=subprocess.DEVNULL)
        kept = self.fresh_dir("cache-dvd-kept")
        rng = random.Random(7)
        for run in range(self.a.runs):
            for key, cache in (("dvd_mount_first", self.fresh_dir("cache-dvd")), ("dvd_remount", kept)):
                t = timed([self.bin, "--cache-dir", cache, *local, jigdo, self.mnt])
                self.s.mounts.append(self.mnt)
                self.add(key, t)
                self.s.umount(self.mnt)
                time.sleep(0.3)  # the daemon exits after the unmount
            p, _ = self.jfs([jigdo], self.fresh_dir("cache-dvd"), local)
            img = image_in(self.mnt)
            self.add("dvd_rss_mounted", proc_hwm_mib(p.pid), extra=True)
            size = os.path.getsize(img)
            fd = os.open(img, os.O_RDONLY)
            ttfb = []
            for _ in range(5):
                off = rng.randrange(size // 4096) * 4096
                t0 = time.perf_counter()
                os.pread(fd, 4096, off)
                ttfb.append(time.perf_counter() - t0)
            self.add("dvd_ttfb", statistics.median(ttfb))
            left = self.a.dvd_read_mb << 20
            off = 0
            while left > 0:
                n = len(os.pread(fd, 1 << 20, off))
                off += n
                left -= n
            for _ in range(200):
                os.pread(fd, 4096, rng.randrange(size // 4096) * 4096)
            os.close(fd)
            self.add("dvd_rss", proc_hwm_mib(p.pid))
            self.dvd_size = size
            self.unmount(p)
        # one more remount with the records of the reads above present
        t = timed([self.bin, "--cache-dir", kept, *local, jigdo, self.mnt])
        self.s.mounts.append(self.mnt)
        self.s.umount(self.mnt)
        self.add("dvd_remount", t)

    # ------------------------------------------------------------ nginx
    def serve_www(self, n, closing=0):
        """nginx on n free ports serving the tree, the ISO and the template,
        and on `closing` more that close each connection (no keep-alive)."""
        www = os.path.join(self.work, "www")
        if not os.path.isdir(www):
            os.makedirs(www)
            os.symlink(self.tree, os.path.join(www, "tree"))
            os.symlink(self.iso, os.path.join(www, "bench.iso"))
            os.symlink(self.template, os.path.join(www, "bench.template"))
        ports = [free_port() for _ in range(n + closing)]
        conf = os.path.join(self.work, "nginx.conf")
        servers = "".join(f"  server {{ listen 127.0.0.1:{p}; root {www};{' keepalive_timeout 0;' if i >= n else ''} }}\n"
                          for i, p in enumerate(ports))
        with open(conf, "w") as f:
            f.write(f"user root; daemon off; worker_processes 2; pid {self.work}/nginx.pid;\n"
                    f"error_log {self.work}/nginx-error.log;\nevents {{ worker_connections 1024; }}\n"
                    f"http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;\n"
                    f"  types {{ }} default_type application/octet-stream;\n{servers}}}\n")
        nginx = self.s.popen(["nginx", "-p", self.work, "-c", conf, "-e", f"{self.work}/nginx-error.log"])
        for port in ports:
            for _ in range(500):
                with socket.socket() as sk:
                    if sk.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.01)
        return www, ports, nginx

    def write_url_jigdo(self, www, name, server_ports):
        urls = [f"http://127.0.0.1:{p}/tree/" for p in server_ports]
        with open(os.path.join(www, name), "w") as f:
            f.write(served_jigdo(self.jigdo, f"http://127.0.0.1:{server_ports[0]}/bench.template", urls))
        return f"http://127.0.0.1:{server_ports[0]}/{name}"

    # ------------------------------------------------------------ figure 10
    # The simulated internet: four mirrors of the same pool, each behind its
    # own delay_proxy (round-trip time, uplink cap shared by its
    # connections), listed slowest first; in the second case the fastest
    # one stalls now and then.
    MIRRORS = [dict(rtt=160, rate=2e6), dict(rtt=100, rate=4e6), dict(rtt=50, rate=8e6), dict(rtt=20, rate=16e6)]
    STALL = dict(every=8.0, stall=4.0)  # the fastest mirror, second case
    # A reader that does not outrun the link: a DVD burner at 8x (1x DVD is
    # 1385 kB/s), 11 MB/s of the 22 MB/s the stalling mirrors give on average.
    PACE = 8 * 1.385e6

    def fig10(self):
        log("== figure 10: a simulated internet: 4 uneven mirrors, slowest listed first")
        www, (port,), nginx = self.serve_www(1)
        scale = self.a.size_mb / 1024  # --quick: a smaller corpus, thinner links (same times)
        link = sum(m["rate"] for m in self.MIRRORS) * scale
        self.add("inet_link", self.size / link)

        def start_proxies(stall):
            procs, urls = [], []
            for i, m in enumerate(self.MIRRORS):
                lp = free_port()
                cmd = ["/usr/bin/python3", os.path.join(HERE, "delay_proxy.py"), "--listen-port", str(lp),
                       "--upstream-port", str(port), "--delay-ms", str(m["rtt"]), "--rate", str(m["rate"] * scale)]
                if stall and i == len(self.MIRRORS) - 1:
                    cmd += ["--stall-every", str(self.STALL["every"]), "--stall-for", str(self.STALL["stall"])]
                pr = self.s.popen(cmd, stdout=subprocess.PIPE)
                if not pr.stdout.readline().startswith(b"ready"):
                    raise RuntimeError("bench: delay proxy did not start")
                procs.append(pr)
                urls.append(f"http://127.0.0.1:{lp}")
            return procs, urls

        extents = iso_file_extents(self.iso)
        best = min(self.MIRRORS, key=lambda m: 1 / m["rate"])  # the fastest uplink
        best_rate, best_rtt = best["rate"] * scale, best["rtt"] / 1000

        def bound(offset, length, together=False):
            """What the best mirror needs for the slices this read waits on,
            twice, plus one round trip: (rtt + size / rate) x 2 + rtt, for
            the largest of them; `together`: for all of them at once over
            its uplink (rtt + sum of sizes / rate), what it would need to
            bring them all."""
            i = bisect.bisect_right(extents, (offset, float("inf"))) - 1
            need, total = 0.0, 0
            while 0 <= i < len(extents) and extents[i][0] < offset + length:
                start, size = extents[i]
                if start + size > offset:
                    need = max(need, best_rtt + size / best_rate)
                    total += size
                i += 1
            if together and total:
                need = best_rtt + total / best_rate
            return 2 * need + best_rtt

        def timed_reads(path, pace=0.0):
            """Whole-file sequential read in 1 MiB reads, as fast as they
            come or, with `pace` (bytes/s), none before its time: (seconds,
            longest single read, reads over the bound, worst read / its
            bound, reads over the bound taken for the read's slices
            together)."""
            longest, over, worst, over_together = 0.0, 0, 0.0, 0
            t0 = time.perf_counter()
            with open(path, "rb", buffering=0) as f:
                offset = 0
                while True:
                    if pace:
                        time.sleep(max(0.0, t0 + offset / pace - time.perf_counter()))
                    r0 = time.perf_counter()
                    chunk = f.read(1 << 20)
                    took = time.perf_counter() - r0
                    if not chunk:
                        break
                    longest = max(longest, took)
                    b = bound(offset, len(chunk))
                    over += took > b
                    over_together += took > bound(offset, len(chunk), together=True)
                    worst = max(worst, took / b)
                    offset += len(chunk)
            return time.perf_counter() - t0, longest, over, worst, over_together

        for tag, stall in (("inet", False), ("inet_stall", True)):
            procs, urls = start_proxies(stall)
            with open(os.path.join(www, f"{tag}.jigdo"), "w") as f:
                f.write(served_jigdo(self.jigdo, f"http://127.0.0.1:{port}/bench.template",
                                     [u + "/tree/" for u in urls]))
            jigdo_url = f"http://127.0.0.1:{port}/{tag}.jigdo"
            for run in range(self.a.runs):
                t0 = time.perf_counter()
                p, _ = self.jfs([jigdo_url], self.fresh_dir("cache-inet"))
                t, longest, over, worst, over_together = timed_reads(image_in(self.mnt))
                self.add(f"{tag}_jfs", time.perf_counter() - t0)
                self.add(f"{tag}_jfs_longest_read", longest, extra=True)
                self.add(f"{tag}_jfs_reads_over_bound", over, extra=True)
                self.add(f"{tag}_jfs_worst_read_vs_bound", worst, extra=True)
                self.add(f"{tag}_jfs_reads_over_bound_together", over_together, extra=True)
                st = json.load(open(os.path.join(self.mnt, ".jigdoofus-status")))
                self.add(f"{tag}_jfs_overtaken", st["mirror"]["overtaken"], extra=True)
                self.add(f"{tag}_jfs_hedges", st["mirror"]["hedges"], extra=True)
                self.unmount(p)
                if stall:
                    # The same mirrors, read at a burner's pace: the reads a
                    # stall still makes wait.
                    p, _ = self.jfs([jigdo_url], self.fresh_dir("cache-inet"))
                    _, longest, over, worst, _ = timed_reads(image_in(self.mnt), self.PACE * scale)
                    self.add(f"{tag}_paced_longest_read", longest, extra=True)
                    self.add(f"{tag}_paced_reads_over_bound", over, extra=True)
                    self.add(f"{tag}_paced_worst_read_vs_bound", worst, extra=True)
                    self.unmount(p)
                out = os.path.join(self.fresh_dir("aria2"), "bench.iso")
                self.add(f"{tag}_aria2", timed(["aria2c", "-q", "-x16", "-s16", "-k1M", "--file-allocation=none",
                                                 "--allow-overwrite=true", "-d", os.path.dirname(out),
                                                 "-o", "bench.iso", *[u + "/bench.iso" for u in urls]]))
                if os.path.getsize(out) != self.size:
                    raise RuntimeError("bench: aria2c did not download the whole ISO")
                os.unlink(out)
                log(f"   {tag} run {run + 1}/{self.a.runs} done")
            if not stall:
                # jigdo-lite takes one mirror: the fastest (the best a user
                # can pick), and the one the .jigdo lists first (what a user
                # gets who takes the document's order).
                for run in range(self.a.slow_runs):
                    for key, mirror in (("inet_jigdo_lite", urls[-1]), ("inet_jigdo_lite_listed", urls[0])):
                        jl = self.fresh_dir("jigdo-lite")
                        env = dict(ENV, HOME=jl)
                        with open(os.path.join(jl, ".jigdo-lite"), "w") as rc:
                            rc.write(f"debianMirror='{mirror}/tree/'\ntmpDir='.'\n")
                        with open(os.path.join(self.bd, "jigdo-lite.log"), "w") as lf:
                            t0 = time.perf_counter()
                            subprocess.run(["jigdo-lite", "--noask", jigdo_url], cwd=jl, env=env,
                                           stdin=subprocess.DEVNULL, stdout=lf, stderr=lf, check=True, timeout=7200)
                            self.add(key, time.perf_counter() - t0)
                        shutil.rmtree(jl)
            for pr in procs:
                self.s.stop(pr)
        self.s.stop(nginx)

    # ------------------------------------------------------------ figure 7
    def fig7(self):
        log("== figure 7: served from the chunk cache (sources gone, --offline)")
        www, ports, nginx = self.serve_www(1)
        url = self.write_url_jigdo(www, "cached.jigdo", ports)
        cache = os.path.join(self.work, "cache-filled")
        p, _ = self.jfs([url], cache)
        if subprocess.run(["cmp", image_in(self.mnt), self.iso]).returncode != 0:
            raise RuntimeError("bench: image read through the mirror differs from the original ISO")
        self.unmount(p)
        self.s.stop(nginx)

        def warm_cache():
            subprocess.run(["cat", os.path.join(cache, "data.mdb"), self.iso], stdout=subprocess.DEVNULL, check=True)
        for run in range(self.a.runs):
            warm_cache()
            p = self.ptll_mount()
            self.add("ptll_seq_c", cat(os.path.join(self.mnt, "bench.iso")))
            self.unmount(p)
            warm_cache()
            p, _ = self.jfs([url], cache, ["--offline"])
            cpu0 = proc_cpu(p.pid)
            self.add("cache_seq", cat(image_in(self.mnt)))
            self.add("cache_seq_cpu", proc_cpu(p.pid) - cpu0, extra=True)
            self.unmount(p)
            warm_cache()
            p = self.ptll_mount()
            self.add("ptll_rand_c", random_reads(os.path.join(self.mnt, "bench.iso"), self.a.rand_count, run))
            self.unmount(p)
            warm_cache()
            p, _ = self.jfs([url], cache, ["--offline"])
            self.add("cache_rand", random_reads(image_in(self.mnt), self.a.rand_count, run))
            st = json.load(open(os.path.join(self.mnt, ".jigdoofus-status")))
            if st["mirror"]["downloads_ok"] or st["fs"]["failures"]["eio-corruption"]:
                raise RuntimeError(f"bench: cache-served mount downloaded or failed: {st['mirror']}")
            self.unmount(p)
            log(f"   run {run + 1}/{self.a.runs} done")

    # ------------------------------------------------------------ figure 3
    def fig3(self):
        log("== figure 3: cold from local nginx mirrors")
        www, ports, nginx = self.serve_www(4, closing=1)  # ports[4]: no keep-alive
        proxies = [free_port() for _ in range(5)]
        for lp, up in zip(proxies, ports):
            pr = self.s.popen(["/usr/bin/python3", os.path.join(HERE, "delay_proxy.py"), "--listen-port", str(lp),
                               "--upstream-port", str(up), "--delay-ms", str(self.a.rtt_ms)],
                              stdout=subprocess.PIPE)
            if not pr.stdout.readline().startswith(b"ready"):
                raise RuntimeError("bench: delay proxy did not start")

        def write_jigdo(name, server_ports):
            return self.write_url_jigdo(www, name, server_ports)

        scenarios = [
            ("net", ports[:1], True),
            ("lat", proxies[:1], True),
            ("net4", ports[:4], False),
            ("lat4", proxies[:4], False),
            ("latclose", proxies[4:], False),
        ]
        for tag, sp, with_others in scenarios:
            url = write_jigdo(f"{tag}.jigdo", sp)
            iso_url = f"http://127.0.0.1:{sp[0]}/bench.iso"
            for run in range(self.a.runs):
                self.warm()
                self.add(f"{tag}_curl", timed(["curl", "-sS", "--fail", "-o", "/dev/null", iso_url]))
                self.warm()
                t0 = time.perf_counter()
                p, _ = self.jfs([url], self.fresh_dir("cache-net"))
                cat(image_in(self.mnt))
                self.add(f"{tag}_jfs", time.perf_counter() - t0)
                self.add(f"{tag}_jfs_cpu", proc_cpu(p.pid), extra=True)
                self.unmount(p)
                if not with_others or run >= self.a.slow_runs:
                    continue
                self.warm()
                t0 = time.perf_counter()
                h = self.s.popen(["httpdirfs", "-f", "--no-range-check", "--cache", "--cache-location",
                                    self.fresh_dir("cache-httpdirfs"), "--single-file-mode", iso_url, self.mnt])
                self.s.mounted(self.mnt, h)
                cat(os.path.join(self.mnt, "bench.iso"))
                self.add(f"{tag}_httpdirfs", time.perf_counter() - t0)
                self.s.umount(self.mnt)
                self.s.stop(h)
                self.warm()
                jl = self.fresh_dir("jigdo-lite")
                env = dict(ENV, HOME=jl)
                with open(os.path.join(jl, ".jigdo-lite"), "w") as rc:  # --noask takes the mirror from here
                    rc.write(f"debianMirror='http://127.0.0.1:{sp[0]}/tree/'\ntmpDir='.'\n")
                with open(os.path.join(self.bd, "jigdo-lite.log"), "w") as lf:
                    t0 = time.perf_counter()
                    subprocess.run(["jigdo-lite", "--noask", url], cwd=jl, env=env, stdin=subprocess.DEVNULL,
                                   stdout=lf, stderr=lf, check=True, timeout=3600)
                    t = time.perf_counter() - t0
                out = os.path.join(jl, "bench.iso")
                if not os.path.exists(out) or os.path.getsize(out) != self.size:
                    raise RuntimeError(f"bench: jigdo-lite did not make {out} (see jigdo-lite.log)")
                self.add(f"{tag}_jigdo_lite", t)
                shutil.rmtree(jl)
            log(f"   {tag} done")
        self.s.stop(nginx)


# ---------------------------------------------------------------- report
def med(b, k):
    v = b.r.get(k) or b.extra.get(k)
    return statistics.median(v) if v else None


def table(b):
    mb = b.size / 1e6
    rows = []

    def speed(what, jk, bk, target, ok, fig, base_name):
        tj, tb = med(b, jk), med(b, bk)
        if tj is None or tb is None:
            return
        ratio = tb / tj
        rows.append((fig, what, f"{tj:.2f} s ({mb / tj:.0f} MB/s)", f"{base_name}: {tb:.2f} s ({mb / tb:.0f} MB/s)",
                     f"{ratio:.2f}×", target, "yes" if ok(ratio) else "**no**"))

    def rate(what, jk, bk, target, ok, fig, base_name):
        vj, vb = med(b, jk), med(b, bk)
        if vj is None or vb is None:
            return
        rows.append((fig, what, f"{vj:.0f}/s", f"{base_name}: {vb:.0f}/s", f"{vj / vb:.2f}×", target,
                     "yes" if ok(vj / vb) else "**no**"))

    def absolute(what, k, unit, fmt, target, ok, fig):
        v = med(b, k)
        if v is None:
            return
        rows.append((fig, what, f"{fmt.format(v)} {unit}", "–", "–", target, "yes" if ok(v) else "**no**"))

    ge = lambda x: (lambda r: r >= x)  # noqa: E731
    speed("first-ever mount (fresh cache: every slice hashed)", "jfs_first", "ptll_seq", "≥ 0.9×", ge(0.9), 1,
          "passthrough_ll")
    speed("remount (verification records present)", "jfs_remount", "ptll_seq", "≥ 0.9×", ge(0.9), 1, "passthrough_ll")
    speed("first-ever mount", "jfs_first", "jigit", "> 1×", ge(1.0), 1, "jigit-mkimage")
    speed("first-ever mount", "jfs_first", "jigdo_file", "> 1×", ge(1.0), 1, "jigdo-file make-image")
    speed("re-read, kernel page cache warm", "jfs_warm", "cat_warm", "≥ 0.9×", ge(0.9), 2, "cat original (warm)")
    names = {"net": "loopback, 1 mirror", "lat": f"+{b.a.rtt_ms} ms RTT, 1 mirror", "net4": "loopback, 4 mirrors",
             "lat4": f"+{b.a.rtt_ms} ms RTT, 4 mirrors",
             "latclose": f"+{b.a.rtt_ms} ms RTT, 1 mirror without keep-alive"}
    for tag, name in names.items():
        speed(f"cold, {name} (mount + read)", f"{tag}_jfs", f"{tag}_curl", "≥ 0.87× (time ≤ 1.15×)", ge(1 / 1.15), 3,
              "curl")
        speed(f"cold, {name}", f"{tag}_jfs", f"{tag}_jigdo_lite", "≥ 5×", ge(5.0), 3, "jigdo-lite")
        speed(f"cold, {name}", f"{tag}_jfs", f"{tag}_httpdirfs", "≥ 1×", ge(1.0), 3, "httpdirfs")
    rate("random 4 KiB reads (verified cache, sources warm)", "jfs_rand", "ptll_rand", "≥ 0.8×", ge(0.8), 4,
         "passthrough_ll")
    absolute("DVD: mount ready, first-ever (fresh cache)", "dvd_mount_first", "s", "{:.3f}", "≤ 0.2 s",
             lambda v: v <= 0.2, 5)
    absolute("DVD: mount ready, remount", "dvd_remount", "s", "{:.3f}", "≤ 0.2 s", lambda v: v <= 0.2, 5)
    absolute(f"DVD: peak RSS (VmHWM) after {b.a.dvd_read_mb} MB read + 205 random reads", "dvd_rss", "MiB", "{:.1f}",
             "≤ 64 MiB", lambda v: v <= 64, 5)
    absolute("DVD: time to first byte, random offset, fresh cache", "dvd_ttfb", "s", "{:.3f}", "–", lambda v: True, 5)
    speed("sequential reader with 8 random readers", "pxe_loaded", "pxe_solo", "≥ 0.7×", ge(0.7), 6, "same reader alone")
    speed("whole image served from the chunk cache (--offline, sources gone)", "cache_seq", "ptll_seq_c", "≥ 1.0×",
          ge(1.0), 7, "passthrough_ll")
    rate("random 4 KiB reads served from the chunk cache", "cache_rand", "ptll_rand_c", "≥ 0.8×", ge(0.8), 7,
         "passthrough_ll")
    speed("simulated internet, 4 mirrors slowest first (mount + read)", "inet_jfs", "inet_aria2", "≥ 0.9×", ge(0.9),
          10, "aria2c -x16 -s16, 4 mirrors")
    speed("simulated internet, 4 mirrors", "inet_jfs", "inet_link", "≥ 0.8×", ge(0.8), 10, "sum of the uplinks")
    speed("simulated internet, 4 mirrors", "inet_jfs", "inet_jigdo_lite", "≥ 5×", ge(5.0), 10,
          "jigdo-lite (the fastest mirror)")
    speed("simulated internet, 4 mirrors", "inet_jfs", "inet_jigdo_lite_listed", "≥ 5×", ge(5.0), 10,
          "jigdo-lite (the mirror listed first)")
    speed("simulated internet, the fastest mirror stalling 4 s in 8", "inet_stall_jfs", "inet_stall_aria2", "≥ 0.9×",
          ge(0.9), 10, "aria2c -x16 -s16, 4 mirrors")
    absolute("simulated internet, stalling mirror: the longest single 1 MiB read", "inet_stall_jfs_longest_read", "s",
             "{:.2f}", "–", lambda v: True, 10)
    absolute("simulated internet, stalling mirror: reads longer than 2 x (RTT + slice / rate) + RTT of the best "
             "mirror", "inet_stall_jfs_reads_over_bound", "reads", "{:.0f}", "0", lambda v: v == 0, 10)
    absolute("simulated internet, stalling mirror: the worst read against that bound", "inet_stall_jfs_worst_read_vs_bound",
             "×", "{:.2f}", "≤ 1", lambda v: v <= 1, 10)
    absolute("simulated internet, stalling mirror: reads over that bound taken for all the read's slices together "
             "(RTT + their sizes / rate)", "inet_stall_jfs_reads_over_bound_together", "reads", "{:.0f}", "–",
             lambda v: True, 10)
    absolute("simulated internet, stalling mirror, read at 8x DVD speed (11 MB/s): reads over that bound",
             "inet_stall_paced_reads_over_bound", "reads", "{:.0f}", "0", lambda v: v == 0, 10)
    absolute("simulated internet, stalling mirror, read at 8x DVD speed: the worst read against that bound",
             "inet_stall_paced_worst_read_vs_bound", "×", "{:.2f}", "≤ 1", lambda v: v <= 1, 10)
    absolute("simulated internet, stalling mirror, read at 8x DVD speed: the longest single 1 MiB read",
             "inet_stall_paced_longest_read", "s", "{:.2f}", "–", lambda v: True, 10)
    speed("first-ever mount, MD5 template (jigdo-file), every slice hashed", "jfs_first_md5", "ptll_seq_md5",
          "≥ 0.9×", ge(0.9), 8, "passthrough_ll")
    absolute("mount ready, the ISO file as the only source (--scan ISO)", "scan_iso_ready", "s", "{:.3f}", "–",
             lambda v: True, 9)
    absolute("mount ready, the same files in a tree (--scan DIR)", "scan_tree_ready", "s", "{:.3f}", "–",
             lambda v: True, 9)
    speed("whole read, the ISO file as the only source (first mount: scan + read)", "scan_iso_read",
          "scan_tree_read", "–", lambda r: True, 9, "--scan of the tree")
    out = ["| # | measurement | jigdoofus | baseline | ratio | target | met |",
           "|---|---|---|---|---:|---|---|"]
    out += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(out)


def machine():
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    mem = next(int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))
    disk = subprocess.run(["df", "-h", "--output=source,fstype,size", "/var/tmp"], capture_output=True,
                          text=True).stdout.splitlines()[-1].split()
    commit = subprocess.run(["git", "-C", SRC, "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    return (f"{os.cpu_count()} CPUs (nproc), {cpu}, {mem / 2**20:.1f} GiB RAM, kernel {os.uname().release}, "
            f"/var/tmp on {' '.join(disk)}; load average at the end {os.getloadavg()[0]:.1f}; "
            f"jigdoofus commit {commit}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="128 MB corpus, 1 run, fewer random reads (smoke test)")
    ap.add_argument("--runs", type=int, help="runs per measurement, median reported (default 3, --quick 1)")
    ap.add_argument("--slow-runs", type=int, default=1, help="runs of jigdo-lite and httpdirfs (default 1)")
    ap.add_argument("--size-mb", type=int, help="image corpus size (default 1024, --quick 128)")
    ap.add_argument("--only", default="1,2,3,4,5,6,7,8,9,10", help="figures to run, e.g. 1,2,4 (2 comes with 1)")
    ap.add_argument("--rtt-ms", type=int, default=20, help="added round-trip time for figure 3 (default 20)")
    ap.add_argument("--build-dir", default=os.path.join(SRC, "build-bench"))
    ap.add_argument("--bench-dir", default="/var/tmp/jigdoofus-bench")
    ap.add_argument("--no-build", action="store_true", help="use the jigdoofus already in --build-dir")
    a = ap.parse_args()
    a.runs = a.runs or (1 if a.quick else 3)
    a.size_mb = a.size_mb or (128 if a.quick else 1024)
    a.rand_count = 3000 if a.quick else 20000
    a.dvd_read_mb = 256 if a.quick else 1024
    a.only = {int(x) for x in a.only.split(",")}
    if 2 in a.only:
        a.only.add(1)
    if os.geteuid() != 0:
        sys.exit("bench: run as root (FUSE mounts, nginx)")
    os.makedirs(a.bench_dir, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    s = Session(a.bench_dir)
    b = None
    t_start = time.time()
    try:
        b = Bench(a, s)
        b.setup()
        log(f"== image {b.size} bytes, {b.slices} slices; {a.runs} run(s) each")
        for fig, fn in ((1, b.fig12), (8, b.fig8), (9, b.fig9), (4, b.fig4), (6, b.fig6), (5, b.fig5), (7, b.fig7),
                        (3, b.fig3), (10, b.fig10)):
            if fig in a.only:
                fn()
    finally:
        s.cleanup()
    text = (f"command: `/usr/bin/python3 bench/bench.py {' '.join(sys.argv[1:])}`\n\n"
            f"image: {b.size} bytes, {b.slices} slices ({a.size_mb} MB corpus); runs: {a.runs} "
            f"(jigdo-lite, httpdirfs: {a.slow_runs}); wall time {time.time() - t_start:.0f} s\n\n"
            f"machine: {machine()}\n\n{table(b)}\n")
    extras = {k: statistics.median(v) for k, v in b.extra.items()}
    text += "\nother medians: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(extras.items())) + "\n"
    print("\n" + text)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(a.bench_dir, f"results-{stamp}.md"), "w") as f:
        f.write(text)
    with open(os.path.join(a.bench_dir, f"results-{stamp}.json"), "w") as f:
        json.dump({"args": vars(a) | {"only": sorted(a.only)}, "runs": b.r, "extra": b.extra}, f, indent=1)


if __name__ == "__main__":
    main()
