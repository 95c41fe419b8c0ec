"""cleanlab's own ranking on the same out-of-fold file, beside a fer-clean `--probs` run (docs/BENCHMARKS.md, imports).

Usage: PYTHONPATH=CLEANLAB_SRC python3 scripts/bench-imports-cleanlab.py PREFIX DB RUN [PROBS.csv]
Reads PREFIX.oof.npy (or PROBS.csv: path + one column per class, rows in PREFIX.labels.csv's order) and PREFIX.labels.csv, runs cleanlab.filter.find_label_issues (defaults; ranked by
self_confidence, cleanlab's default ranking) on the train split, and compares its flagged set with the proposals of
fer-clean run RUN in DB. Precision of the first N: proposals (argmax class) equal to the FER+ majority, among the
first N of the order; images without a majority count as wrong.
"""
import csv
import sqlite3
import sys

import numpy as np
import cleanlab
from cleanlab.filter import find_label_issues

prefix, db, run = sys.argv[1], sys.argv[2], int(sys.argv[3])
classes = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
if len(sys.argv) > 4:
    table = list(csv.DictReader(open(sys.argv[4])))
    P = np.array([[float(r[c]) for c in classes] for r in table])
else:
    P = np.load(f"{prefix}.oof.npy").astype(np.float64)
P = P / P.sum(axis=1, keepdims=True)
rows = list(csv.DictReader(open(f"{prefix}.labels.csv")))
y = np.array([classes.index(r["given"]) for r in rows])
ref = np.array([classes.index(r["reference"]) if r["reference"] else -1 for r in rows])
train = np.flatnonzero([r["split"] == "train" for r in rows])
paths = [r["path"] for r in rows]

ranked = find_label_issues(y[train], P[train], return_indices_ranked_by="self_confidence")
flagged = train[ranked]
proposed = P.argmax(axis=1)
print(f"cleanlab {cleanlab.__version__}: {len(flagged)} label issues among {len(train)} training images")

con = sqlite3.connect(db)
ours = con.execute(
    "SELECT i.path, r.proposed_label FROM run_images r JOIN images i ON i.id = r.image_id "
    "WHERE r.run_id = ? AND r.proposed_label IS NOT NULL ORDER BY r.proposal_margin DESC, r.image_id",
    (run,),
).fetchall()
ours_paths = [p for p, _ in ours]
same = set(ours_paths) == {paths[i] for i in flagged}
print(f"fer-clean run {run}: {len(ours)} proposals; same set as cleanlab's: {same}")
agree = sum(1 for p, lab in ours if lab == classes[proposed[paths.index(p)]]) if len(ours) < 20000 else None

def precision(order_idx, n):
    top = order_idx[:n]
    right = sum(1 for i in top if ref[i] == proposed[i])
    return right, len(top)

ours_idx = [paths.index(p) for p in ours_paths]
for n in (100, 250, 1000, len(flagged)):
    a = precision(list(flagged), n)
    b = precision(ours_idx, n)
    print(f"first {n}: cleanlab self_confidence order {a[0]}/{a[1]} = {a[0] / max(a[1], 1):.3f}; fer-clean margin order {b[0]}/{b[1]} = {b[0] / max(b[1], 1):.3f}")
test = np.array([r["split"] == "test" for r in rows]) & (ref >= 0)
print(f"test accuracy of the argmax vs FER+ majority: {(proposed[test] == ref[test]).mean():.4f} ({test.sum()} images)")
