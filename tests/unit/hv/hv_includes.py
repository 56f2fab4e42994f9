#!/usr/bin/env python3
"""hv/'s include arrows (issue 13): no cycle among its headers, the image
half and the node half never include each other's header, and hv/ reaches
outside itself only for core/ (DESIGN.md: hv -> core)."""
import os
import re
import sys

root = sys.argv[1]
hv = os.path.join(root, "hv")
inc = re.compile(r'^#include "([^"]+)"', re.M)
files = {}
for dirpath, _, names in os.walk(hv):
    for name in names:
        if name.endswith((".c", ".h")):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            with open(path, encoding="utf-8") as f:
                files[rel] = inc.findall(f.read())
bad = []
IMAGE = re.compile(r"^hv/(image[^/]*|tool)\.c$")
NODE = re.compile(r"^hv/(node[^/]*|qmp|agent-channel|qemu-cmdline)\.c$")
for rel, incs in sorted(files.items()):
    for i in incs:
        if not (i.startswith("hv/") or i.startswith("core/")):
            bad.append(f"{rel} includes {i}: hv/ may include only hv/ and core/ headers")
    if IMAGE.match(rel) and "hv/node.h" in incs:
        bad.append(f"{rel} (image builder) includes hv/node.h")
    if NODE.match(rel) and "hv/image.h" in incs:
        bad.append(f"{rel} (node) includes hv/image.h")
# cycles among hv headers
graph = {r: [i for i in incs if i.startswith("hv/") and i.endswith(".h")]
         for r, incs in files.items() if r.endswith(".h")}
state = {}


def visit(h, stack):
    if state.get(h) == 1:
        bad.append("include cycle: " + " -> ".join(stack + [h]))
        return
    if state.get(h) == 2:
        return
    state[h] = 1
    for n in graph.get(h, []):
        visit(n, stack + [h])
    state[h] = 2


for h in sorted(graph):
    visit(h, [])
if len(files) < 20:
    bad.append(f"only {len(files)} files read under {hv}: wrong root?")
for b in bad:
    print("FAIL:", b)
print(f"{len(files)} files, {sum(map(len, files.values()))} includes checked")
sys.exit(1 if bad else 0)
