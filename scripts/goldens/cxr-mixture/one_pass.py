#!/usr/bin/env python3
"""Golden values for the released CXR-CML code's mixture step, checked by
crates/cxr-mixture/tests/parity.rs (`one_pass_student_t_matches_scipy_*`).

The released code fits sklearn's GaussianMixture (full covariances) and then scores ONE pass of
Student-t log densities with the GMM's weights, means and covariances and a fixed nu = 8; the
posteriors of those densities are its cluster probabilities. This script does the same with
scikit-learn 1.9.1 and scipy 1.17.1's `multivariate_t` (independent of our code):

    python3 scripts/goldens/cxr-mixture/one_pass.py

and writes crates/cxr-mixture/tests/fixtures/student_one_pass.json: the data, the GMM's
parameters, and per-sample log-likelihoods and posteriors of the Student-t pass.
"""
import json
import pathlib

import numpy as np
import scipy
import sklearn
from scipy.special import logsumexp
from scipy.stats import multivariate_t
from sklearn.mixture import GaussianMixture

OUT = pathlib.Path(__file__).resolve().parents[3] / "crates" / "cxr-mixture" / "tests" / "fixtures"
NU = 8.0


def main():
    rng = np.random.default_rng(7)
    # Three heavy-tailed clusters in 4 dims (t with 3 degrees of freedom), plus two outliers.
    centres = np.array([[0, 0, 0, 0], [6, 0, 2, 0], [0, 7, 0, -3]], dtype=float)
    x = np.concatenate(
        [c + rng.standard_t(3.0, size=(30, 4)) for c in centres] + [np.array([[20.0, -15, 9, 4], [-12, 18, -7, 11]])]
    )
    gmm = GaussianMixture(3, covariance_type="full", random_state=0, n_init=3, max_iter=100).fit(x)
    log_dens = np.stack(
        [
            np.log(w) + multivariate_t(loc=m, shape=c, df=NU).logpdf(x)
            for w, m, c in zip(gmm.weights_, gmm.means_, gmm.covariances_)
        ],
        axis=1,
    )
    per_sample = logsumexp(log_dens, axis=1)
    posteriors = np.exp(log_dens - per_sample[:, None])
    fixture = {
        "generated_by": "scripts/goldens/cxr-mixture/one_pass.py",
        "versions": {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "scipy": scipy.__version__},
        "nu": NU,
        "x": x.tolist(),
        "weights": gmm.weights_.tolist(),
        "means": gmm.means_.tolist(),
        "covariances": gmm.covariances_.tolist(),
        "score_samples": per_sample.tolist(),
        "predict_proba": posteriors.tolist(),
        "predict": posteriors.argmax(axis=1).tolist(),
        # The GMM's own labels, to show the Student-t pass is not a no-op on the outliers.
        "gmm_predict_proba": gmm.predict_proba(x).tolist(),
    }
    (OUT / "student_one_pass.json").write_text(json.dumps(fixture))
    diff = np.abs(posteriors - gmm.predict_proba(x)).max()
    print(f"wrote student_one_pass.json; max |t posterior - GMM posterior| = {diff:.3g}")


if __name__ == "__main__":
    main()
