#!/usr/bin/env python3
"""Checks that the workspace's `rust-version` is what the code needs.

Sigil's members declare `rust-version` in their Cargo.toml. Two things need
a newer compiler than a too-low value would claim:

- a dependency whose own `rust-version` is higher (read here from
  `cargo metadata`, for every package the locked graph resolves), and
- our own code using a std API or a language feature stabilised later:
  clippy's `incompatible_msrv` lint (on under `-D warnings` in CI) reads
  `rust-version` and refuses such std APIs; let-chains (edition 2024)
  need 1.88.

This script fails when a member declares none, when members disagree, or
when any resolved dependency needs more than the members declare; it
prints the dependency that needs the most either way.
"""
import json
import subprocess
import sys


def version(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    meta = json.loads(
        subprocess.check_output(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            text=True,
        )
    )
    members = set(meta["workspace_members"])
    packages = {p["id"]: p for p in meta["packages"]}
    declared = {}
    for pid in members:
        p = packages[pid]
        if not p.get("rust_version"):
            print(f"msrv: {p['name']} declares no rust-version")
            return 1
        declared[p["name"]] = version(p["rust_version"])
    if len(set(declared.values())) != 1:
        print(f"msrv: the members disagree: {declared}")
        return 1
    ours = next(iter(declared.values()))
    # The packages the resolved graph actually uses (every target, every
    # feature the lockfile resolved), not every one the registry index lists.
    used = {n["id"] for n in meta["resolve"]["nodes"]} - members
    needs = sorted(
        (
            (version(packages[pid]["rust_version"]), packages[pid]["name"], packages[pid]["version"])
            for pid in used
            if packages[pid].get("rust_version")
        ),
        reverse=True,
    )
    shown = ".".join(str(n) for n in ours)
    if not needs:
        print(f"msrv ok: rust-version {shown}; no dependency declares one")
        return 0
    top, name, ver = needs[0]
    top_shown = ".".join(str(n) for n in top)
    if top > ours:
        too_new = [f"{n} {v} ({'.'.join(map(str, t))})" for t, n, v in needs if t > ours]
        print(f"msrv: rust-version {shown} is too low; these need more: {', '.join(too_new)}")
        return 1
    print(f"msrv ok: rust-version {shown}; the most any dependency needs is {top_shown} ({name} {ver})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
