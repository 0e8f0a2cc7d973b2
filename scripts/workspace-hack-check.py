#!/usr/bin/env python3
"""Checks that `cargo run -p gatehouse-topology` resolves every dependency with the features a
workspace build gives it, so the two share one build (workspace-hack/Cargo.toml says why).

Compares `cargo tree -e features` of the topology with that of the workspace; prints each crate
whose feature set differs and exits 1, or prints one line and exits 0. Compiles nothing."""

import re
import subprocess
import sys


def features(selection):
    out = subprocess.run(
        ["cargo", "tree", "--locked", "-e", "features,normal,build", "--prefix", "none",
         "-f", "{p} {f}", *selection],
        check=True, capture_output=True, text=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"^(\S+) (v\S+)(?: \(.*?\))? ?(.*)$", line.replace(" (*)", ""))
        if m:
            name, version, feats = m.groups()
            found.setdefault(f"{name} {version}", set()).update(f for f in feats.split(",") if f)
    return found


workspace = features(["--workspace"])
topology = features(["-p", "gatehouse-topology"])
drift = [
    f"{crate}: the workspace also turns on {sorted(workspace[crate] - feats)}"
    + (f", the topology alone {sorted(feats - workspace[crate])}" if feats - workspace[crate] else "")
    for crate, feats in sorted(topology.items())
    if crate in workspace and feats != workspace[crate]
]
if drift:
    print("workspace-hack: `-p gatehouse-topology` resolves other features than the workspace; "
          "add these to workspace-hack/Cargo.toml:", *drift, sep="\n  ")
    sys.exit(1)
print(f"workspace-hack: the topology's {len(topology)} crates resolve as in the workspace")
