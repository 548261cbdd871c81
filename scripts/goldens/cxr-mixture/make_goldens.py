#!/usr/bin/env python3
"""Golden values for crates/cxr-mixture/tests/parity.rs.

References: scikit-learn 1.9.1 `sklearn.mixture.GaussianMixture` and studenttmixture 1.11
`EMStudentMixture` (numpy 2.4.6, scipy 1.17.1). Run from the repository root:

    python3 scripts/goldens/cxr-mixture/make_goldens.py

Writes JSON fixtures to crates/cxr-mixture/tests/fixtures/. Every fit starts from initial
parameters that the fixture also stores, so the Rust side can start from exactly the same point:
- GaussianMixture: weights_init / means_init / precisions_init, tol=0 so exactly `max_iter`
  iterations run; we record `lower_bounds_` (mean log-likelihood per iteration) and the final
  weights, means and covariances, plus score_samples / predict / bic of the final model.
- EMStudentMixture: its `initialize_params` is replaced by one returning our initial
  parameters (the package has no such option); `fitting_restart` is called directly (the
  public `fit` discards runs that did not converge); its `Estep` is wrapped only to record the
  per-iteration lower bound. With tol=1e-300 (it rejects 0) exactly `max_iter` iterations run. A second pair of
  runs converges tightly (tol=1e-14) for the McLachlan-Peel update, which has the same optimum.
"""
import json
import pathlib

import numpy as np
import scipy
import sklearn
import studenttmixture
from importlib.metadata import version
from sklearn.mixture import GaussianMixture
from studenttmixture import EMStudentMixture

OUT = pathlib.Path(__file__).resolve().parents[3] / "crates" / "cxr-mixture" / "tests" / "fixtures"
HEADER = {
    "generated_by": "scripts/goldens/cxr-mixture/make_goldens.py",
    "versions": {
        "scikit-learn": sklearn.__version__,
        "studenttmixture": version("studenttmixture"),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    },
}


def gaussian_data(rng, n_per=150, d=6, k=4):
    """k overlapping Gaussian clusters with distinct full covariances (soft responsibilities)."""
    xs = []
    for c in range(k):
        a = rng.normal(size=(d, d)) * 0.6
        cov = a @ a.T + 0.3 * np.eye(d)
        mean = rng.normal(size=d) * 3.0
        xs.append(rng.multivariate_normal(mean, cov, size=n_per))
    x = np.concatenate(xs)
    return x[rng.permutation(len(x))]


def student_data(rng, n_per=150, d=3, k=3, df=4.0):
    """k heavy-tailed (multivariate t, df=4) clusters."""
    xs = []
    for c in range(k):
        a = rng.normal(size=(d, d)) * 0.5
        scale = a @ a.T + 0.4 * np.eye(d)
        mean = rng.normal(size=d) * 4.0
        z = rng.multivariate_normal(np.zeros(d), scale, size=n_per)
        g = rng.chisquare(df, size=n_per) / df
        xs.append(mean + z / np.sqrt(g)[:, None])
    x = np.concatenate(xs)
    return x[rng.permutation(len(x))]


def initial_params(x, k, rng):
    """Means at k random samples, every covariance the data covariance, uniform weights."""
    idx = rng.choice(len(x), size=k, replace=False)
    means = x[idx].copy()
    cov = np.cov(x, rowvar=False, bias=True)
    return np.full(k, 1.0 / k), means, np.stack([cov] * k)


def to_type(covs, cov_type):
    if cov_type == "full":
        return covs
    if cov_type == "diag":
        return np.stack([np.diag(c) for c in covs])
    return np.array([np.diag(c).mean() for c in covs])


def precisions(covs, cov_type):
    if cov_type == "full":
        return np.stack([np.linalg.inv(c) for c in covs])
    return 1.0 / covs


def gmm_golden(x, k, cov_type, rng, max_iter=25, reg_covar=1e-6):
    w0, m0, c0 = initial_params(x, k, rng)
    c0 = to_type(c0, cov_type)
    gm = GaussianMixture(
        n_components=k,
        covariance_type=cov_type,
        tol=0.0,
        reg_covar=reg_covar,
        max_iter=max_iter,
        weights_init=w0,
        means_init=m0,
        precisions_init=precisions(c0, cov_type),
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(x)
    return {
        "covariance_type": cov_type,
        "k": k,
        "reg_covar": reg_covar,
        "max_iter": max_iter,
        "init": {"weights": w0.tolist(), "means": m0.tolist(), "covariances": c0.tolist()},
        "lower_bounds": list(map(float, gm.lower_bounds_)),
        "n_iter": int(gm.n_iter_),
        "weights": gm.weights_.tolist(),
        "means": gm.means_.tolist(),
        "covariances": gm.covariances_.tolist(),
        "score_samples": gm.score_samples(x).tolist(),
        "predict": gm.predict(x).tolist(),
        "bic": float(gm.bic(x)),
    }


def student_run(x, k, w0, m0, c0, df0, fixed_df, max_iter, tol, reg_covar=1e-6):
    model = EMStudentMixture(
        n_components=k, tol=tol, reg_covar=reg_covar, max_iter=max_iter, df=df0, fixed_df=fixed_df
    )
    scale = np.stack(list(c0), axis=-1)  # the package stores D x D x K
    chol = np.stack([np.linalg.cholesky(c) for c in c0], axis=-1)
    model.initialize_params = lambda X, seed, init: (m0.copy(), scale.copy(), w0.copy(), chol.copy())
    bounds = []
    orig = model.Estep

    def recording_estep(*args):
        resp, e_gamma, lb = orig(*args)
        bounds.append(float(lb))
        return resp, e_gamma, lb

    model.Estep = recording_estep
    lb, conv, loc, scale_, weights, df, _ = model.fitting_restart(x, 0)
    return {
        "fixed_df": fixed_df,
        "df_init": df0,
        "max_iter": max_iter,
        "tol": tol,
        "reg_covar": reg_covar,
        "lower_bounds": bounds,
        "converged": bool(conv),
        "weights": weights.tolist(),
        "means": loc.tolist(),
        "scales": np.moveaxis(scale_, -1, 0).tolist(),
        "df": df.tolist(),
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261128)
    x = gaussian_data(rng)
    gauss = {"x": x.tolist(), "fits": [gmm_golden(x, 4, t, rng) for t in ("full", "diag", "spherical")]}
    (OUT / "sklearn_gmm.json").write_text(json.dumps({**HEADER, **gauss}))

    xs = student_data(rng)
    k = 3
    w0, m0, c0 = initial_params(xs, k, rng)
    runs = {
        "fixed_steps": student_run(xs, k, w0, m0, c0, 6.0, True, 30, 1e-300),
        "learned_steps": student_run(xs, k, w0, m0, c0, 6.0, False, 30, 1e-300),
        "fixed_optimum": student_run(xs, k, w0, m0, c0, 6.0, True, 20000, 1e-14),
        "learned_optimum": student_run(xs, k, w0, m0, c0, 6.0, False, 20000, 1e-14),
    }
    student = {
        "x": xs.tolist(),
        "k": k,
        "init": {"weights": w0.tolist(), "means": m0.tolist(), "scales": c0.tolist()},
        "runs": runs,
    }
    (OUT / "studenttmixture.json").write_text(json.dumps({**HEADER, **student}))
    for name, r in runs.items():
        print(name, len(r["lower_bounds"]), r["converged"], r["df"])


if __name__ == "__main__":
    main()
