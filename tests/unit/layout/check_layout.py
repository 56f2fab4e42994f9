#!/usr/bin/env python3
"""The tree's shape, as DESIGN.md draws it, checked on every build.

  1. Rooms depend on each other one way only: each room's quoted
     `#include "room/..."` lines may name only the rooms ALLOWED lists.
  2. Inside a room there is no include cycle between its files.
  3. A room's source file holds one concern: past MAX_LINES lines its
     opening comment must say why one concern needs more, with a line
     that starts 'Size:'.

Usage: check_layout.py SOURCE_ROOT [--self-test]
Prints every violation as FILE:LINE: message and exits 1 if there is any.
"""
import os
import re
import sys

# cli -> runner -> {hv, netback, blkback, topology} -> {impair, trace} -> core
ALLOWED = {
    "core": set(),
    "impair": {"core"},
    "trace": {"core", "impair"},
    "topology": {"core", "impair"},
    "netback": {"core", "impair", "trace"},
    "blkback": {"core", "impair", "trace"},
    "hv": {"core"},
    "runner": {"core", "impair", "trace", "topology", "netback", "blkback", "hv"},
    "cli": {"core", "impair", "trace", "topology", "netback", "blkback", "hv", "runner"},
}
MAX_LINES = 900
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([^"]+)"')


def room_files(root, room):
    out = []
    for dirpath, _dirs, files in os.walk(os.path.join(root, room)):
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


def opening_comment(lines):
    """The first /* ... */ block of a file (its opening comment)."""
    text = []
    inside = False
    for line in lines[:80]:
        if not inside and line.lstrip().startswith("/*"):
            inside = True
        if inside:
            text.append(line)
            if "*/" in line:
                break
        elif line.strip():
            break
    return text


def find_cycle(graph):
    """One include cycle in graph {file: {files}} as a list, or None."""
    state = {}
    stack = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def check(root):
    problems = []
    for room, allowed in ALLOWED.items():
        graph = {}
        for path in room_files(root, room):
            with open(os.path.join(root, path), encoding="utf-8", errors="replace") as fh:
                lines = fh.read().split("\n")
            graph.setdefault(path, set())
            for no, line in enumerate(lines, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                target, rest = m.group(1), m.group(2)
                if target == room:
                    graph[path].add(f"{target}/{rest}")
                elif target in ALLOWED and target not in allowed:
                    problems.append(f"{path}:{no}: {room}/ must not include {target}/ "
                                    f"({room} may depend on: {', '.join(sorted(allowed)) or 'nothing'})")
            n = len(lines) - (1 if lines and lines[-1] == "" else 0)
            if n > MAX_LINES and not any(re.match(r"^\s*\*?\s*Size:", l)
                                         for l in opening_comment(lines)):
                problems.append(f"{path}:1: {n} lines (over {MAX_LINES}) and its opening comment "
                                f"has no 'Size:' line saying why one concern needs more")
        cycle = find_cycle({k: {v for v in vs if v in graph} for k, vs in graph.items()})
        if cycle:
            problems.append(f"{cycle[0]}:1: include cycle inside {room}/: {' -> '.join(cycle)}")
    return problems


def self_test():
    """The checker must catch what it claims to: a tree with each defect."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        def put(path, text):
            os.makedirs(os.path.dirname(os.path.join(d, path)), exist_ok=True)
            with open(os.path.join(d, path), "w") as fh:
                fh.write(text)
        put("core/core.h", "/* core */\n")
        put("impair/a.c", '#include "runner/runner.h"\n')
        put("netback/x.h", '#include "netback/y.h"\n')
        put("netback/y.h", '#include "netback/x.h"\n')
        put("hv/big.c", "/* big */\n" + "int x;\n" * (MAX_LINES + 5))
        put("hv/ok.c", "/* ok\n * Size: one state machine.\n */\n" + "int y;\n" * (MAX_LINES + 5))
        got = "\n".join(check(d))
        want = ["impair/a.c:1: impair/ must not include runner/",
                "include cycle inside netback/",
                "hv/big.c:1: 906 lines"]
        for w in want:
            if w not in got:
                print(f"self-test: expected '{w}' in:\n{got}")
                return 1
        if "hv/ok.c" in got:
            print(f"self-test: hv/ok.c has a Size: line and must pass:\n{got}")
            return 1
    return 0


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip())
        return 2
    if self_test():
        return 1
    problems = check(sys.argv[1])
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layout problem(s); the arrows are in tests/unit/layout/check_layout.py")
        return 1
    print("layout: rooms depend one way, no include cycle, no file over "
          f"{MAX_LINES} lines without a reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
