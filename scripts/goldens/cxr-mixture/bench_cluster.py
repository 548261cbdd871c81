#!/usr/bin/env python3
"""`xtask cluster` end to end against scikit-learn's whole `GaussianMixture.fit`, same data,
same run, both sides with their default k-means initialisation.

    OMP_NUM_THREADS=2 RAYON_NUM_THREADS=2 python3 scripts/goldens/cxr-mixture/bench_cluster.py \
        [--n 50000] [--k 40] [--max-iter 20] [--xtask PATH]

Data: the CLIP-like embeddings of bench.py (N x 512, float32 .npy, what `cxr-train` writes).
Ours: the whole `xtask cluster --model gmm --cov diag --n-init 1 --tol 0` process (reading the
.npy included), built beforehand with `cargo build -p xtask` (dev profile, optimised) unless
--xtask points at a binary. Reference: `GaussianMixture(K, covariance_type="diag",
max_iter, tol=0).fit(X)` on the float32 array. Each side also runs with --max-iter 1 to show
the initialisation's share. Prints one markdown row per setting: wall seconds, and CPU seconds
(user + sys, all threads) beside them, which move less than wall time when other jobs share the
cores (OpenMP's spin-waiting counts as CPU time on scikit-learn's side).

    python3 scripts/goldens/cxr-mixture/bench_cluster.py --sklearn-only X.npy [--k 40] [--max-iter 20]

is the reference side of `cargo xtask bench all`: scikit-learn's fit alone on a given float32
`.npy` (the xtask command draws data by `embeddings`' recipe in Rust, writes it, and times both
whole processes on it); prints one JSON line with the fit's wall and CPU seconds and the versions.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from sklearn.mixture import GaussianMixture

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def embeddings(n, d, k, seed=0):
    """bench.py's data (copied: bench.py also needs studenttmixture)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, k, size=n)] + rng.normal(scale=0.7 / np.sqrt(d), size=(n, d)) * 3
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fit_sklearn(x, k, iters):
    """scikit-learn's whole fit (k-means initialisation included): (wall s, CPU s, n_iter)."""
    gm = GaussianMixture(k, covariance_type="diag", max_iter=iters, tol=0.0, random_state=0)
    c = time.process_time()
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol = 0 never "converges"
        gm.fit(x)
    return time.perf_counter() - t, time.process_time() - c, int(gm.n_iter_)


def sklearn_only(path, k, iters):
    import sklearn

    x = np.load(path)
    wall, cpu, n_iter = fit_sklearn(x, k, iters)
    print(json.dumps({"fit_s": wall, "fit_cpu_s": cpu, "n_iter": n_iter, "n": int(x.shape[0]),
                      "d": int(x.shape[1]), "k": k, "sklearn": sklearn.__version__,
                      "numpy": np.__version__}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--k", type=int, default=40)
    ap.add_argument("--max-iter", type=int, default=20)
    ap.add_argument("--xtask", default=None, help="xtask binary (default: build target/debug/xtask)")
    ap.add_argument("--sklearn-only", metavar="X.npy", default=None,
                    help="fit scikit-learn only on this .npy and print one JSON line")
    a = ap.parse_args()
    if a.sklearn_only is not None:
        sklearn_only(a.sklearn_only, a.k, a.max_iter)
        return
    xtask = a.xtask
    if xtask is None:
        subprocess.run(["cargo", "build", "-q", "-p", "xtask"], cwd=ROOT, check=True)
        xtask = os.path.join(ROOT, "target", "debug", "xtask")
    x = embeddings(a.n, 512, a.k).astype(np.float32)
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
          f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS')}", file=sys.stderr)
    print("| N | K | iters | scikit-learn fit s (CPU s) | xtask cluster s (CPU s) | speed-up (wall) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.npy")
        np.save(path, x)
        for iters in (a.max_iter, 1):
            cmd = [xtask, "cluster", "--input", path, "--k", str(a.k), "--model", "gmm",
                   "--cov", "diag", "--n-init", "1", "--max-iter", str(iters), "--tol", "0",
                   "--out", os.path.join(tmp, "out.json")]
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            ours = time.perf_counter() - t
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            ours_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            ref, ref_cpu, _ = fit_sklearn(x, a.k, iters)
            print(f"| {a.n} | {a.k} | {iters} | {ref:.2f} ({ref_cpu:.2f}) | {ours:.2f} ({ours_cpu:.2f}) "
                  f"| {ref / ours:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
