"""The authors' SCN training step (Wang et al., CVPR 2020; their src/train.py) in PyTorch, on frozen embeddings.

Benchmark only (bench/train.ts runs it side by side with fer-clean's trainHead); never used by tests or CI.
It does the same work as fer-clean's trainHead with the default options, so the two times compare:
standardise the embeddings on the training rows; head x -> Linear(dim, hidden) -> ReLU -> Dropout(p) -> f
(hidden 0, the authors' head: f = Dropout(p)(x)),
logits z = fc(f), alpha = sigmoid(alpha_fc(f)) (Eq. 1); loss gamma * L_RR + (1 - gamma) * CE(alpha * z, y)
(Eq. 2, 3; rank groups by torch.topk as in the authors' code); Adam with weight decay, lr * decay per epoch;
from the relabel epoch on, relabeling (Eq. 4) in the low-importance group of each batch; after every epoch the
accuracy on the valid rows, and over the last `window` epochs the evaluation-mode alpha of every row.

Usage: /usr/bin/python3 bench/scn_torch.py DIR   (DIR holds meta.json, features.f32, labels.i32, train.i32,
valid.i32 written by bench/train.ts). Prints one JSON line: wall and CPU seconds of training and the run's figures.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

torch.set_num_threads(1)  # fer-clean trains on one thread (tfjs wasm has no threads in Node)


class Head(nn.Module):
    def __init__(self, dim: int, hidden: int, classes: int, drop: float):
        super().__init__()
        # hidden 0: the authors' head, fc and alpha straight on the (dropped-out) backbone features.
        self.hidden = nn.Linear(dim, hidden) if hidden > 0 else None
        self.drop = nn.Dropout(drop)
        width = hidden if hidden > 0 else dim
        self.fc = nn.Linear(width, classes)
        self.alpha = nn.Sequential(nn.Linear(width, 1), nn.Sigmoid())

    def forward(self, x):
        f = self.drop(torch.relu(self.hidden(x)) if self.hidden is not None else x)
        return self.fc(f), self.alpha(f)


def main() -> None:
    d = Path(sys.argv[1])
    meta = json.loads((d / "meta.json").read_text())
    dim, C, o = meta["dim"], meta["classes"], meta["options"]
    x = torch.from_numpy(np.fromfile(d / "features.f32", dtype=np.float32).reshape(-1, dim))
    labels = torch.from_numpy(np.fromfile(d / "labels.i32", dtype=np.int32).astype(np.int64))
    train = torch.from_numpy(np.fromfile(d / "train.i32", dtype=np.int32).astype(np.int64))
    valid = torch.from_numpy(np.fromfile(d / "valid.i32", dtype=np.int32).astype(np.int64))
    torch.manual_seed(o["seed"])

    t0 = time.perf_counter()
    c0 = time.process_time()
    mean = x[train].mean(0)
    sd = x[train].std(0, unbiased=False)
    sd[sd == 0] = 1
    x = (x - mean) / sd
    working = labels.clone()
    model = Head(dim, o["hidden"], C, o["dropout"])
    opt = torch.optim.Adam(model.parameters(), lr=o["lr"], weight_decay=o["weightDecay"])
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=o["lrDecay"])
    beta, delta1, delta2, gamma = o["beta"], o["delta1"], o["delta2"], o["gamma"]
    B = o["batchSize"]
    alpha_sum = torch.zeros(x.shape[0])
    epochs = []
    for epoch in range(1, o["epochs"] + 1):
        model.train()
        order = train[torch.randperm(len(train))]
        correct, relabeled, loss_sum = 0, 0, 0.0
        for s in range(0, len(order), B):
            idx = order[s : s + B]
            if len(idx) < 2:
                continue
            xb, yb = x[idx], working[idx]
            z, alpha = model(xb)
            out = alpha * z
            n = len(idx)
            tops = max(1, min(n - 1, int(n * beta)))
            a = alpha.squeeze(1)
            _, top_idx = torch.topk(a, tops)
            _, down_idx = torch.topk(a, n - tops, largest=False)
            diff = a[down_idx].mean() - a[top_idx].mean() + delta1
            rr = diff if diff > 0 else torch.zeros(())
            loss = gamma * rr + (1 - gamma) * nn.functional.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * n
            with torch.no_grad():
                sm = torch.softmax(out, 1)
                pmax, pred = sm.max(1)
                correct += int((pred == yb).sum())
                if epoch >= o["relabelEpoch"]:
                    pgt = sm.gather(1, yb.view(-1, 1)).squeeze(1)
                    low = torch.zeros(n, dtype=torch.bool)
                    low[down_idx] = True
                    upd = (pmax - pgt > delta2) & low
                    working[idx[upd]] = pred[upd]
                    relabeled += int(upd.sum())
        sched.step()
        model.eval()
        with torch.no_grad():
            zv, _ = model(x[valid])
            val_acc = float((zv.argmax(1) == labels[valid]).float().mean())
            if epoch > o["epochs"] - o["importanceWindow"]:
                _, a_all = model(x)
                alpha_sum += a_all.squeeze(1)
        epochs.append({"epoch": epoch, "loss": loss_sum / len(train), "trainAccuracy": correct / len(train), "valAccuracy": val_acc, "relabeled": relabeled})
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    print(json.dumps({"seconds": seconds, "cpuSeconds": cpu, "torch": torch.__version__, "threads": torch.get_num_threads(), "epochs": epochs}))


if __name__ == "__main__":
    main()
