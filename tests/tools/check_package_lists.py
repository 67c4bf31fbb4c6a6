#!/usr/bin/env python3
"""The package lists must agree: README.md's (between <!-- packages:begin -->
and <!-- packages:end -->) names exactly the packages .ci/install-deps
installs, and every Build-Depends of debian/control is among them.
Exits 1 naming what differs."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def install_deps():
    text = (ROOT / ".ci" / "install-deps").read_text()
    body = re.search(r"^pkgs=\((.*?)^\)", text, re.S | re.M).group(1)
    return {w for line in body.splitlines() for w in line.split("#", 1)[0].split()}


def readme():
    text = (ROOT / "README.md").read_text()
    body = re.search(r"<!-- packages:begin -->(.*?)<!-- packages:end -->", text, re.S).group(1)
    words = set()
    for line in body.splitlines():
        line = line.split(":", 1)[1] if re.match(r"\s*[a-z]+:", line) else line
        words.update(line.split())
    return words


def build_depends():
    text = (ROOT / "debian" / "control").read_text()
    field = re.search(r"^Build-Depends:(.*?)^\S", text, re.S | re.M).group(1)
    names = set()
    for item in field.split(","):
        name = re.sub(r"[(<\[].*", "", item).strip()
        if name and name != "debhelper-compat":
            names.add(name)
    return names


def main():
    deps, listed, build = install_deps(), readme(), build_depends()
    problems = []
    if listed - deps:
        problems.append(f"README lists packages .ci/install-deps does not install: {sorted(listed - deps)}")
    if deps - listed:
        problems.append(f"README does not list packages .ci/install-deps installs: {sorted(deps - listed)}")
    if build - deps:
        problems.append(f"debian/control Build-Depends not in .ci/install-deps: {sorted(build - deps)}")
    for p in problems:
        print("check_package_lists: " + p, file=sys.stderr)
    if not problems:
        print(f"check_package_lists: {len(deps)} packages agree; {len(build)} build dependencies covered")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
