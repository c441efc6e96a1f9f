"""PyTorch on the CPU (2 threads): one training step of the benchmarks' peer models, to set
beside `hydra bench --only train_step` in one sitting.

    python3 scripts/torch_step.py            # both models
    python3 scripts/torch_step.py mmoe       # or: hps

The models are those of `hydra::bench::peer_model` and `peer_mmoe`: 64 inputs; hard sharing
with a ReLU trunk 64 -> 256 -> 256, or MMoE with 8 ReLU experts 64 -> 64 -> 32 and a softmax
gate per task; heads Linear(.., 1) MSE, Linear(.., 1) MSE, Linear(.., 10) cross-entropy; loss =
sum; Adam lr 1e-3; batch 256. 10 warm-up steps, then the median of 50 (the loss is read back
outside the timed region). Prints RESULT lines.
"""
import statistics
import sys
import time

import torch
from torch import nn

torch.set_num_threads(2)
torch.manual_seed(0)


class Hps(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU())
        self.heads = nn.ModuleList([nn.Linear(256, 1), nn.Linear(256, 1), nn.Linear(256, 10)])

    def forward(self, x):
        h = self.trunk(x)
        return [head(h) for head in self.heads]


class Mmoe(nn.Module):
    """MMoE as Ma et al. (KDD 2018) and Hydra's `arch = "mmoe"`: the experts' outputs mixed
    per task by a softmax gate on the input."""

    def __init__(self, experts=8, inputs=64, sizes=(64, 32)):
        super().__init__()

        def expert():
            layers, width = [], inputs
            for s in sizes:
                layers += [nn.Linear(width, s), nn.ReLU()]
                width = s
            return nn.Sequential(*layers)

        self.experts = nn.ModuleList([expert() for _ in range(experts)])
        self.gates = nn.ModuleList([nn.Linear(inputs, experts) for _ in range(3)])
        d = sizes[-1]
        self.heads = nn.ModuleList([nn.Linear(d, 1), nn.Linear(d, 1), nn.Linear(d, 10)])

    def forward(self, x):
        e = torch.stack([m(x) for m in self.experts], dim=1)  # [B, E, D]
        out = []
        for gate, head in zip(self.gates, self.heads):
            g = torch.softmax(gate(x), dim=-1).unsqueeze(-1)  # [B, E, 1]
            out.append(head((g * e).sum(dim=1)))
        return out


def bench(name, model, warmup=10, steps=50, batch=256):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 64)
    ya, yb = torch.randn(batch, 1), torch.randn(batch, 1)
    yc = torch.randint(0, 10, (batch,))
    mse, ce = nn.MSELoss(), nn.CrossEntropyLoss()
    times, losses = [], []
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        pa, pb, pc = model(x)
        loss = mse(pa, ya) + mse(pb, yb) + ce(pc, yc)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if step >= warmup:
            times.append(dt * 1e3)
        losses.append(loss.item())
    params = sum(p.numel() for p in model.parameters())
    print(f"RESULT train_step tool=torch arch={name} params={params} batch={batch} steps={steps} "
          f"median_ms={statistics.median(times):.3f} min_ms={min(times):.3f} "
          f"loss_first={losses[0]:.4f} loss_last={losses[-1]:.4f}")


if __name__ == "__main__":
    print("INFO torch", torch.__version__, "threads", torch.get_num_threads())
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("all", "hps"):
        bench("hps", Hps())
    if what in ("all", "mmoe"):
        bench("mmoe", Mmoe())
