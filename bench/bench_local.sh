#!/usr/bin/env bash
# bench/bench_local.sh: how fast is an image assembled from LOCAL files?
#
# Builds (once; reused if present) a ~1 GB corpus: a tree of random files
# with a Debian-like size spread, an ISO of it made by xorriso with a SHA256
# .jigdo/.template. Then times, alternating methods, RUNS runs each (median
# reported):
#   (a) cat original.iso > /dev/null             the ceiling: page cache -> /dev/null
#   (b) jigdoofus: mount, cat MNT/<image> > /dev/null  (fresh mount and empty
#       --cache-dir each run, so the FUSE page cache and the chunk cache are
#       cold; mount time reported apart)
#   (c) jigit-mkimage -j -t -m Debian=TREE -o /dev/null
#   (d) jigdo-file make-image into /dev/shm (deleted after each run)
# Method: every input (tree, template, original.iso) is WARM in the page cache
# before each run (read once right before), so this measures assembly cost
# (checksumming, copying, FUSE round trips), not the disk. The original ISO
# is kept only for (a) and the final correctness check.
#
# Usage: bench/bench_local.sh            needs root (FUSE mount) and ~2.2 GB disk
# Env:   BENCH_DIR (default /var/tmp/jigdoofus-bench), BUILD_DIR (default build),
#        RUNS (default 3), SIZE_MB (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=${BUILD_DIR:-build}
out=${BENCH_DIR:-/var/tmp/jigdoofus-bench}
runs=${RUNS:-3}
size_mb=${SIZE_MB:-1024}
bin=$src/$build/fs/jigdoofus

for t in xorriso jigit-mkimage jigdo-file fusermount3 /usr/bin/python3; do
  command -v "$t" >/dev/null || { echo "bench: $t missing (.ci/install-deps)" >&2; exit 1; }
done
if [ ! -x "$bin" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C "$build" jigdoofus
fi

# ---------------------------------------------------------------- corpus
if [ ! -f "$out/DONE-$size_mb" ]; then
  echo "== building a ${size_mb} MB corpus in $out (once)"
  rm -rf "$out"; mkdir -p "$out"
  /usr/bin/python3 - "$out/tree" "$size_mb" <<'PY'
import math, os, random, sys
root, target = sys.argv[1], int(sys.argv[2]) << 20
rng = random.Random(1)
total = i = 0
while total < target:
    i += 1
    # Debian-like: ~85% small packages (1-300 KB), the rest 0.3-40 MB
    if rng.random() < 0.85:
        size = int(math.exp(rng.uniform(math.log(1024), math.log(300 << 10))))
    else:
        size = int(math.exp(rng.uniform(math.log(300 << 10), math.log(40 << 20))))
    size = min(size, target - total) or 1
    d = os.path.join(root, "pool", "main", "abcdefghijklmnop"[i % 16], f"pkg{i}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"pkg{i}_1.{i % 7}+b1~deb12u1_amd64.deb"), "wb") as f:
        f.write(os.urandom(size))
    total += size
print(f"   {i} files, {total >> 20} MB")
PY
  (cd "$out/tree" && find "$PWD" -type f | sort | while IFS= read -r f; do
     printf '%s  %12d  %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")" "$f"
   done) > "$out/sha256.list"
  (cd "$out" && xorriso -as mkisofs -quiet -R -J -V JIGDOOFUS_BENCH -o bench.iso \
     -jigdo-jigdo bench.jigdo -jigdo-template bench.template -jigdo-map "Debian=$out/tree/" \
     -checksum-list sha256.list -jigdo-checksum-algorithm sha256 -jigdo-min-file-size 1024 \
     -jigdo-template-compress gzip "$out/tree")
  touch "$out/DONE-$size_mb"
fi
iso=$out/bench.iso
bytes=$(stat -c %s "$iso")
mnt=$out/mnt; mkdir -p "$mnt"
mountpoint -q "$mnt" && fusermount3 -u "$mnt"

warm() { find "$out/tree" -type f -exec cat {} + >/dev/null; cat "$iso" "$out/bench.template" "$out/bench.jigdo" >/dev/null; }
now() { date +%s.%N; }
# the one image of the mount (xorriso's Filename= is "stdio:bench.iso")
mounted_image() { find "$mnt" -maxdepth 1 -type f ! -name '.*' | head -1; }
declare -A times
record() { times[$1]="${times[$1]:-} $2"; }

run_a() { local t0; t0=$(now); cat "$iso" >/dev/null; record a "$(echo "$(now) - $t0" | bc)"; }
run_b() {
  local t0 t1
  rm -rf "$out/cache"
  t0=$(now)
  "$bin" --offline --local "Debian=$out/tree" --cache-dir "$out/cache" "$out/bench.jigdo" "$mnt"
  t1=$(now)
  cat "$(mounted_image)" >/dev/null
  record b "$(echo "$(now) - $t1" | bc)"
  record mount "$(echo "$t1 - $t0" | bc)"
  fusermount3 -u "$mnt"
}
run_c() {
  local t0; t0=$(now)
  jigit-mkimage -j "$out/bench.jigdo" -t "$out/bench.template" -m "Debian=$out/tree/" -o /dev/null 2>"$out/jigit.log"
  record c "$(echo "$(now) - $t0" | bc)"
}
run_d() {
  local t0; t0=$(now)
  jigdo-file make-image --no-cache --force --report=quiet --image=/dev/shm/jigdoofus-bench.iso \
    --jigdo="$out/bench.jigdo" --template="$out/bench.template" "$out/tree//" >"$out/jigdo-file.log" 2>&1
  record d "$(echo "$(now) - $t0" | bc)"
  rm -f /dev/shm/jigdoofus-bench.iso
}

echo "== image: $bytes bytes; $runs runs, alternating a b c d"
for r in $(seq "$runs"); do
  for m in a b c d; do warm; "run_$m"; done
  echo "   run $r done"
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ta=$(echo "${times[a]}" | median)
printf '\n| method | median s | MB/s | time / (a) |\n|---|---:|---:|---:|\n'
for m in a b c d; do
  case $m in
    a) name='(a) `cat original.iso`';;
    b) name='(b) jigdoofus mount, `cat mnt/IMAGE`';;
    c) name='(c) `jigit-mkimage -o /dev/null`';;
    d) name='(d) `jigdo-file make-image` (to /dev/shm)';;
  esac
  t=$(echo "${times[$m]}" | median)
  printf '| %s | %.2f | %.0f | %.1f |\n' "$name" "$t" "$(echo "$bytes / 1048576 / $t" | bc -l)" \
    "$(echo "$t / $ta" | bc -l)"
done
printf '\njigdoofus mount time (median): %.2f s; runs (s): a:%s b:%s c:%s d:%s\n' \
  "$(echo "${times[mount]}" | median)" "${times[a]}" "${times[b]}" "${times[c]}" "${times[d]}"

# correctness (untimed): the mounted image is the original
"$bin" --offline --local "Debian=$out/tree" --cache-dir "$out/cache" "$out/bench.jigdo" "$mnt"
if cmp -s "$(mounted_image)" "$iso"; then echo "check: mounted image == original"; else echo "check: MOUNTED IMAGE DIFFERS" >&2; fusermount3 -u "$mnt"; exit 1; fi
fusermount3 -u "$mnt"
echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
