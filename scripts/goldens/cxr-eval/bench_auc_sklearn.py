#!/usr/bin/env python3
"""The reference side of `cargo xtask bench auc` (crates/cxr-eval/examples/bench_auc.rs): a
plain scikit-learn loop (what CheXzero's `bootstrap` does): per resample, draw row indices
with replacement, then roc_auc_score per class. Runs `--resamples` resamples (fewer than 1,000
to keep the run short; the caller extrapolates linearly, which is exact for a loop of identical
iterations up to noise).

Prints JSON: {"sklearn": version, "point_s": seconds for the 40 point AUCs,
"per_resample_s": seconds per resample, CPU-time twins *_cpu_s, "resamples": k,
"aucs": [...]}.
scikit-learn 1.9.1, numpy 2.4.6.
"""
import argparse
import json
import time

import numpy as np
import sklearn
from sklearn.metrics import roc_auc_score

ap = argparse.ArgumentParser()
ap.add_argument("--scores", required=True)
ap.add_argument("--labels", required=True)
ap.add_argument("--resamples", type=int, default=10)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()

s = np.loadtxt(a.scores, delimiter=",", skiprows=1)
y = np.loadtxt(a.labels, delimiter=",", skiprows=1).astype(int)
n, c = s.shape

t0, c0 = time.perf_counter(), time.process_time()
aucs = [roc_auc_score(y[:, j], s[:, j]) for j in range(c)]
point_s, point_cpu_s = time.perf_counter() - t0, time.process_time() - c0

rng = np.random.default_rng(a.seed)
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(a.resamples):
    idx = rng.integers(0, n, n)
    ys, ss = y[idx], s[idx]
    for j in range(c):
        if ys[:, j].min() != ys[:, j].max():
            roc_auc_score(ys[:, j], ss[:, j])
per_resample_s = (time.perf_counter() - t0) / a.resamples
per_resample_cpu_s = (time.process_time() - c0) / a.resamples

print(json.dumps({"sklearn": sklearn.__version__, "point_s": point_s, "per_resample_s": per_resample_s,
                  "point_cpu_s": point_cpu_s, "per_resample_cpu_s": per_resample_cpu_s,
                  "resamples": a.resamples, "aucs": aucs}))
