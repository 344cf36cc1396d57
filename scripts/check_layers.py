#!/usr/bin/env python3
"""Checks the workspace's layering; exits 1 naming every offending edge, 0 when all is well.

1. Crate direction (always): every dependency between workspace crates, read from
   `cargo metadata --format-version 1 --no-deps`, must be in ALLOWED below (the README's
   "Crates" section states the same rule). Normal, build and dev dependencies are all checked
   against the same table: a test that needs two components together (say the controller and a
   DME) belongs to the root package's tests/, where everything is allowed, not to a dev-dependency
   that makes one component's crate link another.
2. Module cycles (for each crate directory given as an argument): no import cycle among the
   top-level modules of CRATE_DIR/src. A top-level module is each file or directory directly
   under src (lib.rs/main.rs are the root, src/bin holds other crates; a file pulled in with
   `#[path = ...]` belongs to the module that declares it). Module A imports B when a file of A
   names `crate::B`, `crate::{.., B, ..}`, or reaches the crate root with `super::` and names B
   there; a name the root re-exports (`pub use b::Thing;`) counts as its module. Comments and
   string literals are ignored, and so is test code (`#[cfg(test)] mod x { .. }` blocks, and the
   `tests.rs` / `tests/` files the README's test-placement rule puts tests in): a test may use an
   oracle module that itself uses the module under test (dme's matcher tests and `baseline`).
   A crate's dev-dependency on itself (to turn on its own `testing` feature) is allowed.

Usage: scripts/check_layers.py [CRATE_DIR ...]     e.g. scripts/check_layers.py dataplane dme
Python 3 standard library only.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LEAVES = {"geodata", "edge-model", "quic-lb", "edge-tls"}
WIRE = LEAVES | {"edge-api", "dme-api"}
LIBS = WIRE | {"edge-auth", "edge-store", "controller", "crm", "dme", "dataplane", "shepherd", "edge-dns", "edgectl", "mc"}

# Crate -> the workspace crates it may depend on. Dependencies point down only;
# controller, dme, dataplane and shepherd never depend on each other (nor on a CRM); edgectl is
# a client and links no component. A new crate must be added here.
ALLOWED = {
    "geodata": set(),
    "quic-lb": set(),
    "edge-tls": set(),
    # Tokens: the MC issues them, the DME (and the MC's CAMARA front) verify them.
    "edge-auth": {"edge-tls"},
    "edge-model": {"geodata"},
    "edge-api": LEAVES,
    "dme-api": LEAVES,
    "edge-store": WIRE,
    "controller": WIRE | {"edge-store"},
    "dme": WIRE | {"edge-store", "edge-auth"},
    "dataplane": WIRE | {"edge-store"},
    "shepherd": WIRE,
    # A cloudlet's CRM: a notify subscriber beside the controller, DME and root LB.
    "crm": WIRE,
    # The region DNS: a notify subscriber beside the controller, DME and root LB.
    "edge-dns": LEAVES | {"edge-api"},
    "edgectl": WIRE,
    # The master controller: a client of the controllers' API, in front of them.
    "mc": WIRE | {"edge-auth"},
    "edgeplane": LIBS,
    "edgeplane-benches": LIBS,
    "loadtests": LIBS | {"edgeplane-benches"},
}


def crate_violations():
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"check_layers: cargo metadata failed:\n{out.stderr}")
    packages = json.loads(out.stdout)["packages"]
    members = {p["name"] for p in packages}
    errors = []
    for p in sorted(packages, key=lambda p: p["name"]):
        name = p["name"]
        if name not in ALLOWED:
            errors.append(
                f"crate {name} ({Path(p['manifest_path']).parent.relative_to(ROOT)}) is not in "
                "the table of scripts/check_layers.py: add it with the crates it may depend on"
            )
            continue
        for d in p["dependencies"]:
            dep = d["name"]
            kind = d["kind"] or "normal"
            if dep not in members or dep in ALLOWED[name] or (dep == name and kind == "dev"):
                continue
            allowed = ", ".join(sorted(ALLOWED[name])) or "no workspace crate"
            errors.append(
                f"{name} -> {dep} ({kind} dependency) goes against the crate direction: "
                f"{name} may depend only on {allowed} (table in scripts/check_layers.py, "
                "README \"Crates\")"
            )
    return errors


# --- module cycles ---------------------------------------------------------------------------

TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<line_comment>//[^\n]*)
      | (?P<block_comment>/\*)
      | (?P<raw_str>b?r(?P<hashes>\#*)")
      | (?P<str>b?")
      | (?P<char>b?'(?:\\u\{[0-9a-fA-F]+\}|\\.|[^\\'\n])')
      | (?P<ident>\$?[A-Za-z_][A-Za-z0-9_]*)
      | (?P<path_sep>::)
      | (?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)


def tokens(text):
    """(kind, value, line) for identifiers and punctuation; comments and literals dropped."""
    out, i, line = [], 0, 1
    while i < len(text):
        m = TOKEN.match(text, i)
        kind = m.lastgroup if m.lastgroup != "hashes" else "raw_str"
        end = m.end()
        if kind == "block_comment":
            depth, j = 1, end
            while depth and j < len(text):
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            end = j
        elif kind == "raw_str":
            close = '"' + m.group("hashes")
            j = text.find(close, end)
            end = len(text) if j < 0 else j + len(close)
        elif kind == "str":
            j = end
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            end = j + 1
        elif kind == "ident":
            out.append(("ident", m.group(), line))
        elif kind in ("path_sep", "other"):
            out.append((kind, m.group(), line))
        line += text.count("\n", i, end)
        i = end
    return out


def without_tests(toks):
    """`toks` without `#[cfg(test)] mod name { ... }` blocks."""
    pattern = ["#", "[", "cfg", "(", "test", ")", "]"]
    out, i = [], 0
    while i < len(toks):
        if [v for _, v, _ in toks[i : i + 7]] == pattern:
            j = i + 7
            if j < len(toks) and toks[j][1] == "pub":
                j += 1
            if j + 2 < len(toks) and toks[j][1] == "mod" and toks[j + 2][1] == "{":
                depth, k = 0, j + 2
                while k < len(toks):
                    depth += {"{": 1, "}": -1}.get(toks[k][1], 0)
                    k += 1
                    if depth == 0:
                        break
                i = k
                continue
        out.append(toks[i])
        i += 1
    return out


def is_test_file(f, src):
    parts = f.relative_to(src).parts
    return f.name == "tests.rs" or "tests" in parts[:-1]


def use_tree_heads(toks, i):
    """First identifiers of each item of the use group opening at toks[i] == '{'."""
    heads, depth, want = [], 0, True
    for kind, value, line in toks[i:]:
        if value == "{":
            depth += 1
            want = want and depth == 1
        elif value == "}":
            depth -= 1
            if depth == 0:
                break
        elif value == "," and depth == 1:
            want = True
        elif kind == "ident" and want and depth == 1:
            heads.append((value, line))
            want = False
    return heads


def root_paths(toks, file_depth):
    """(name, line) of every name a file reaches at the crate root: `crate::name`, a use group
    at the root, or as many `super::` as the module is deep."""
    found, brace_stack, i = [], [], 0
    while i < len(toks):
        kind, value, line = toks[i]
        if value == "{":
            prev = toks[i - 2] if i >= 2 else None
            brace_stack.append(prev is not None and prev[1] == "mod")
        elif value == "}" and brace_stack:
            brace_stack.pop()
        at_start = i == 0 or toks[i - 1][1] != "::"
        j = None
        if value == "crate" and at_start:
            j = i + 1
        elif value == "super" and at_start:
            j, supers = i, 0
            while j + 1 < len(toks) and toks[j][1] == "super" and toks[j + 1][1] == "::":
                supers, j = supers + 1, j + 2
            if supers != file_depth + sum(brace_stack):
                i = max(j, i + 1)
                continue
            j -= 1
        if j is not None and j + 1 < len(toks) and toks[j][1] == "::":
            nxt = toks[j + 1]
            if nxt[0] == "ident":
                found.append((nxt[1], nxt[2]))
            elif nxt[1] == "{":
                found.extend(use_tree_heads(toks, j + 1))
        i += 1
    return found


def root_reexports(toks):
    """Names the crate root re-exports with `pub use m::...;`, mapped to module m."""
    names, i = {}, 0
    while i < len(toks):
        if toks[i][1] == "use" and i and toks[i - 1][1] in ("pub", ")"):
            j = i + 1
            module = toks[j][1]
            while j < len(toks) and toks[j][1] != ";":
                kind, value = toks[j][0], toks[j][1]
                after = toks[j + 1][1] if j + 1 < len(toks) else ";"
                if kind == "ident" and after in (",", "}", ";") and value not in ("self", "*"):
                    names[value] = module
                j += 1
            i = j
        i += 1
    return names


PATH_ATTR = re.compile(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*;')


def module_files(src):
    """{top-level module: [(file, depth)]} and the crate root file."""
    files, owner = {}, {}
    for entry in sorted(src.iterdir()):
        name = entry.stem if entry.suffix == ".rs" else entry.name
        if entry.is_file() and entry.suffix == ".rs" and name not in ("lib", "main"):
            owner[entry] = (name, 1)
        elif entry.is_dir() and name != "bin":
            for f in sorted(entry.rglob("*.rs")):
                parts = f.relative_to(src).parts
                owner[f] = (name, len(parts) - 1 if parts[-1] == "mod.rs" else len(parts))
    # `#[path]` files are children of the module that declares them (not top-level modules).
    for f, (module, depth) in list(owner.items()):
        for target in PATH_ATTR.findall(f.read_text(encoding="utf-8")):
            t = (f.parent / target).resolve()
            for g in owner:
                if g.resolve() == t:
                    owner[g] = (module, depth + 1)
    for f, (module, depth) in owner.items():
        files.setdefault(module, []).append((f, depth))
    root = next((src / r for r in ("lib.rs", "main.rs") if (src / r).exists()), None)
    return files, root


def module_edges(src):
    """{A: {B: (file, line)}}: the first place each top-level module A reaches module B."""
    files, root = module_files(src)
    reexports = root_reexports(tokens(root.read_text(encoding="utf-8"))) if root else {}
    edges = {m: {} for m in files}
    for module, fs in files.items():
        for f, depth in fs:
            if is_test_file(f, src):
                continue
            toks = without_tests(tokens(f.read_text(encoding="utf-8")))
            for name, line in root_paths(toks, depth):
                target = name if name in files else reexports.get(name)
                if target in files and target != module:
                    edges[module].setdefault(target, (f, line))
    return edges


def cycles(edges):
    """One cycle path per strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on_stack, sccs = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.add(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(scc)

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            strong(v)
    result = []
    for scc in sorted(sccs, key=min):
        start = min(scc)
        # Shortest way back to start inside the component (breadth first).
        prev, frontier, path = {start: None}, [start], None
        while path is None:
            nxt = []
            for v in frontier:
                if start in edges[v]:
                    path = [start]
                    while v is not None:
                        path.append(v)
                        v = prev[v]
                    path = path[::-1]
                    break
                for w in sorted(edges[v]):
                    if w in scc and w not in prev:
                        prev[w] = v
                        nxt.append(w)
            frontier = nxt
        result.append((sorted(scc), path))
    return result


def shown(path):
    try:
        return path.relative_to(ROOT)
    except ValueError:
        return path


def module_violations(crate_dir):
    src = (Path.cwd() / crate_dir / "src").resolve()
    if not src.is_dir():
        sys.exit(f"check_layers: {crate_dir}: no src directory at {src}")
    edges = module_edges(src)
    errors = []
    for members, path in cycles(edges):
        head = f"{crate_dir}/src: import cycle among top-level modules: {' -> '.join(path)}"
        if len(members) > len(path) - 1:
            head += f" ({', '.join(members)} are all in one loop)"
        lines = [head]
        for a, b in zip(path, path[1:]):
            f, line = edges[a][b]
            lines.append(f"    {a} -> {b}: {shown(f)}:{line}")
        errors.append("\n".join(lines))
    return errors


def main(argv):
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    errors = crate_violations()
    for crate_dir in argv:
        errors += module_violations(crate_dir)
    for e in errors:
        print(f"check_layers: {e}", file=sys.stderr)
    if errors:
        print(f"check_layers: {len(errors)} violation(s)", file=sys.stderr)
        return 1
    checked = f"; no module cycles in {', '.join(argv)}" if argv else ""
    print(f"check_layers: crate direction ok{checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
