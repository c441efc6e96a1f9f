"""Task affinity on a shipped config over several seeds: for each seed, `hydra affinity`
(the lookahead affinity matrix, its first-order estimate and their rank correlation, the
recommended grouping into k groups), then `hydra train` with that grouping as
`[train] groups`, which reports Δm% of the all-in-one model and of the grouping against the
single-task models. Prints one line per seed and the mean ± std. Standard library only.

    python3 scripts/affinity_experiment.py target/release/hydra examples/penguins.toml \
        --seeds 5 --every 5 --k 2
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile


def with_seed(text, seed, groups=None):
    """The config with `seed` (and `groups`) in its [train] section."""
    lines = [l for l in text.splitlines() if not re.match(r"\s*(seed|groups)\s*=", l)]
    out = []
    for l in lines:
        out.append(l)
        if l.strip() == "[train]":
            out.append(f"seed = {seed}")
            if groups:
                out.append("groups = " + json.dumps(groups))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hydra")
    ap.add_argument("config")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--k", type=int, default=2)
    a = ap.parse_args()
    base = open(a.config).read()
    cfg_dir = os.path.dirname(os.path.abspath(a.config))
    rows = []
    for seed in range(a.seeds):
        with tempfile.TemporaryDirectory(dir=cfg_dir) as tmp:
            cfg = os.path.join(tmp, "..", f".affinity_seed{seed}.toml")
            with open(cfg, "w") as f:
                f.write(with_seed(base, seed))
            js = os.path.join(tmp, "a.json")
            subprocess.run([a.hydra, "affinity", "--config", cfg, "--every", str(a.every), "--json", js],
                           check=True, capture_output=True)
            doc = json.load(open(js))
            groups = doc["groups"][str(a.k)]
            with open(cfg, "w") as f:
                f.write(with_seed(base, seed, groups))
            out = subprocess.run([a.hydra, "train", "--config", cfg, "-q"], check=True, capture_output=True,
                                 text=True).stdout
            os.remove(cfg)
        m = re.search(r"Δm% all-in-one ([+-][\d.]+), grouped ([+-][\d.]+)", out)
        if not m:
            sys.exit(f"seed {seed}: no grouping line in\n{out}")
        all_in_one, grouped = float(m.group(1)), float(m.group(2))
        rho = doc["rank_correlation"]
        z = doc["affinity"]
        rows.append((all_in_one, grouped, rho))
        print(f"seed {seed}: groups {groups}  Δm% all-in-one {all_in_one:+.2f}, grouped {grouped:+.2f}, "
              f"ρ(estimate, affinity) {rho if rho is None else round(rho, 3)}; Z = "
              + json.dumps([[None if v is None else round(v, 5) for v in r] for r in z]))
    def ms(v):
        v = [x for x in v if x is not None]
        return f"{statistics.mean(v):+.2f} ± {statistics.stdev(v) if len(v) > 1 else 0:.2f}"
    print(f"over {a.seeds} seeds: Δm% all-in-one {ms([r[0] for r in rows])}, grouped {ms([r[1] for r in rows])}, "
          f"ρ mean {statistics.mean([r[2] for r in rows if r[2] is not None]):.3f}")


if __name__ == "__main__":
    main()
