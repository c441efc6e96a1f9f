"""The MMoE paper's synthetic experiment (Ma et al., KDD 2018, section 4) with Hydra.

For task correlations 1.0, 0.9 and 0.5, trains a shared-bottom model (hard sharing), OMoE
and MMoE on the built-in `mmoe` dataset (d = 100, 80/10/10) with 5 seeds each (the seed
draws the data and the initial parameters), and prints mean ± std of the test RMSE averaged
over the two tasks, with each model's parameter count. Two settings:
  small  4000 rows, models of about 2,400 parameters, Adam 1e-3, up to 60 epochs (patience 10)
  large  20000 rows, models of about 23,000 to 25,000 parameters, Adam 1e-3, up to 100
         epochs (patience 20): the shared bottom has the capacity to learn part of the
         sinusoids
  python3 scripts/mmoe_experiment.py target/release/hydra [seeds] [small|large]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

HYDRA = os.path.abspath(sys.argv[1])
SEEDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
SETTING = sys.argv[3] if len(sys.argv) > 3 else "small"


def mlp_params(sizes):
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


if SETTING == "small":
    ROWS, EPOCHS, PATIENCE = 4000, 60, 10
    TRUNK, EXPERTS, EXPERT, HEAD = [20], 4, [4], [8]
else:
    ROWS, EPOCHS, PATIENCE = 20000, 100, 20
    TRUNK, EXPERTS, EXPERT, HEAD = [128, 64], 8, [24, 16], [16]
MODELS = {
    "shared bottom": f'arch = "hps"\ntrunk = {TRUNK}\nhead = {HEAD}',
    "OMoE": f'arch = "omoe"\nexperts = {EXPERTS}\nexpert = {EXPERT}\nhead = {HEAD}',
    "MMoE": f'arch = "mmoe"\nexperts = {EXPERTS}\nexpert = {EXPERT}\nhead = {HEAD}',
}
HEADS = 2 * mlp_params([TRUNK[-1]] + HEAD + [1])
EXPERT_HEADS = 2 * mlp_params([EXPERT[-1]] + HEAD + [1])
BANK = EXPERTS * mlp_params([100] + EXPERT)
GATE = 100 * EXPERTS + EXPERTS
PARAMS = {"shared bottom": mlp_params([100] + TRUNK) + HEADS,
          "OMoE": BANK + GATE + EXPERT_HEADS,
          "MMoE": BANK + 2 * GATE + EXPERT_HEADS}


def run(model, p, seed, d):
    cfg = f"""[data]
dataset = "mmoe"
correlation = {p}
rows = {ROWS}
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
epochs = {EPOCHS}
patience = {PATIENCE}
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
