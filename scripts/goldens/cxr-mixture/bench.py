#!/usr/bin/env python3
"""Benchmark cxr-mixture against scikit-learn and studenttmixture on the same machine, same run.

    python3 scripts/goldens/cxr-mixture/bench.py [--quick] [--only SUBSTR]

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
    """Cases: (label, n, cov, model, iters, more). Both sides run `iters` iterations from the
    same start (the same work); with `more`, cxr-mixture is also timed over `more` iterations
    (the references' dense iterations cost the same every time, ours get cheaper once the
    responsibilities are peaked). `--only SUBSTR` runs the matching cases only."""
    quick = "--quick" in sys.argv
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    d, k = 512, 40
    cases = [
        ("GMM diag", 50_000, "diag", "gmm", 3, None),
        ("GMM diag (bank)", 4_096, "diag", "gmm", 5, None),
        ("GMM full", 50_000, "full", "gmm", 1, 3),
        ("GMM full (bank)", 4_096, "full", "gmm", 2, 5),
        ("Student-t full", 50_000, "full", "student", 1, 3),
        ("Student-t full (bank)", 4_096, "full", "student", 2, 5),
        ("Student-t full", 2_048, "full", "student", 5, None),
    ]
    if quick:
        cases = [(l, min(n, 2048), c, m, 2, None) for l, n, c, m, _, _ in cases]
    if only:
        cases = [c for c in cases if only in f"{c[0]} {c[1]}"]
    subprocess.run(["cargo", "build", "-q", "-p", "cxr-mixture", "--example", "bench_em"], cwd=ROOT, check=True)
    rows = []
    bank = None
    with tempfile.TemporaryDirectory() as tmp:
        for label, n, cov, model, iters, more in cases:
            x = embeddings(n, d, k)
            path = os.path.join(tmp, f"x_{n}.f64")
            x.astype("<f8").tofile(path)
            r = rust(path, n, d, k, cov, model, iters)
            r_more = rust(path, n, d, k, cov, model, more) if more else None
            if model == "student":
                ref, ref_name = student_per_iter(x, k, iters), "studenttmixture 1.11"
            else:
                ref, lbs = sklearn_per_iter(x, k, cov, iters)
                ref_name = "scikit-learn 1.9.1"
                np.testing.assert_allclose(r["lower_bounds"], lbs, rtol=1e-6)
            ours = r["seconds_per_iter"]
            ours_more = r_more["seconds_per_iter"] if r_more else None
            rows.append((label, n, iters, ref_name, ref, ours, more, ours_more))
            extra = f", rust over {more} iters {ours_more:.3f} s/iter" if more else ""
            print(f"{label} N={n}: ref {ref:.3f} s/iter, rust {ours:.3f} s/iter{extra}", file=sys.stderr, flush=True)
        if not only or "bank" in only:
            xb = embeddings(4096, d, k)
            path = os.path.join(tmp, "bank.f64")
            xb.astype("<f8").tofile(path)
            bank = rust(path, 4096, d, k, "diag", "bank", 10)
    print("| case (D=512, K=40) | N | iters | reference | reference s/iter | cxr-mixture s/iter | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for label, n, iters, ref_name, ref, ours, more, ours_more in rows:
        print(f"| {label} | {n} | {iters} | {ref_name} | {ref:.3f} | {ours:.3f} | {ref / ours:.1f}x |")
        if more:
            print(f"| {label}, ours over {more} iters | {n} | {more} | {ref_name} (per-iteration cost as above) | {ref:.3f} | {ours_more:.3f} | {ref / ours_more:.1f}x |")
    if bank:
        print(f"\nMemory-bank step (bank 4096, batch 32, Student-t nu=6 diag, warm start): "
              f"{bank['seconds_per_step']:.3f} s per training step")


if __name__ == "__main__":
    main()
