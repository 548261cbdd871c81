#!/usr/bin/env python3
"""Benchmark cxr-mixture against scikit-learn and studenttmixture on the same machine, same run.

    /work/pyenv/bin/python scripts/goldens/cxr-mixture/bench.py [--quick]

Times exactly ITERS EM iterations (tol=0) from the same initial parameters on both sides
(means = first K rows of shuffled data, covariances = the data's covariance or its diagonal,
uniform weights), so the per-iteration cost excludes initialisation. Data: K clusters of
L2-normalised CLIP-like embeddings in D = 512. Rust runs the dev profile (what `cargo xtask`
builds: opt-level 2, dependencies 3). Prints a markdown table for docs/benchmarks.md.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from sklearn.mixture import GaussianMixture
from studenttmixture import EMStudentMixture

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def embeddings(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, k, size=n)] + rng.normal(scale=0.7 / np.sqrt(d), size=(n, d)) * 3
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def init(x, k, cov_type):
    d = x.shape[1]
    cov = np.cov(x, rowvar=False, bias=True)
    means = x[:k].copy()
    covs = np.stack([cov] * k) if cov_type == "full" else np.stack([np.diag(cov)] * k)
    return np.full(k, 1.0 / k), means, covs


def sklearn_per_iter(x, k, cov_type, iters):
    w, m, c = init(x, k, cov_type)
    prec = np.stack([np.linalg.inv(ci) for ci in c]) if cov_type == "full" else 1.0 / c
    gm = GaussianMixture(k, covariance_type=cov_type, tol=0.0, max_iter=iters,
                         weights_init=w, means_init=m, precisions_init=prec)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(x)
    # fit() ends with one extra E-step; subtract it so both sides count ITERS iterations.
    t_fit = time.perf_counter() - t
    t = time.perf_counter()
    gm._e_step(x)
    t_e = time.perf_counter() - t
    return (t_fit - t_e) / iters, list(gm.lower_bounds_)


def student_per_iter(x, k, iters):
    w, m, c = init(x, k, "full")
    model = EMStudentMixture(n_components=k, tol=1e-300, max_iter=iters, df=6.0, fixed_df=True)
    scale = np.stack(list(c), axis=-1)
    chol = np.stack([np.linalg.cholesky(ci) for ci in c], axis=-1)
    model.initialize_params = lambda X, s, i: (m.copy(), scale.copy(), w.copy(), chol.copy())
    t = time.perf_counter()
    model.fitting_restart(x, 0)
    return (time.perf_counter() - t) / iters


def rust(path, n, d, k, cov, mode, iters):
    cmd = ["cargo", "run", "-q", "-p", "cxr-mixture", "--example", "bench_em", "--",
           path, str(n), str(d), str(k), cov, mode, str(iters)]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    quick = "--quick" in sys.argv
    d, k = 512, 40
    cases = [  # (label, n, cov, model, iters)
        ("GMM diag", 50_000, "diag", "gmm", 3),
        ("GMM full", 4_096, "full", "gmm", 2),
        ("Student-t full", 2_048, "full", "student", 2),
        ("GMM diag (bank)", 4_096, "diag", "gmm", 5),
    ]
    if quick:
        cases = [(l, min(n, 2048), c, m, 2) for l, n, c, m, _ in cases]
    subprocess.run(["cargo", "build", "-q", "-p", "cxr-mixture", "--example", "bench_em"], cwd=ROOT, check=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, n, cov, model, iters in cases:
            x = embeddings(n, d, k)
            path = os.path.join(tmp, f"x_{n}.f64")
            x.astype("<f8").tofile(path)
            r = rust(path, n, d, k, cov, model, iters)
            if model == "student":
                ref, ref_name = student_per_iter(x, k, iters), "studenttmixture 1.11"
            else:
                ref, lbs = sklearn_per_iter(x, k, cov, iters)
                ref_name = "scikit-learn 1.9.1"
                np.testing.assert_allclose(r["lower_bounds"], lbs, rtol=1e-6)
            rows.append((label, n, iters, ref_name, ref, r["seconds_per_iter"]))
            print(f"{label} N={n}: ref {ref:.3f} s/iter, rust {r['seconds_per_iter']:.3f} s/iter", file=sys.stderr)
        xb = embeddings(4096, d, k)
        path = os.path.join(tmp, "bank.f64")
        xb.astype("<f8").tofile(path)
        bank = rust(path, 4096, d, k, "diag", "bank", 10)
    print("| case (D=512, K=40) | N | iters | reference | reference s/iter | cxr-mixture s/iter | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for label, n, iters, ref_name, ref, ours in rows:
        print(f"| {label} | {n} | {iters} | {ref_name} | {ref:.3f} | {ours:.3f} | {ref / ours:.1f}x |")
    print(f"\nMemory-bank step (bank 4096, batch 32, Student-t nu=6 diag, warm start): "
          f"{bank['seconds_per_step']:.3f} s per training step")


if __name__ == "__main__":
    main()
