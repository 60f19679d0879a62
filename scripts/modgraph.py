#!/usr/bin/env python3
"""The module graph of engine/src, computed from its `use` lines and paths.

Nodes: top-level modules of the engine crate (`wire`, `nat`, ...), except that
`dataplane` is split file by file (`dataplane::pipeline`, ...). An edge A -> B
means non-test code in A names `crate::B...` (or reaches B through `super::`).
Test code is left out: `#[cfg(test)]` items and files only compiled for tests
(`mod x;` declared under `#[cfg(test)]`, files named `*tests.rs` or `tests/`).

Usage:
  scripts/modgraph.py            print the edges and fail (exit 1) on any cycle
  scripts/modgraph.py --floors   also check that each module imports only from
                                 floors below its own (docs/ARCHITECTURE.md,
                                 "Floors"); a new top-level module must be
                                 given a floor in FLOORS below
  scripts/modgraph.py --dot      print the graph in Graphviz dot

Run by scripts/test.sh; keeps the layering of issue #19.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "engine", "src")
if "--root" in sys.argv:
    ROOT = sys.argv[sys.argv.index("--root") + 1]
SPLIT = {"dataplane"}  # modules counted file by file

# The floors (docs/ARCHITECTURE.md, "Floors"). A module may import modules of
# a lower floor; within one floor, only the edges listed in SAME_FLOOR.
FLOORS = {
    # 1: data structures and I/O, no packet policy
    "wire": 1, "xsk": 1, "steer": 1, "l3": 1, "mac_table": 1, "neighbor": 1, "conntrack": 1,
    "hashing": 1, "slab": 1, "status": 1, "validate": 1, "cbpf": 1, "rss": 1,
    # 2: the frame context every stage shares
    "context": 2,
    # 3: the features
    "router": 3, "l2": 3, "filter": 3, "nat": 3, "lb": 3, "tcp": 3, "impair": 3,
    # 4: the pipeline and the worker loop
    "dataplane::pipeline": 4, "dataplane::worker": 4, "dataplane::tables": 4, "dataplane::mod": 4,
    # 5: control, then runtime, then the binary
    "control": 5, "runtime": 6, "main": 7, "lib": 7,
}
# Edges allowed inside a floor (everything else goes down only). Floor 1's
# structures may use the wire formats and the two generic helpers; floor 4's
# worker drives the pipeline, both read the tables.
SAME_FLOOR = {
    ("conntrack", "wire"), ("mac_table", "wire"), ("neighbor", "wire"), ("steer", "wire"),
    ("l3", "wire"), ("xsk", "wire"),
    ("conntrack", "hashing"), ("mac_table", "hashing"), ("neighbor", "hashing"),
    ("conntrack", "slab"), ("conntrack", "rss"),
    ("dataplane::worker", "dataplane::pipeline"), ("dataplane::worker", "dataplane::tables"),
    ("dataplane::pipeline", "dataplane::tables"),
    ("dataplane::mod", "dataplane::pipeline"), ("dataplane::mod", "dataplane::worker"),
    ("dataplane::mod", "dataplane::tables"),
}


def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    out = []
    for line in src.split("\n"):
        # drop // comments (string literals with // in use lines are not a concern)
        i = line.find("//")
        if i >= 0:
            line = line[:i]
        out.append(line)
    return "\n".join(out)


def strip_cfg_test(src):
    """Remove items under #[cfg(test)] (a `mod x { ... }` block or a single item)."""
    out = []
    i = 0
    pat = re.compile(r"#\[cfg\(test\)\]")
    while True:
        m = pat.search(src, i)
        if not m:
            out.append(src[i:])
            break
        out.append(src[i:m.start()])
        j = m.end()
        # the item runs to the matching '}' of its first '{', or to the first ';' if earlier
        depth = 0
        k = j
        while k < len(src):
            c = src[k]
            if c == ";" and depth == 0:
                k += 1
                break
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    k += 1
                    break
            k += 1
        i = k
    return "".join(out)


def test_only_mods(src):
    return set(re.findall(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", src))


def module_of(rel):
    """Path relative to src -> (node, module path list)."""
    parts = rel[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts == ["lib"]:
        return "lib", []
    if parts == ["main"]:
        return "main", []
    top = parts[0]
    if top in SPLIT:
        node = f"{top}::{parts[1] if len(parts) > 1 else 'mod'}"
    else:
        node = top
    return node, parts


def node_for_path(segs):
    """A crate-absolute path (list of segments) -> node."""
    if not segs:
        return None
    top = segs[0]
    if top in SPLIT:
        if len(segs) > 1 and os.path.exists(os.path.join(ROOT, top, segs[1] + ".rs")):
            return f"{top}::{segs[1]}"
        return f"{top}::mod"
    if os.path.exists(os.path.join(ROOT, top + ".rs")) or os.path.isdir(os.path.join(ROOT, top)):
        return top
    return None


def expand_use_tree(text):
    """Expand a use tree such as `crate::{a::{b, c}, d}` into flat paths."""
    text = re.sub(r"\s+", "", text)
    def rec(prefix, t):
        # split t at top-level commas
        items, depth, cur = [], 0, ""
        for c in t:
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            if c == "," and depth == 0:
                items.append(cur)
                cur = ""
            else:
                cur += c
        if cur:
            items.append(cur)
        res = []
        for it in items:
            if "{" in it:
                head, rest = it.split("{", 1)
                rest = rest[: rest.rfind("}")]
                res += rec(prefix + head, rest)
            else:
                res.append(prefix + it)
        return res
    return rec("", text)


def resolve(path, modpath):
    """A path as written in module `modpath` -> crate-absolute segments, or None."""
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    if segs[0] == "crate":
        return segs[1:]
    if segs[0] in ("super", "self"):
        base = list(modpath)
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
        return base + segs
    return None


def collect():
    edges = {}
    files = []
    test_files = set()
    for dirpath, _, names in os.walk(ROOT):
        for n in names:
            if n.endswith(".rs"):
                files.append(os.path.relpath(os.path.join(dirpath, n), ROOT))
    # files declared test-only by their parent
    for rel in files:
        src = open(os.path.join(ROOT, rel)).read()
        d = os.path.dirname(rel)
        base = os.path.basename(rel)[:-3]
        sub = d if base in ("mod", "lib", "main") else os.path.join(d, base)
        for m in test_only_mods(src):
            test_files.add(os.path.normpath(os.path.join(sub, m + ".rs")))
            test_files.add(os.path.normpath(os.path.join(sub, m, "mod.rs")))
    for rel in sorted(files):
        if rel in test_files or any(rel.startswith(t[:-3] + os.sep) for t in test_files):
            continue
        if rel.endswith("tests.rs") or f"{os.sep}tests{os.sep}" in rel:
            continue
        node, modpath = module_of(rel)
        src = strip_cfg_test(strip_comments(open(os.path.join(ROOT, rel)).read()))
        paths = []
        for m in re.finditer(r"\buse\s+([^;]+);", src):
            paths += expand_use_tree(m.group(1))
        for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", src):
            paths.append(m.group(1))
        for p in paths:
            p = p.split(" as ")[0]
            segs = resolve(p.replace("as", " as ").split(" as ")[0] if False else p, modpath)
            if segs is None:
                continue
            tgt = node_for_path(segs)
            if tgt is None or tgt == node:
                continue
            edges.setdefault(node, {}).setdefault(tgt, set()).add(rel)
    return edges


def cycles(edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    nodes = set(edges) | {t for v in edges.values() for t in v}

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return out


def self_test():
    """The checker must catch what it is for: a two-module cycle through a
    use tree and a `super::` path, a test-only import that must not count,
    and an import up the floors."""
    import tempfile
    global ROOT
    saved = ROOT
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "nat"))
        os.makedirs(os.path.join(d, "dataplane"))
        files = {
            "lib.rs": "pub mod nat;\npub mod router;\npub mod wire;\npub mod dataplane;\n",
            "wire.rs": "#[cfg(test)]\nmod tests {\n    use crate::router::X;\n}\n",
            "router.rs": "use crate::{wire::A, nat::{stage::B}};\n",
            "nat/mod.rs": "pub mod stage;\n#[cfg(test)]\nmod pipeline_tests;\n",
            "nat/stage.rs": "fn f() { crate::dataplane::pipeline::go(); }\n",
            "nat/pipeline_tests.rs": "use crate::wire::Z;\nuse crate::router::Y;\n",
            "dataplane/mod.rs": "pub mod pipeline;\n",
            "dataplane/pipeline.rs": "use super::super::router::ip4;\n",
        }
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        ROOT = d
        edges = collect()
        ROOT = saved
    got = {(a, b) for a in edges for b in edges[a]}
    # `mod x;` declares, it does not import; the test-only uses do not count.
    want = {("router", "wire"), ("router", "nat"), ("nat", "dataplane::pipeline"), ("dataplane::pipeline", "router")}
    ok = True
    if got != want:
        print(f"self-test: edges {sorted(got)}, expected {sorted(want)}", file=sys.stderr)
        ok = False
    cyc = cycles(edges)
    if cyc != [["dataplane::pipeline", "nat", "router"]]:
        print(f"self-test: cycles {cyc}, expected one of dataplane::pipeline, nat, router", file=sys.stderr)
        ok = False
    up = [(a, b) for (a, b) in got if a in FLOORS and b in FLOORS and FLOORS[b] > FLOORS[a]]
    if up != [("nat", "dataplane::pipeline")]:
        print(f"self-test: upward edges {sorted(up)}, expected nat -> dataplane::pipeline", file=sys.stderr)
        ok = False
    print("modgraph self-test: " + ("ok" if ok else "FAILED"))
    return 0 if ok else 1


def main():
    if "--self-test" in sys.argv:
        return self_test()
    edges = collect()
    if "--dot" in sys.argv:
        print("digraph engine {")
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f'  "{a}" -> "{b}";')
        print("}")
        return 0
    for a in sorted(edges):
        print(f"{a} -> {', '.join(sorted(edges[a]))}")
    bad = 0
    for comp in cycles(edges):
        bad += 1
        print(f"CYCLE: {' <-> '.join(comp)}", file=sys.stderr)
        for a in comp:
            for b in sorted(edges.get(a, {})):
                if b in comp:
                    print(f"   {a} -> {b}  ({', '.join(sorted(edges[a][b]))})", file=sys.stderr)
    if "--floors" in sys.argv:
        for a in sorted(edges):
            for b in sorted(edges[a]):
                fa, fb = FLOORS.get(a), FLOORS.get(b)
                if fa is None or fb is None:
                    print(f"FLOOR: unknown module {a if fa is None else b}", file=sys.stderr)
                    bad += 1
                elif fb > fa or (fb == fa and (a, b) not in SAME_FLOOR):
                    print(f"FLOOR: {a} (floor {fa}) imports {b} (floor {fb})  "
                          f"({', '.join(sorted(edges[a][b]))})", file=sys.stderr)
                    bad += 1
    if bad:
        print(f"module graph: {bad} violation(s)", file=sys.stderr)
        return 1
    print("module graph: no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
