"""The MMoE paper's synthetic experiment (Ma et al., KDD 2018, section 4) with Hydra.

For task correlations 1.0, 0.9 and 0.5, trains a shared-bottom model (hard sharing), OMoE
and MMoE on the built-in `mmoe` dataset (d = 100, 4000 rows, 80/10/10) with 5 seeds each
(the seed draws the data and the initial parameters), and prints mean ± std of the test RMSE
averaged over the two tasks, with each model's parameter count.
  python3 scripts/mmoe_experiment.py target/release/hydra [seeds]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

HYDRA = os.path.abspath(sys.argv[1])
SEEDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
MODELS = {
    "shared bottom": 'arch = "hps"\ntrunk = [20]\nhead = [8]',
    "OMoE": 'arch = "omoe"\nexperts = 4\nexpert = [4]\nhead = [8]',
    "MMoE": 'arch = "mmoe"\nexperts = 4\nexpert = [4]\nhead = [8]',
}
PARAMS = {"shared bottom": 100 * 20 + 20 + 2 * (20 * 8 + 8 + 8 + 1),
          "OMoE": 4 * (100 * 4 + 4) + (100 * 4 + 4) + 2 * (4 * 8 + 8 + 8 + 1),
          "MMoE": 4 * (100 * 4 + 4) + 2 * (100 * 4 + 4) + 2 * (4 * 8 + 8 + 8 + 1)}


def run(model, p, seed, d):
    cfg = f"""[data]
dataset = "mmoe"
correlation = {p}
rows = 4000
[[task]]
name = "y1"
kind = "regression"
[[task]]
name = "y2"
kind = "regression"
[model]
{MODELS[model]}
activation = "relu"
[train]
lr = 1e-3
batch_size = 128
epochs = 60
patience = 10
seed = {seed}
"""
    path = os.path.join(d, "c.toml")
    open(path, "w").write(cfg)
    out = os.path.join(d, "m.json")
    r = subprocess.run([HYDRA, "train", "--config", path, "--metrics-json", out, "-q"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(r.stderr)
    m = json.load(open(out))["tasks"]
    return (m["y1"]["test"]["rmse"] + m["y2"]["test"]["rmse"]) / 2


print(f"| correlation | {' | '.join(f'{k} ({PARAMS[k]} params)' for k in MODELS)} |")
print("|---|" + "---|" * len(MODELS))
with tempfile.TemporaryDirectory() as d:
    for p in [1.0, 0.9, 0.5]:
        cells = []
        for model in MODELS:
            v = [run(model, p, s, d) for s in range(SEEDS)]
            cells.append(f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}")
        print(f"| {p} | {' | '.join(cells)} |", flush=True)
