#!/usr/bin/env bash
# The cost of data-parallel training on this machine (README: Data-parallel training): for a
# small and two larger models on the MMoE synthetic data (100 features, two regressions),
# 1 and 2 ranks under mpirun, each rank's step time and the part of it spent in the sums.
# Needs a hydra built with --features mpi. Usage: scripts/mpi_cost.sh [path/to/hydra]
set -euo pipefail
bin=${1:-target/release/hydra}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for spec in "64,32 256" "512,512 256" "512,512 2048" "1024,1024 2048"; do
  set -- $spec
  trunk=$1 batch=$2
  cat > "$dir/c.toml" <<TOML
[data]
dataset = "mmoe"
rows = 20000
[[task]]
name = "y1"
kind = "regression"
[[task]]
name = "y2"
kind = "regression"
[model]
trunk = [$trunk]
[train]
lr = 1e-3
batch_size = $batch
steps = 60
seed = 0
TOML
  for np in 1 2; do
    line=$(mpirun --allow-run-as-root --oversubscribe -np "$np" "$bin" train --distributed --config "$dir/c.toml" -q 2>&1 | grep 'data-parallel' || true)
    echo "trunk [$trunk] batch $batch, $np rank(s): ${line#hydra: }"
  done
done
