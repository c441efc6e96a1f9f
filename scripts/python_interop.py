"""Hydra's checkpoints as the Python ecosystem reads and writes them.

Run by .ci/run with the `safetensors` (0.8.0) and `numpy` packages in a virtual environment:
  python scripts/python_interop.py path/to/hydra
The reference parser reads a checkpoint Hydra wrote (PyTorch's nn.Linear names and [out, in]
layouts, f32 and f16 files, the metadata), and a file of tensors alone, written from Python
as safetensors.torch.save_file(model.state_dict()) writes one, starts a Hydra run with --init.
Ends with a line "python interop: N passed, M failed"; exits non-zero on any failure.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

HYDRA = os.path.abspath(sys.argv[1])
CONFIG = """
[data]
path = "d.csv"
split = [0.6, 0.2, 0.2]
[[task]]
name = "reg"
target = "y"
kind = "regression"
[[task]]
name = "bin"
target = "b"
kind = "binary"
[model]
trunk = [8]
[train]
batch_size = 16
epochs = 2
"""

passed, failed = 0, 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {what}")
    else:
        failed += 1
        print(f"FAIL  {what} {detail}")


def hydra(*args):
    return subprocess.run([HYDRA, *args], capture_output=True, text=True)


with tempfile.TemporaryDirectory() as d:
    os.chdir(d)
    rows = ["x1,x2,y,b"]
    for i in range(60):
        a, b = (i % 7) / 7, (i % 5) / 5
        rows.append(f"{a},{b},{a + 2 * b},{int(a > b)}")
    open("d.csv", "w").write("\n".join(rows) + "\n")
    open("c.toml", "w").write(CONFIG)

    r = hydra("train", "--config", "c.toml", "--save", "m.safetensors", "-q")
    check("hydra train --save", r.returncode == 0, r.stderr)
    t = load_file("m.safetensors")
    check("trunk.0.weight is nn.Linear(2, 8)'s [out, in] f32", t["trunk.0.weight"].shape == (8, 2)
          and t["trunk.0.weight"].dtype == np.float32, str(t["trunk.0.weight"].shape))
    check("each head's final Linear: heads.reg.0.weight (1, 8)", t["heads.reg.0.weight"].shape == (1, 8))
    check("Adam's state under optim.exp_avg.*", t["optim.exp_avg.trunk.0.weight"].shape == (8, 2))
    with safe_open("m.safetensors", framework="numpy") as f:
        meta = f.metadata()
    check("metadata format and config", meta.get("format") == "hydra-mtl 1" and "config" in meta, str(meta)[:200])

    r = hydra("train", "--config", "c.toml", "--save", "h.safetensors", "--save-dtype", "f16", "-q")
    h = load_file("h.safetensors")
    check("--save-dtype f16 gives float16 model tensors, float32 state",
          r.returncode == 0 and h["trunk.0.weight"].dtype == np.float16
          and h["optim.exp_avg.trunk.0.weight"].dtype == np.float32, r.stderr)
    diff = np.max(np.abs(h["trunk.0.weight"].astype(np.float32) - t["trunk.0.weight"]))
    check("f16 values are the f32 ones rounded", diff <= 1e-3 * np.max(np.abs(t["trunk.0.weight"])) + 1e-7, str(diff))

    # A state_dict as PyTorch saves it: model tensors only, no metadata, in float16.
    model = {k: v.astype(np.float16) for k, v in t.items() if not k.startswith(("optim.", "best."))}
    save_file(model, "state_dict.safetensors")
    r = hydra("train", "--config", "c.toml", "--init", "state_dict.safetensors", "--save", "n.safetensors", "-q")
    check("--init from a Python-written f16 state_dict", r.returncode == 0 and "no Hydra metadata" in r.stderr,
          r.stderr)

    # An MMoE: the architecture issue's names and layouts, and a state_dict back from Python.
    open("moe.toml", "w").write(CONFIG.replace("trunk = [8]", 'arch = "mmoe"\nexperts = 3\nexpert = [6]'))
    r = hydra("train", "--config", "moe.toml", "--save", "moe.safetensors", "-q")
    t = load_file("moe.safetensors")
    check("MMoE names: experts.{e}.{i}.weight [out, in], gates.{task}.weight [experts, inputs]",
          r.returncode == 0 and t["experts.2.0.weight"].shape == (6, 2) and t["gates.bin.weight"].shape == (3, 2),
          r.stderr + str({k: v.shape for k, v in t.items() if not k.startswith("optim.")}))
    save_file({k: v for k, v in t.items() if not k.startswith(("optim.", "best."))}, "moe_state_dict.safetensors")
    r = hydra("train", "--config", "moe.toml", "--init", "moe_state_dict.safetensors", "-q")
    check("--init from a Python-written MMoE state_dict", r.returncode == 0, r.stderr)

print(f"python interop: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
