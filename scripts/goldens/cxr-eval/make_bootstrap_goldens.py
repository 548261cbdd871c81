#!/usr/bin/env python3
"""Golden values for cxr-eval's patient-level and paired bootstrap and per-class DeLong tests.

References: scikit-learn 1.9.1 (roc_auc_score, average_precision_score), numpy 2.4.6. DeLong:
the fast algorithm of Sun & Xu (2014) in numpy (midranks by sorting), p-values with math.erfc.

A small test set (60 images of 25 patients, 4 classes: 2 base, 2 rare, a few unknown labels,
two methods' float32 scores) and 200 resamples of patient indices drawn here with a fixed
numpy seed are written to crates/cxr-eval/tests/fixtures/bootstrap_draws.json; the values
computed from them to crates/cxr-eval/tests/fixtures/bootstrap_goldens.json. Patients are
numbered by ascending id (cxr-eval's unit numbering); a drawn patient brings all its images.

Per-class AUC and AP intervals (`class_auc`, `class_ap`) are percentile intervals over the
resamples where the metric is defined.

Per resample a class counts when it holds a positive and a negative (AUC) or a positive (AP);
a macro averages the classes that count, and a difference of two methods' macros uses the same
resample for both. Intervals are numpy linear quantiles at (1 - level) / 2 and 1 - that.

Run: python3 scripts/goldens/cxr-eval/make_bootstrap_goldens.py (numpy, scikit-learn).
"""
import json
import math
import pathlib

import numpy as np
import sklearn
from sklearn.metrics import average_precision_score, roc_auc_score

ROOT = pathlib.Path(__file__).resolve().parents[3] / "crates/cxr-eval/tests/fixtures"
rng = np.random.default_rng(20261201)

N_PATIENTS, N_IMAGES, N_RESAMPLES, LEVEL = 25, 60, 200, 0.95
CLASSES = ["Effusion", "Atelectasis", "Hernia", "Pneumoperitoneum"]
GROUPS = ["base", "base", "rare", "rare"]
PREVALENCE = [0.4, 0.3, 0.15]

# ---- the test set -----------------------------------------------------------------------
patient_ids = rng.choice(np.arange(10_000_000, 20_000_000), size=N_PATIENTS, replace=False)
# Every patient has at least one image; the rest are spread at random.
owner = np.concatenate([np.arange(N_PATIENTS), rng.integers(0, N_PATIENTS, N_IMAGES - N_PATIENTS)])
rng.shuffle(owner)
ids = patient_ids[owner]
patient_labels = (rng.random((N_PATIENTS, 3)) < np.array(PREVALENCE)).astype(float)
labels = patient_labels[owner].copy()
# A few images differ from their patient, a few labels are unknown (NaN, left out).
flip = rng.random(labels.shape) < 0.05
labels[flip] = 1.0 - labels[flip]
labels[rng.random(labels.shape) < 0.04] = np.nan
# The rarest class: the images of two patients only, so some resamples hold no positive (the
# class is skipped there, never counted as 0.5).
labels = np.column_stack([labels, np.isin(owner, [0, 1]).astype(float)])
for c in range(len(CLASSES)):
    known = ~np.isnan(labels[:, c])
    assert labels[known, c].sum() >= 2 and (1 - labels[known, c]).sum() >= 2, CLASSES[c]


def method_scores(signal):
    noise = rng.random(labels.shape)
    s = np.where(labels == 1.0, signal, 0.0) + noise
    # Ties: a quarter of the scores on a coarse grid.
    coarse = rng.random(labels.shape) < 0.25
    s[coarse] = np.round(s[coarse] * 4) / 4
    return s.astype(np.float32).astype(np.float64)


methods = {"Baseline": method_scores(0.45), "CXR-CML": method_scores(0.6)}

# ---- the resamples ------------------------------------------------------------------------
draws = rng.integers(0, N_PATIENTS, size=(N_RESAMPLES, N_PATIENTS))
sorted_ids = np.sort(patient_ids)
unit_of_image = np.searchsorted(sorted_ids, ids)
images_of_unit = [np.flatnonzero(unit_of_image == u) for u in range(N_PATIENTS)]


def rows_of(draw):
    return np.concatenate([images_of_unit[u] for u in draw])


# ---- metrics ------------------------------------------------------------------------------
def class_metrics(s, l):
    known = ~np.isnan(l)
    y, x = l[known], s[known]
    auc = float(roc_auc_score(y, x)) if 0 < y.sum() < len(y) else None
    ap = float(average_precision_score(y, x)) if y.sum() > 0 else None
    return auc, ap


def macros(scores, lab):
    per = [class_metrics(scores[:, c], lab[:, c]) for c in range(len(CLASSES))]
    out = []
    for k in (0, 1):
        for group in (None, "base", "rare"):
            vals = [p[k] for p, g in zip(per, GROUPS) if (group is None or g == group) and p[k] is not None]
            out.append(float(np.mean(vals)) if vals else None)
    return out, [p[0] for p in per], [p[1] for p in per]


def interval(estimate, values):
    if estimate is None or not values:
        return None
    alpha = (1.0 - LEVEL) / 2.0
    lo, hi = np.quantile(np.array(values), [alpha, 1.0 - alpha])
    return {"estimate": estimate, "low": float(lo), "high": float(hi), "n_valid": len(values)}


def fast_delong(a, b, y):
    """Sun & Xu (2014): variances and covariance of two AUCs from midrank components."""
    m, n = int((y == 1).sum()), int((y == 0).sum())

    def midrank(x):
        order = np.argsort(x, kind="mergesort")
        xs = x[order]
        t = np.zeros(len(x))
        i = 0
        while i < len(x):
            j = i
            while j < len(x) and xs[j] == xs[i]:
                j += 1
            t[i:j] = 0.5 * (i + j - 1) + 1
            i = j
        out = np.empty(len(x))
        out[order] = t
        return out

    v10s, v01s, aucs = [], [], []
    for s in (a, b):
        x, z = s[y == 1], s[y == 0]
        tx, ty, tz = midrank(x), midrank(z), midrank(np.concatenate([x, z]))
        aucs.append(tz[:m].sum() / m / n - (m + 1) / 2 / n)
        v10s.append((tz[:m] - tx) / n)
        v01s.append(1.0 - (tz[m:] - ty) / m)
    sx, sy = np.cov(np.array(v10s)), np.cov(np.array(v01s))
    cov = sx / m + sy / n
    var_diff = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    diff = aucs[0] - aucs[1]
    if var_diff > 0:
        z = diff / math.sqrt(var_diff)
        p = min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))
    else:
        z, p = None, 1.0 if diff == 0 else 0.0
    return {"auc_a": float(aucs[0]), "auc_b": float(aucs[1]), "z": z, "p_value": p}


names = list(methods)
points = {k: macros(v, labels) for k, v in methods.items()}
resampled = {k: [] for k in names}
for draw in draws:
    rows = rows_of(draw)
    for k in names:
        resampled[k].append(macros(methods[k][rows], labels[rows]))

def class_intervals(points_c, resampled_k, which):
    """Per-class percentile intervals of metric `which` (1: AUC, 2: AP), as cxr-eval's."""
    out = []
    for c in range(len(CLASSES)):
        vals = [r[which][c] for r in resampled_k if r[which][c] is not None]
        if points_c[c] is None or not vals:
            out.append(None)
            continue
        alpha = (1.0 - LEVEL) / 2.0
        lo, hi = np.quantile(np.array(vals), [alpha, 1.0 - alpha])
        out.append({"low": float(lo), "high": float(hi), "mean": float(np.mean(vals)), "n_valid": len(vals)})
    return out


golden_methods = []
for k in names:
    point_macros, point_classes, point_ap = points[k]
    macro_cis = [interval(point_macros[j], [r[0][j] for r in resampled[k] if r[0][j] is not None]) for j in range(6)]
    class_cis = []
    for c in range(len(CLASSES)):
        vals = [r[1][c] for r in resampled[k] if r[1][c] is not None]
        if point_classes[c] is None or not vals:
            class_cis.append(None)
            continue
        alpha = (1.0 - LEVEL) / 2.0
        lo, hi = np.quantile(np.array(vals), [alpha, 1.0 - alpha])
        class_cis.append({"low": float(lo), "high": float(hi), "mean": float(np.mean(vals)), "n_valid": len(vals)})
    assert class_cis == class_intervals(point_classes, resampled[k], 1)
    # Per-class average precision: percentile intervals over the resamples holding a positive.
    class_ap = class_intervals(point_ap, resampled[k], 2)
    golden_methods.append({"method": k, "macros": macro_cis, "class_auc": class_cis, "class_ap": class_ap})

golden_pairs = []
for i in range(len(names)):
    for j in range(i + 1, len(names)):
        a, b = names[i], names[j]
        diffs = []
        for m in range(6):
            pa, pb = points[a][0][m], points[b][0][m]
            est = None if pa is None or pb is None else pa - pb
            vals = [
                ra[0][m] - rb[0][m]
                for ra, rb in zip(resampled[a], resampled[b])
                if ra[0][m] is not None and rb[0][m] is not None
            ]
            diffs.append(interval(est, vals))
        delong = []
        for c in range(len(CLASSES)):
            known = ~np.isnan(labels[:, c])
            y = labels[known, c]
            delong.append(fast_delong(methods[a][known, c], methods[b][known, c], y))
        golden_pairs.append({"a": a, "b": b, "diff": diffs, "delong": delong})


def nan_to_none(m):
    return [[None if np.isnan(v) else float(v) for v in row] for row in m]


ROOT.mkdir(parents=True, exist_ok=True)
(ROOT / "bootstrap_draws.json").write_text(
    json.dumps(
        {
            "classes": CLASSES,
            "groups": GROUPS,
            "level": LEVEL,
            "patient_ids": [int(v) for v in ids],
            "labels": nan_to_none(labels),
            "methods": {k: v.tolist() for k, v in methods.items()},
            "draws": draws.tolist(),
        }
    )
    + "\n"
)
(ROOT / "bootstrap_goldens.json").write_text(
    json.dumps(
        {
            "versions": {"numpy": np.__version__, "scikit-learn": sklearn.__version__},
            "macro_order": ["auc_all", "auc_base", "auc_rare", "map_all", "map_base", "map_rare"],
            "methods": golden_methods,
            "pairs": golden_pairs,
        },
        indent=1,
    )
    + "\n"
)
print(f"wrote {ROOT / 'bootstrap_draws.json'} and {ROOT / 'bootstrap_goldens.json'}")
