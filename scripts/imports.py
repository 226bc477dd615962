#!/usr/bin/env python3
"""The imports between a crate's module files, and the circles among them.

Usage: scripts/imports.py [--list] SRC_DIR...

Reads every `use` declaration (brace groups included: `use crate::{a::X,
b::{c, d}}`) and every inline `crate::`/`super::`/`self::` path outside
`#[cfg(test)]` modules, resolves each to the longest module file it names,
and prints each circle (files that import one another, directly or not).
With --list it first prints every file's imports, one line per file:
`module -> imported, ...`. Exits 1 if any circle exists.

It reads more than ../shared/tools/import-circles.py, which does not see
brace groups, so it finds every circle that one does and more.
"""
import os
import re
import sys


def modules(src):
    files = {}
    for root, _, names in os.walk(src):
        for n in names:
            if n.endswith(".rs"):
                p = os.path.join(root, n)
                rel = os.path.relpath(p, src)[:-3].split(os.sep)
                if rel[-1] in ("mod", "lib", "main"):
                    rel = rel[:-1]
                files[tuple(rel)] = p
    return files


def strip(text):
    """Drops comments, string literals and #[cfg(test)] items."""
    # One pass, so that `//` inside a string is no comment, and a quote
    # inside a comment or a char literal ('"') starts no string.
    token = re.compile(
        r'//[^\n]*|/\*.*?\*/|r(#*)".*?"\1|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])\'',
        re.S,
    )
    text = token.sub(lambda t: '""' if t.group(0)[0] in "r\"'" else "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        # Skip the item: up to its closing brace (or semicolon).
        j, depth = m.end(), 0
        while j < len(text):
            c = text[j]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    j += 1
                    break
            elif c == ";" and depth == 0:
                j += 1
                break
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def expand(tree):
    """`a::{b, c::{d, e}}` -> [[a, b], [a, c, d], [a, c, e]]."""
    tree = tree.strip()
    if not tree:
        return []
    depth, split = 0, None
    for k, c in enumerate(tree):
        if c == "{":
            if depth == 0 and split is None:
                split = k
            depth += 1
        elif c == "}":
            depth -= 1
    if split is None:
        path = re.sub(r"\s+as\s+\w+$", "", tree).split("::")
        return [[p.strip() for p in path if p.strip()]]
    prefix = [p for p in tree[:split].strip().rstrip(":").split("::") if p.strip()]
    inner = tree[split + 1 : tree.rindex("}")]
    parts, depth, start = [], 0, 0
    for k, c in enumerate(inner):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(inner[start:k])
            start = k + 1
    parts.append(inner[start:])
    paths = []
    for part in parts:
        for sub in expand(part):
            paths.append(prefix + sub)
    return paths


def resolve(path, files):
    for k in range(len(path), 0, -1):
        if tuple(path[:k]) in files:
            return tuple(path[:k])
    return None


def edges(files):
    g = {m: set() for m in files}
    for m, p in files.items():
        text = strip(open(p, encoding="utf-8", errors="replace").read())
        paths = []
        for use in re.findall(r"\buse\s+([^;]+);", text):
            paths.extend(expand(use))
        paths.extend(
            re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", text)
        )
        for path in paths:
            if isinstance(path, str):
                path = path.split("::")
            if not path:
                continue
            head, rest = path[0], path[1:]
            if head == "crate":
                base = []
            elif head == "super":
                base = list(m[:-1])
                while rest and rest[0] == "super":
                    base, rest = base[:-1], rest[1:]
            elif head == "self":
                base = list(m)
            else:
                continue
            t = resolve(base + rest, files)
            if t is not None and t != m:
                g[m].add(t)
    return g


def sccs(g):
    idx, low, st, on, out, n = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        idx[v] = low[v] = n[0]
        n[0] += 1
        st.append(v)
        on.add(v)
        for w in g[v]:
            if w not in idx:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = st.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in sorted(g):
        if v not in idx:
            visit(v)
    return [c for c in out if len(c) > 1]


def name(m):
    return "/".join(m) or "lib"


def main(argv):
    listing = "--list" in argv
    dirs = [a for a in argv if a != "--list"]
    if not dirs:
        print(__doc__.strip().splitlines()[2])
        return 2
    circles, total = 0, 0
    for src in dirs:
        files = modules(src)
        total += len(files)
        g = edges(files)
        if listing:
            print(f"== {src}")
            for m in sorted(g):
                print(f"{name(m)} -> {', '.join(sorted(name(t) for t in g[m]))}")
        for comp in sccs(g):
            circles += 1
            print(f"circle in {src}: " + ", ".join(sorted(name(c) for c in comp)))
    if circles:
        print(f"{circles} import circle(s)")
        return 1
    print(f"no circles in {total} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
