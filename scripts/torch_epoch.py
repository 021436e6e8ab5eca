#!/usr/bin/env python3
"""Seconds per training epoch of the report's PyTorch model: the reference for benches/epoch.rs.

Same work as `cargo bench --bench epoch`: random unit vectors (145 metrics, ROWS texts, dim 768),
the report's heteroscedastic model (nn.Bilinear + MLP [512, 256, 128], dropout 0.4), batch 64,
Adam (lr 1e-4, weight decay 1e-5), clip_grad_norm_ 1.0. --max-steps times the first N batches
and scales to an epoch, after one untimed warm-up step.

    python3 scripts/torch_epoch.py [--rows 5000] [--rank 0] [--threads 2] [--max-steps N]
"""
import argparse, resource, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LowRankBilinear(nn.Module):
    def __init__(self, dm, dt, out, rank):
        super().__init__()
        self.u, self.v, self.p = nn.Linear(dm, rank, bias=False), nn.Linear(dt, rank, bias=False), nn.Linear(rank, out)

    def forward(self, m, t):
        return self.p(self.u(m) * self.v(t))


class Hetero(nn.Module):
    def __init__(self, dim=768, hidden=(512, 256, 128), dropout=0.4, rank=0):
        super().__init__()
        self.bilinear = nn.Bilinear(dim, dim, dim) if rank == 0 else LowRankBilinear(dim, dim, dim, rank)
        self.fc_layers, self.layer_norms = nn.ModuleList(), nn.ModuleList()
        d = dim * 3
        for h in hidden:
            self.fc_layers.append(nn.Linear(d, h)); self.layer_norms.append(nn.LayerNorm(h)); d = h
        self.mean_head, self.logvar_head, self.dropout = nn.Linear(d, 1), nn.Linear(d, 1), nn.Dropout(dropout)

    def forward(self, m, t):
        x = torch.cat([m, t, self.bilinear(m, t)], dim=1)
        for fc, ln in zip(self.fc_layers, self.layer_norms):
            x = self.dropout(F.relu(ln(fc(x))))
        return self.mean_head(x).squeeze(-1), self.logvar_head(x).clamp(-10, 10).squeeze(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(7)
    metrics = F.normalize(torch.rand(145, 768) * 2 - 1, dim=1)
    texts = F.normalize(torch.rand(a.rows, 768) * 2 - 1, dim=1)
    metric_of = torch.randint(0, 145, (a.rows,))
    y = torch.randint(0, 11, (a.rows,)).float()
    model = Hetero(rank=a.rank)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)

    def step(i):
        idx = slice(i * a.batch, (i + 1) * a.batch)
        mean, logvar = model(metrics[metric_of[idx]], texts[idx])
        loss = ((mean - y[idx]) ** 2 / (torch.exp(logvar) + 1e-6) + logvar).mean()
        opt.zero_grad(); loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    steps_per_epoch = (a.rows + a.batch - 1) // a.batch
    steps = min(a.max_steps or steps_per_epoch, steps_per_epoch)
    model.train(); step(0)  # warm-up (allocations, Adam state)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    per_step = (time.perf_counter() - start) / steps
    kind = "full bilinear" if a.rank == 0 else f"low-rank r={a.rank}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pytorch {torch.__version__} {kind}, {a.rows} rows, batch {a.batch}: {per_step:.4f} s/step over {steps} steps "
          f"-> {per_step * steps_per_epoch:.2f} s/epoch (peak RSS {peak:.0f} MiB; threads {a.threads})")


if __name__ == "__main__":
    main()
