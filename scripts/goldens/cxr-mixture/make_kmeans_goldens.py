#!/usr/bin/env python3
"""Golden values for the k-means initialisation (crates/cxr-mixture/src/init.rs tests).

Reference: scikit-learn 1.9.1 `sklearn.cluster.KMeans(algorithm="lloyd", n_init=1)`, which is
what `GaussianMixture(init_params="kmeans")` runs. Run from the repository root:

    python3 scripts/goldens/cxr-mixture/make_kmeans_goldens.py

Writes crates/cxr-mixture/tests/fixtures/sklearn_kmeans.json. Each case stores the data, the
initial centres passed as `init=` (so the Rust side starts from the same point; seeding RNGs
differ), tol and max_iter, and KMeans' final labels, centres, inertia and n_iter_. Cases: plain
convergence, a max_iter cut (labels recomputed for the last centres), and a centre that starts
far from every sample (empty-cluster relocation). A last case runs KMeans with its own
k-means++ seeding on well-separated blobs; the Rust side runs its own seeding and must reach
the same inertia.
"""
import json
import pathlib

import numpy as np
import sklearn
from sklearn.cluster import KMeans

OUT = pathlib.Path(__file__).resolve().parents[3] / "crates" / "cxr-mixture" / "tests" / "fixtures"


def blobs(rng, k, per, d, spread):
    centres = rng.normal(size=(k, d)) * spread
    x = np.concatenate([c + rng.normal(size=(per, d)) for c in centres])
    return x[rng.permutation(len(x))]


def case(name, x, init, max_iter, tol):
    km = KMeans(len(init), init=init, n_init=1, max_iter=max_iter, tol=tol, algorithm="lloyd")
    km.fit(x)
    return {
        "name": name,
        "x": x.tolist(),
        "init": init.tolist(),
        "max_iter": max_iter,
        "tol": tol,
        "labels": km.labels_.tolist(),
        "centres": km.cluster_centers_.tolist(),
        "inertia": float(km.inertia_),
        "n_iter": int(km.n_iter_),
    }


def main():
    rng = np.random.default_rng(7)
    x = blobs(rng, 6, 50, 8, 1.5)  # overlapping blobs: several Lloyd iterations
    x = x + 10.0  # far from the origin, as embeddings can be
    init = x[rng.choice(len(x), 6, replace=False)]
    far = init.copy()
    far[2] = 1e3
    cases = [
        case("converge", x, init, 300, 1e-4),
        case("max_iter_2", x, init, 2, 1e-4),
        case("empty_cluster", x, far, 300, 1e-4),
    ]
    sep = blobs(rng, 5, 40, 6, 20.0)
    km = KMeans(5, n_init=1, random_state=0, algorithm="lloyd").fit(sep)
    seeded = {"x": sep.tolist(), "k": 5, "inertia": float(km.inertia_)}
    OUT.mkdir(parents=True, exist_ok=True)
    doc = {
        "generated_by": "scripts/goldens/cxr-mixture/make_kmeans_goldens.py",
        "versions": {"scikit-learn": sklearn.__version__, "numpy": np.__version__},
        "cases": cases,
        "seeded": seeded,
    }
    (OUT / "sklearn_kmeans.json").write_text(json.dumps(doc))
    for c in cases:
        print(c["name"], "n_iter", c["n_iter"], "inertia", c["inertia"])


if __name__ == "__main__":
    main()
