#!/usr/bin/env python3
"""Golden values for cxr-eval's AUC, average precision, F1, DeLong and bootstrap.

References: scikit-learn 1.9.1 (roc_auc_score, average_precision_score, f1_score),
scipy 1.17.1 (rankdata, norm), numpy 2.4.6. DeLong: a direct Python implementation of the
fast algorithm of Sun & Xu (2014) on scipy midranks, cross-checked against the O(m n)
definition of DeLong et al. (1988) before writing.

Writes crates/cxr-eval/tests/fixtures/auc_goldens.json. Unknown labels are written as null.
Run: python3 scripts/goldens/cxr-eval/make_auc_goldens.py
"""
import json
import pathlib

import numpy as np
import scipy
import sklearn
from scipy.stats import norm, rankdata
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

OUT = pathlib.Path(__file__).resolve().parents[3] / "crates/cxr-eval/tests/fixtures/auc_goldens.json"
rng = np.random.default_rng(20261128)


def safe_auc(y, s):
    if y.min() == y.max():
        return None
    return float(roc_auc_score(y, s))


def safe_ap(y, s):
    if y.sum() == 0:
        return None
    return float(average_precision_score(y, s))


# ---- single-class AUC cases: ties and degenerate classes -------------------------------
cases = []


def add_case(name, s, y):
    s = np.asarray(s, dtype=float)
    y = np.asarray(y, dtype=int)
    cases.append({"name": name, "scores": s.tolist(), "labels": y.tolist(),
                  "auc": safe_auc(y, s), "ap": safe_ap(y, s)})


y = rng.random(200) < 0.3
add_case("continuous", rng.normal(size=200) + y, y)
add_case("heavy_ties_1dp", np.round(rng.random(300) + 0.3 * (rng.random(300) < 0.5), 1), rng.random(300) < 0.4)
y = rng.random(150) < 0.2
add_case("integer_scores", rng.integers(0, 4, 150) + y, y)
add_case("all_tied", np.full(50, 0.5), rng.random(50) < 0.5)
add_case("no_positives", rng.random(40), np.zeros(40))
add_case("no_negatives", rng.random(40), np.ones(40))
add_case("single_positive", rng.random(60), np.eye(1, 60, 17)[0])
y = rng.random(5000) < 0.01
add_case("rare_5000_ties", np.round(rng.normal(size=5000) + 0.8 * y, 2), y)

# ---- a matrix with unknown labels and degenerate classes for evaluate() ------------------
n, c = 400, 7
labels = (rng.random((n, c)) < np.array([0.3, 0.1, 0.02, 0.0, 1.0, 0.5, 0.05])).astype(float)
scores = np.round(rng.normal(size=(n, c)) + 0.7 * labels, 2).astype(np.float32)
unknown = rng.random((n, c)) < 0.15
labels[unknown] = np.nan
labels[:, 6] = np.nan  # class 6: all unknown
labels[:5, 6] = [1, 0, 1, 0, 0]
groups = ["base", "base", "rare", "rare", "base", "base", "rare"]
per_class = []
for j in range(c):
    m = ~np.isnan(labels[:, j])
    yj = labels[m, j].astype(int)
    per_class.append({"auc": safe_auc(yj, scores[m, j].astype(float)), "n_pos": int(yj.sum()),
                      "n_neg": int((1 - yj).sum()), "ap": safe_ap(yj, scores[m, j].astype(float))})


def macro(sel, key="auc"):
    v = [p[key] for p, g in zip(per_class, groups) if p[key] is not None and g in sel]
    return float(np.mean(v)) if v else None


matrix = {
    "scores": scores.astype(float).tolist(),
    "labels": [[None if np.isnan(v) else v for v in row] for row in labels.tolist()],
    "groups": groups, "per_class": per_class,
    "macro_all": macro({"base", "rare"}), "macro_base": macro({"base"}), "macro_rare": macro({"rare"}),
    "map_all": macro({"base", "rare"}, "ap"), "map_base": macro({"base"}, "ap"),
    "map_rare": macro({"rare"}, "ap"),
}


# ---- fast DeLong (Sun & Xu 2014) ---------------------------------------------------------
def fast_delong(preds, y):
    """preds: k x N, y: N bool. Returns aucs (k,), covariance (k, k)."""
    pos, neg = preds[:, y], preds[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    tx = np.array([rankdata(r) for r in pos])
    ty = np.array([rankdata(r) for r in neg])
    tz = np.array([rankdata(r) for r in np.hstack([pos, neg])])
    aucs = tz[:, :m].sum(axis=1) / m / n - (m + 1.0) / 2.0 / n
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov


def slow_delong(preds, y):
    """DeLong et al. (1988) by its definition, O(m n)."""
    out_auc, v10s, v01s = [], [], []
    for p in preds:
        x, w = p[y], p[~y]
        psi = (x[:, None] > w[None, :]) + 0.5 * (x[:, None] == w[None, :])
        out_auc.append(psi.mean())
        v10s.append(psi.mean(axis=1))
        v01s.append(psi.mean(axis=0))
    m, n = len(v10s[0]), len(v01s[0])
    cov = np.atleast_2d(np.cov(np.array(v10s))) / m + np.atleast_2d(np.cov(np.array(v01s))) / n
    return np.array(out_auc), cov


delong_cases = []
for name, nn, prev, tie_dp, gap in [("continuous", 300, 0.3, None, 0.4), ("ties", 250, 0.2, 1, 0.2),
                                    ("rare", 2000, 0.02, 2, 0.6), ("close_models", 500, 0.4, None, 0.0)]:
    y = rng.random(nn) < prev
    base = rng.normal(size=nn) + 1.0 * y
    a = base + rng.normal(scale=0.8, size=nn)
    b = base + rng.normal(scale=0.8, size=nn) + gap * y
    if tie_dp is not None:
        a, b = np.round(a, tie_dp), np.round(b, tie_dp)
    preds = np.vstack([a, b])
    aucs, cov = fast_delong(preds, y)
    aucs_slow, cov_slow = slow_delong(preds, y)
    assert np.allclose(aucs, aucs_slow, atol=1e-12) and np.allclose(cov, cov_slow, atol=1e-12)
    assert abs(aucs[0] - roc_auc_score(y, a)) < 1e-12
    var_diff = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    z = (aucs[0] - aucs[1]) / np.sqrt(var_diff)
    p = 2 * norm.sf(abs(z))
    zq = norm.ppf(0.975)
    ci_a = [max(0.0, aucs[0] - zq * np.sqrt(cov[0, 0])), min(1.0, aucs[0] + zq * np.sqrt(cov[0, 0]))]
    delong_cases.append({"name": name, "scores_a": a.tolist(), "scores_b": b.tolist(),
                         "labels": y.astype(int).tolist(), "auc_a": aucs[0], "auc_b": aucs[1],
                         "var_a": cov[0, 0], "var_b": cov[1, 1], "covariance": cov[0, 1],
                         "z": z, "p_value": p, "ci95_a": ci_a})

# ---- F1 at a threshold chosen on validation ---------------------------------------------
yv = rng.random(300) < 0.25
sv = np.round(rng.normal(size=300) + 1.2 * yv, 2)
best_t, best_f1 = None, -1.0
for t in sorted(set(sv.tolist()), reverse=True):  # higher threshold wins ties, as in Rust
    f = f1_score(yv, sv >= t, zero_division=0)
    if f > best_f1:
        best_t, best_f1 = t, f
yt = rng.random(300) < 0.25
st = np.round(rng.normal(size=300) + 1.2 * yt, 2)
f1_case = {"val_scores": sv.tolist(), "val_labels": yv.astype(int).tolist(), "best_threshold": best_t,
           "best_f1": best_f1, "test_scores": st.tolist(), "test_labels": yt.astype(int).tolist(),
           "test_f1": float(f1_score(yt, st >= best_t, zero_division=0))}

# ---- bootstrap sanity: numpy percentile bootstrap with many resamples -------------------
yb = rng.random(600) < 0.15
sb = rng.normal(size=600) + 0.9 * yb
boots = []
for _ in range(20000):
    idx = rng.integers(0, 600, 600)
    if yb[idx].min() != yb[idx].max():
        boots.append(roc_auc_score(yb[idx], sb[idx]))
boot_case = {"scores": sb.tolist(), "labels": yb.astype(int).tolist(), "auc": float(roc_auc_score(yb, sb)),
             "resamples": 20000, "ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))],
             "std": float(np.std(boots))}

OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps({
    "produced_by": f"scripts/goldens/cxr-eval/make_auc_goldens.py with scikit-learn {sklearn.__version__}, "
                   f"scipy {scipy.__version__}, numpy {np.__version__}",
    "auc_cases": cases, "matrix": matrix, "delong": delong_cases, "f1": f1_case, "bootstrap": boot_case,
}))
print("wrote", OUT, OUT.stat().st_size, "bytes")
