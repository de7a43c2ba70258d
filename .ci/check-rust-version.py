#!/usr/bin/env python3
"""Checks that every workspace crate's `rust-version` is true: at least the highest
`rust-version` among the crates it depends on (normal and build dependencies, transitively,
with every feature on), as `cargo metadata` reports them. Exits 1 naming each crate that
declares less than it needs."""
import json
import subprocess
import sys

metadata = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--all-features"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
)
packages = {p["id"]: p for p in metadata["packages"]}
nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}


def version(text):
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


failed = False
for member in sorted(metadata["workspace_members"], key=lambda i: packages[i]["name"]):
    name = packages[member]["name"]
    declared = packages[member].get("rust_version")
    if not declared:
        print(f"{name}: no rust-version")
        failed = True
        continue
    needed, by = (0, 0, 0), None
    seen, stack = set(), [member]
    while stack:
        node = stack.pop()
        for dep in nodes[node]["deps"]:
            if all(kind["kind"] == "dev" for kind in dep["dep_kinds"]):
                continue
            if dep["pkg"] in seen:
                continue
            seen.add(dep["pkg"])
            stack.append(dep["pkg"])
            wanted = packages[dep["pkg"]].get("rust_version")
            if wanted and version(wanted) > needed:
                needed, by = version(wanted), f"{packages[dep['pkg']]['name']} {wanted}"
    if version(declared) < needed:
        print(f"{name}: rust-version {declared}, but {by} needs more")
        failed = True
    else:
        print(f"{name}: rust-version {declared} (its dependencies need {'.'.join(map(str, needed))})")
sys.exit(1 if failed else 0)
