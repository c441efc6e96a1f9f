"""Trains the energy data's two tasks with several weighting methods and prints a table of
the test RMSE per task (in kWh/m²), from Python, with numpy arrays in and out.

    python python/examples/compare_methods.py [method ...]
"""
import sys

import numpy as np

import hydra

FEATURES = ["relative_compactness", "surface_area", "wall_area", "roof_area", "overall_height",
            "orientation", "glazing_area", "glazing_area_distribution"]


def main(methods):
    d = hydra.datasets.load("energy")
    X = np.stack([d[f] for f in FEATURES], axis=1)
    y = {"heating": d["heating_load"], "cooling": d["cooling_load"]}
    idx = np.random.default_rng(0).permutation(len(X))
    tr, va, te = np.split(idx, [614, 691])
    part = lambda rows: (X[rows], {k: v[rows] for k, v in y.items()})  # noqa: E731
    print(f"adapter: {hydra.info()['adapter']}")
    print(f"| method | heating rmse | cooling rmse | best epoch |\n|---|---|---|---|")
    for method in methods:
        model = hydra.Model({
            "task": [{"name": "heating", "kind": "regression"}, {"name": "cooling", "kind": "regression"}],
            "model": {"trunk": [64, 64], "activation": "relu"},
            "train": {"lr": 3e-3, "batch_size": 64, "epochs": 150, "patience": 30, "seed": 0},
            "weighting": {"method": method},
        })
        report = model.fit(*part(tr), X_val=part(va)[0], y_val=part(va)[1])
        m = model.evaluate(*part(te))
        print(f"| {method} | {m['heating']['rmse']:.4f} | {m['cooling']['rmse']:.4f} | {report['best_epoch']} |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["ew", "uw", "pcgrad", "cagrad", "nash_mtl", "db_mtl"])
