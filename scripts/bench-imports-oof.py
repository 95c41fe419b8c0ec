"""Out-of-fold predicted probabilities from a second model, for `fer-clean train --probs` (docs/BENCHMARKS.md, imports).

Usage: python3 scripts/bench-imports-oof.py PREFIX  (reads PREFIX.npy, PREFIX.paths.txt, PREFIX.labels.csv as written
by scripts/bench-imports-dump.mjs; writes PREFIX.oof.csv). The model: standardise, then multinomial logistic
regression (scikit-learn), 5-fold stratified cross_val_predict on the train split (out-of-fold), and a model fitted on
the whole train split for the valid and test images.
"""
import csv
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

prefix = sys.argv[1]
classes = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
X = np.load(f"{prefix}.npy").astype(np.float64)
paths = [p for p in open(f"{prefix}.paths.txt").read().split("\n") if p]
rows = list(csv.DictReader(open(f"{prefix}.labels.csv")))
y = np.array([classes.index(r["given"]) for r in rows])
train = np.array([r["split"] == "train" for r in rows])

model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
P = np.zeros((len(y), len(classes)))
P[train] = cross_val_predict(model, X[train], y[train], cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")
model.fit(X[train], y[train])
P[~train] = model.predict_proba(X[~train])

with open(f"{prefix}.oof.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["path"] + classes)
    for p, row in zip(paths, P):
        w.writerow([p] + [f"{v:.6f}" for v in row])
np.save(f"{prefix}.oof.npy", P.astype(np.float32))
print(f"{len(paths)} rows -> {prefix}.oof.csv, {prefix}.oof.npy")
