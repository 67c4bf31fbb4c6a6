"""Starting and stopping jigdoofus mounts from tests.

mount_jigdoofus() runs the binary the way a user does (it returns once the
mount is ready), with a timeout; Mount.unmount() uses fusermount3 -u and
falls back to a lazy unmount so a broken daemon never leaves a mount behind.
The daemon's stdout/stderr go to files, not pipes: a daemon that forgot to
detach from them must not make subprocess.run() wait for its exit.
"""

import json
import os
import subprocess
import time
from pathlib import Path

STATUS_FILE = ".jigdoofus-status"
MOUNT_TIMEOUT_S = 30


def _executable_from_env(var):
    b = os.environ.get(var)
    if not b:
        raise RuntimeError(f"{var} is not set (run through ctest / tests/run-all)")
    if not os.access(b, os.X_OK):
        raise RuntimeError(f"{var}={b} is not an executable")
    return b


def binary():
    return _executable_from_env("JIGDOOFUS_BIN")


def cat_binary():
    return _executable_from_env("JIGDOOFUS_CAT")


def ctl_binary():
    return _executable_from_env("JIGDOOFUS_CTL")


def mounts_under(prefix):
    """Mount points (from /proc/self/mounts) at or below prefix."""
    prefix = str(prefix)
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            mp = line.split()[1].replace("\\040", " ")
            if mp == prefix or mp.startswith(prefix.rstrip("/") + "/"):
                out.append(mp)
    return out


def is_mounted(path):
    return str(path) in mounts_under(path)


def fuse_type_of(path):
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if parts[1].replace("\\040", " ") == str(path):
                return parts[2]
    return None


def run_captured(cmd, tmpdir, timeout, env=None):
    """Runs cmd with stdout/stderr redirected to files under tmpdir.
    Returns (returncode, stdout, stderr); raises AssertionError on timeout."""
    tmpdir = Path(tmpdir)
    tmpdir.mkdir(parents=True, exist_ok=True)
    n = len(list(tmpdir.glob("out.*")))
    so, se = tmpdir / f"out.{n}", tmpdir / f"err.{n}"
    with open(so, "wb") as fo, open(se, "wb") as fe:
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                               timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"timed out after {timeout}s: {' '.join(map(str, cmd))}\n"
                                 f"stderr so far: {se.read_text(errors='replace')[-2000:]}")
    return (p.returncode, so.read_text(errors="replace"), se.read_text(errors="replace"))


class Mount:
    def __init__(self, mountpoint, cmd, stderr):
        self.mountpoint = Path(mountpoint)
        self.cmd = cmd
        self.stderr = stderr

    def path(self, name):
        return self.mountpoint / name

    def status(self):
        return json.loads((self.mountpoint / STATUS_FILE).read_text())

    def unmount(self):
        """Unmounts, then waits (up to 10 s) for the daemon to end: it
        still writes to its cache dir while it shuts down."""
        if not is_mounted(self.mountpoint):
            return
        pids = daemon_pids(self.mountpoint)
        self._unmount()
        deadline = time.time() + 10
        while time.time() < deadline and any(os.path.exists(f"/proc/{p}") and not _zombie(p) for p in pids):
            time.sleep(0.02)

    def _unmount(self):
        p = subprocess.run(["fusermount3", "-u", str(self.mountpoint)],
                           capture_output=True, text=True)
        deadline = time.time() + 10
        while p.returncode != 0 and time.time() < deadline:
            time.sleep(0.2)  # EBUSY right after a read: retry briefly
            p = subprocess.run(["fusermount3", "-u", str(self.mountpoint)],
                               capture_output=True, text=True)
        if p.returncode != 0:
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)])
            raise AssertionError(f"fusermount3 -u {self.mountpoint} failed: {p.stderr.strip()}")


def mount_jigdoofus(sources, mountpoint, *, cache_dir, extra=(), workdir, env=None,
                    expect_ok=True):
    """Runs `jigdoofus [--cache-dir C] EXTRA... SOURCES... MOUNTPOINT`.
    Returns a Mount (caller must unmount). Fails the test with the daemon's
    stderr if it does not come up."""
    mountpoint = Path(mountpoint)
    mountpoint.mkdir(parents=True, exist_ok=True)
    cmd = [binary()]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    cmd += [str(x) for x in extra] + [str(s) for s in sources] + [str(mountpoint)]
    rc, out, err = run_captured(cmd, workdir, MOUNT_TIMEOUT_S, env=env)
    m = Mount(mountpoint, cmd, err)
    if rc != 0 or not is_mounted(mountpoint):
        if is_mounted(mountpoint):
            m.unmount()
        raise AssertionError(
            f"jigdoofus did not mount (exit {rc}, mounted={is_mounted(mountpoint)}):\n"
            f"  {' '.join(cmd)}\n  stderr: {err.strip()[-2000:]}")
    return m


def _zombie(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def daemon_pids(mountpoint):
    """Pids of the jigdoofus processes whose command line names
    `mountpoint` (the daemon serving it), found in /proc."""
    exe = os.path.basename(binary())
    want = str(mountpoint).encode()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            args = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and os.path.basename(args[0].decode(errors="replace")) == exe and want in args:
            pids.append(int(d))
    return pids


class ForegroundMount(Mount):
    """A mount whose daemon runs in the foreground (-f) as our child:
    its pid is known (kill -9 tests) and its log is a file (log_text())."""

    def __init__(self, mountpoint, cmd, proc, log):
        super().__init__(mountpoint, cmd, "")
        self.proc = proc
        self.log = Path(log)

    def log_text(self):
        return self.log.read_text(errors="replace")

    def unmount(self):
        try:
            super().unmount()
        finally:
            if self.proc.poll() is None:
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)


def mount_foreground(sources, mountpoint, *, cache_dir, extra=(), workdir, env=None):
    """Runs `jigdoofus -f ...` in the background and waits until the mount is
    there. The caller (or the jig fixture, via adopt) must unmount."""
    mountpoint = Path(mountpoint)
    mountpoint.mkdir(parents=True, exist_ok=True)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"fg.{len(list(workdir.glob('fg.*')))}.log"
    cmd = [binary(), "-f", "--cache-dir", str(cache_dir)] + [str(x) for x in extra] + \
        [str(s) for s in sources] + [str(mountpoint)]
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=env)
    deadline = time.time() + MOUNT_TIMEOUT_S
    while time.time() < deadline:
        if is_mounted(mountpoint):
            return ForegroundMount(mountpoint, cmd, proc, log)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)
    raise AssertionError(f"jigdoofus -f did not mount: {' '.join(cmd)}\n"
                         f"  log: {log.read_text(errors='replace')[-2000:]}")
