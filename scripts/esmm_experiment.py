"""ESMM against a conversion head trained on clicked rows only, on the built-in recsys log.

For each seed (which draws the data and the initial parameters), trains examples/recsys.toml
(conversion's loss on the clicked rows, where its label is) and examples/recsys_esmm.toml
(conversion without a loss of its own, learned through ctcvr = click x conversion on every
row), and prints mean ± std over the seeds of the test metrics: conversion AUC on the clicked
rows (the only rows with a conversion label), click AUC, and the two models' epochs.
  python3 scripts/esmm_experiment.py target/release/hydra [seeds]
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HYDRA = os.path.abspath(sys.argv[1])
SEEDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(example, seed, d):
    text = open(os.path.join(ROOT, "examples", example)).read()
    text = re.sub(r"\[train\]\n", f"[train]\nseed = {seed}\n", text)
    cfg = os.path.join(d, "c.toml")
    open(cfg, "w").write(text)
    out = os.path.join(d, "m.json")
    r = subprocess.run([HYDRA, "train", "--config", cfg, "--metrics-json", out, "-q"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(r.stderr)
    m = json.load(open(out))
    t = m["tasks"]
    return t["conversion"]["test"]["auc"], t["click"]["test"]["auc"], m["best_epoch"]


def stats(v):
    return f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}"


rows = {}
with tempfile.TemporaryDirectory() as d:
    for name, example in [("conversion on clicked rows", "recsys.toml"), ("ESMM", "recsys_esmm.toml")]:
        rows[name] = [run(example, s, d) for s in range(SEEDS)]
print("| model | conversion AUC (clicked test rows) | click AUC | best epoch |")
print("|---|---|---|---|")
for name, v in rows.items():
    print(f"| {name} | {stats([x[0] for x in v])} | {stats([x[1] for x in v])} | "
          f"{statistics.mean([x[2] for x in v]):.1f} |")
