#!/usr/bin/env bash
# jigdoofus demo, fully offline: makes a tree of package-like files, builds
# an ISO of it with xorriso plus a SHA256 .jigdo/.template (as Debian does),
# records the ISO's SHA256, DELETES the ISO, then mounts the .jigdo with
# jigdoofus (--local: the files are found in the tree) and checks that the
# mounted image has the recorded SHA256. The mount is left up for you to
# look at; the last lines tell how to unmount.
#
# Usage: contrib/demo.sh [WORKDIR]      (default /tmp/jigdoofus-demo)
# Env:   BUILD_DIR (default build), builds jigdoofus there if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=${BUILD_DIR:-build}
work=$(realpath -m "${1:-/tmp/jigdoofus-demo}")
bin=$src/$build/fs/jigdoofus

for tool in xorriso sha256sum fusermount3 cmake ninja; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is missing; run .ci/install-deps (as root)" >&2; exit 1; }
done
if [ ! -x "$bin" ]; then
  echo "== building jigdoofus in $build/"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C "$build" jigdoofus
fi

mnt=$work/mnt
if mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u "$mnt"; fi
rm -rf "$work"
mkdir -p "$work/tree" "$mnt"
tree=$work/tree

echo "== making a tree of package-like files in $tree"
n=0
for section in main contrib non-free-firmware; do
  for pkg in libfoo1 bar-utils g++-12 zlib1g python3-baz linux-image-6.1 nano fonts-x; do
    n=$((n + 1))
    dir=$tree/pool/$section/${pkg:0:1}/$pkg
    mkdir -p "$dir"
    # Debian-like: most packages 1-200 KB, a few of 1-5 MB
    if (( n % 9 == 0 )); then size=$(( (RANDOM % 4000 + 1000) * 1024 ));
    else size=$(( (RANDOM % 200 + 1) * 1024 + RANDOM % 1000 )); fi
    head -c "$size" /dev/urandom > "$dir/${pkg}_1.$n+deb12u1~demo_amd64.deb"
  done
done
echo "   $(find "$tree" -type f | wc -l) files, $(du -sh "$tree" | cut -f1)"

echo "== building demo.iso + demo.jigdo + demo.template with xorriso (SHA256)"
cd "$work"
find "$tree" -type f | sort | while IFS= read -r f; do
  printf '%s  %12d  %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")" "$f"
done > sha256.list
xorriso -as mkisofs -quiet -R -J -V JIGDOOFUS_DEMO -o demo.iso \
  -jigdo-jigdo demo.jigdo -jigdo-template demo.template \
  -jigdo-map "Debian=$tree/" -checksum-list sha256.list -jigdo-checksum-algorithm sha256 \
  -jigdo-min-file-size 1024 -jigdo-template-compress gzip "$tree" 2>xorriso.log \
  || { cat xorriso.log >&2; exit 1; }
# like debian-cd, tidy what xorriso wrote: Filename=stdio:demo.iso (its drive
# address) -> demo.iso; Template=http://localhost/... -> beside the .jigdo
sed -i -e 's/^Filename=stdio:/Filename=/' -e 's|^Template=.*/|Template=|' demo.jigdo
want=$(sha256sum demo.iso | cut -d' ' -f1)
echo "   demo.iso $(stat -c %s demo.iso) bytes, sha256 $want"
echo "   template $(stat -c %s demo.template) bytes"
rm demo.iso
echo "== demo.iso deleted; mounting demo.jigdo with jigdoofus"
(set -x; "$bin" --offline --local "Debian=$tree" --cache-dir "$work/cache" "$work/demo.jigdo" "$mnt")
ls -l "$mnt"
img=$(find "$mnt" -maxdepth 1 -type f ! -name '.*' | head -1)
got=$(sha256sum "$img" | cut -d' ' -f1)
echo "   recorded sha256: $want"
echo "   mounted  sha256: $got"
if [ "$got" != "$want" ]; then
  echo "demo: FAILED, the mounted image differs from the original" >&2
  exit 1
fi
echo "== OK: the image was assembled on the fly, bit-exact."
echo "   status:   cat $mnt/.jigdoofus-status"
echo "   unmount:  fusermount3 -u $mnt"
