"""The Python package against the command line and the Rust library: the same figures for the
same config and seed, a checkpoint round trip through `hydra predict`, missing labels, the
weighting library, and bad input raising the right exception."""
import csv
import json
import os
import subprocess

import numpy as np
import pytest

import hydra

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HYDRA = os.path.abspath(os.environ.get("HYDRA_BIN", os.path.join(ROOT, "target", "release", "hydra")))

FEATURES = ["relative_compactness", "surface_area", "wall_area", "roof_area", "overall_height",
            "orientation", "glazing_area", "glazing_area_distribution"]

CONFIG = {
    "task": [
        {"name": "heating", "target": "heating_load", "kind": "regression"},
        {"name": "cooling", "target": "cooling_load", "kind": "regression"},
    ],
    "model": {"trunk": [32], "activation": "relu"},
    "train": {"lr": 3e-3, "batch_size": 64, "epochs": 12, "patience": 0, "seed": 0},
}


@pytest.fixture(scope="module")
def energy():
    d = hydra.datasets.load("energy")
    X = np.stack([d[f] for f in FEATURES], axis=1)
    y = {"heating": d["heating_load"], "cooling": d["cooling_load"]}
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(X))
    parts = np.split(idx, [600, 690])
    return [(X[p], {k: v[p] for k, v in y.items()}) for p in parts]


def write_csv(path, X, y):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FEATURES + ["heating_load", "cooling_load"])
        for r in range(len(X)):
            w.writerow([repr(float(v)) for v in X[r]] + [repr(float(y["heating"][r])), repr(float(y["cooling"][r]))])


def toml_of(cfg, data):
    lines = ["[data]"] + [f'{k} = "{v}"' for k, v in data.items()]
    for t in cfg["task"]:
        lines += ["[[task]]"] + [f'{k} = "{v}"' for k, v in t.items()]
    for sec in ("model", "train"):
        lines.append(f"[{sec}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in cfg[sec].items()]
    return "\n".join(lines) + "\n"


def test_fit_and_evaluate_give_the_cli_figures(energy, tmp_path):
    (Xtr, ytr), (Xva, yva), (Xte, yte) = energy
    for name, (X, y) in zip(("train", "val", "test"), energy):
        write_csv(tmp_path / f"{name}.csv", X, y)
    (tmp_path / "c.toml").write_text(toml_of(CONFIG, {"train": "train.csv", "val": "val.csv", "test": "test.csv"}))
    subprocess.run([HYDRA, "train", "--config", "c.toml", "--metrics-json", "m.json", "-q"], cwd=tmp_path, check=True)
    cli = json.loads((tmp_path / "m.json").read_text())["tasks"]

    model = hydra.Model(CONFIG)
    report = model.fit(Xtr, ytr, X_val=Xva, y_val=yva)
    assert report["epoch"] == list(range(1, 13)) and report["steps"] == 12 * 10
    got = model.evaluate(Xte, yte)
    for task in ("heating", "cooling"):
        for metric in ("rmse", "mae"):
            assert got[task][metric] == pytest.approx(cli[task]["test"][metric], rel=1e-6), (task, metric)
    # The history is the CLI's too: one value per epoch, finite.
    assert len(report["heating"]["val_loss"]) == 12 and all(np.isfinite(report["heating"]["val_loss"]))


def test_save_load_and_the_cli_predict_agree(energy, tmp_path):
    (Xtr, ytr), (Xva, yva), (Xte, _) = energy
    model = hydra.Model(CONFIG)
    model.fit(Xtr, ytr, X_val=Xva, y_val=yva)
    pred = model.predict(Xte)
    model.save(tmp_path / "m.safetensors")
    loaded = hydra.Model.load(tmp_path / "m.safetensors")
    again = loaded.predict(Xte)
    for t in ("heating", "cooling"):
        np.testing.assert_array_equal(pred[t], again[t])
    params = loaded.parameters()
    assert params["trunk.0.weight"].shape == (32, 8)
    with open(tmp_path / "rows.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"x{i}" for i in range(8)])
        w.writerows([[repr(float(v)) for v in row] for row in Xte])
    subprocess.run([HYDRA, "predict", "--checkpoint", "m.safetensors", "--input", "rows.csv", "--output", "p.csv"],
                   cwd=tmp_path, check=True)
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    for t in ("heating", "cooling"):
        np.testing.assert_allclose([float(r[t]) for r in rows], pred[t], rtol=1e-6, atol=1e-6)


def test_missing_labels_are_masked_and_classes_come_as_probabilities():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (120, 3)).astype(np.float32)
    reg = X[:, 0] + X[:, 1]
    cls = (X[:, 2] > 0).astype(np.float32) + (X[:, 0] > 0.5)
    reg[::5] = np.nan          # missing regression targets
    cls[1::7] = -1             # missing classes
    cfg = {
        "task": [{"name": "r", "kind": "regression"}, {"name": "c", "kind": "multiclass", "classes": 3}],
        "model": {"trunk": [16]},
        "train": {"lr": 1e-2, "batch_size": 32, "epochs": 3, "patience": 0},
    }
    model = hydra.Model(cfg)
    model.fit(X, {"r": reg, "c": cls})
    p = model.predict(X)
    assert p["r"].shape == (120,) and p["c"].shape == (120, 3)
    np.testing.assert_allclose(p["c"].sum(axis=1), 1.0, rtol=1e-5)
    m = model.evaluate(X, {"r": reg, "c": cls})
    assert np.isfinite(m["r"]["rmse"]) and 0.0 <= m["c"]["accuracy"] <= 1.0


def test_the_weighting_library_gives_the_rust_results():
    g = np.array([[1.0, 0.0, 0.5, 0.2], [-0.6, 1.0, 0.0, 0.1], [0.2, 0.3, 1.0, -0.4]])
    assert "pcgrad" in hydra.weighting.methods() and len(hydra.weighting.methods()) == 23
    # The values tests/weighting_pinned.rs pins (from scripts/weighting_reference.py).
    np.testing.assert_allclose(hydra.weighting.coefficients("mgda", g), [0.5104712041884817, 0.48952879581151837, 0.0],
                               atol=1e-9)
    np.testing.assert_allclose(hydra.weighting.coefficients("upgrad", gram=g @ g.T),
                               [0.48320413436692505, 0.4744525547445255, 0.3333333333333333], atol=1e-9)
    np.testing.assert_allclose(hydra.weighting.coefficients("cagrad", g, c=0.0), [1.0 / 3] * 3, atol=1e-9)
    with pytest.raises(hydra.ConfigError, match="c"):
        hydra.weighting.coefficients("pcgrad", g, c=0.4)
    with pytest.raises(hydra.ConfigError, match="magic"):
        hydra.weighting.coefficients("magic", g)


def test_bad_input_raises_the_right_exception():
    model = hydra.Model(CONFIG)
    X = np.zeros((10, 8))
    y = {"heating": np.zeros(10), "cooling": np.zeros(10)}
    with pytest.raises(hydra.DataError, match="2-D"):
        model.fit(np.zeros(10), y)
    with pytest.raises(hydra.DataError, match="10 labels"):
        model.fit(X, {"heating": np.zeros(9), "cooling": np.zeros(10)})
    with pytest.raises(hydra.DataError, match="unknown task"):
        model.fit(X, {"heating": np.zeros(10), "heat": np.zeros(10)})
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(hydra.DataError, match="row 3, column 2"):
        model.fit(bad, y)
    with pytest.raises(hydra.DataError, match="numbers"):
        model.fit(np.array([["a"] * 8] * 10), y)
    with pytest.raises(hydra.HydraError, match="not trained"):
        model.predict(X)
    with pytest.raises(hydra.ConfigError, match="lr: -1"):
        hydra.Model({**CONFIG, "train": {"lr": -1.0}})
    with pytest.raises(hydra.ConfigError, match="no such config file"):
        hydra.Model("missing.toml")
    cls = hydra.Model({"task": [{"name": "b", "kind": "binary"}], "model": {"trunk": [4]}})
    with pytest.raises(hydra.DataError, match="binary label 2"):
        cls.fit(np.zeros((4, 2)), {"b": np.array([0, 1, 2, 0])})
    with pytest.raises(hydra.CheckpointError):
        hydra.Model.load("/nonexistent.safetensors")


def test_a_callback_can_stop_training_and_info_names_the_adapter():
    model = hydra.Model(CONFIG)
    d = hydra.datasets.load("energy")
    X = np.stack([d[f] for f in FEATURES], axis=1)
    seen = []

    def cb(epoch, metrics):
        seen.append((epoch, sorted(metrics)))
        return epoch < 2

    report = model.fit(X, {"heating": d["heating_load"], "cooling": d["cooling_load"]}, callback=cb)
    assert [e for e, _ in seen] == [1, 2] and seen[0][1] == ["cooling", "heating"]
    assert report["epoch"] == [1, 2]
    assert hydra.info()["adapter"]


def test_ctrl_c_stops_training_between_steps_and_keeps_a_usable_model(tmp_path):
    script = tmp_path / "long.py"
    script.write_text(
        "import sys, numpy as np, hydra\n"
        "cfg = {'task': [{'name': 'a', 'kind': 'regression'}], 'model': {'trunk': [64, 64]},\n"
        "       'train': {'lr': 1e-3, 'batch_size': 8, 'epochs': 100000, 'patience': 0}}\n"
        "X = np.random.default_rng(0).uniform(-1, 1, (4000, 8)).astype(np.float32)\n"
        "m = hydra.Model(cfg)\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    m.fit(X, {'a': X.sum(axis=1)})\n"
        "except KeyboardInterrupt:\n"
        "    p = m.predict(X[:5])['a']\n"
        "    print('stopped', p.shape, bool(np.isfinite(p).all()), flush=True)\n"
        "    sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    import signal
    import time

    child = subprocess.Popen([os.sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    time.sleep(2.0)
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0, out
    assert "stopped (5,) True" in out


def test_a_weighting_with_parameters_of_its_own_predicts_and_saves(energy, tmp_path):
    # UW learns log-variances beside the model: prediction, evaluation and parameters()
    # take the model's own parameters.
    (Xtr, ytr), _, (Xte, yte) = energy
    model = hydra.Model({**CONFIG, "train": {**CONFIG["train"], "epochs": 2}, "weighting": {"method": "uw"}})
    model.fit(Xtr, ytr)
    assert set(model.predict(Xte)) == {"heating", "cooling"}
    assert np.isfinite(model.evaluate(Xte, yte)["cooling"]["rmse"])
    assert "weighting.log_var" not in model.parameters()
    model.save(tmp_path / "uw.safetensors")
    assert hydra.Model.load(tmp_path / "uw.safetensors").predict(Xte)["heating"].shape == (len(Xte),)


def test_the_readme_example_runs(tmp_path, monkeypatch):
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    start = text.index("```python\nimport numpy as np\nimport hydra")
    code = text[start + len("```python\n"):text.index("```", start + 10)]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "energy.safetensors").exists()
