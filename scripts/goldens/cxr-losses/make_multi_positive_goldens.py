#!/usr/bin/env python3
"""Golden values and gradients of cxr_losses::multi_positive_clip_loss, in numpy (float64).

Run from the repository root:

    target/py-goldens/bin/python scripts/goldens/cxr-losses/make_multi_positive_goldens.py

Writes crates/cxr-losses/tests/fixtures/multi_positive_goldens.json.

The reference is written here from the definition, independently of the Rust code:
logits L = s * normalize(img) @ normalize(txt).T with s = min(exp(log_scale), 100); targets
t_ij = [g_i == g_j] / #{k : g_k == g_i}; loss = 0.5 * (mean_i CE(t_i, softmax(L_i.)) +
mean_j CE(t_.j, softmax(L_.j))). Gradients are analytic (softmax minus targets, chained
through the normalisation) and checked here against central finite differences before they
are written. One case has all groups distinct: there the loss is CLIP's InfoNCE, checked
against a separate index-based InfoNCE.
"""
import json
import os

import numpy as np

OUT = os.path.join("crates", "cxr-losses", "tests", "fixtures", "multi_positive_goldens.json")
rng = np.random.default_rng(20261201)


def log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def targets(groups):
    g = np.asarray(groups)
    same = (g[:, None] == g[None, :]).astype(np.float64)
    return same / same.sum(axis=1, keepdims=True)


def forward(img, txt, log_scale, groups):
    scale = min(np.exp(log_scale), 100.0)
    a = img / np.linalg.norm(img, axis=1, keepdims=True)
    b = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    logits = scale * a @ b.T
    t = targets(groups)
    per_image = -(t * log_softmax(logits, 1)).sum(axis=1).mean()
    per_text = -(t * log_softmax(logits, 0)).sum(axis=0).mean()
    return 0.5 * (per_image + per_text)


def infonce(img, txt, log_scale):
    scale = min(np.exp(log_scale), 100.0)
    a = img / np.linalg.norm(img, axis=1, keepdims=True)
    b = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    logits = scale * a @ b.T
    idx = np.arange(len(img))
    return -0.5 * (log_softmax(logits, 1)[idx, idx].mean() + log_softmax(logits, 0)[idx, idx].mean())


def gradients(img, txt, log_scale, groups):
    n = len(img)
    scale = min(np.exp(log_scale), 100.0)
    na = np.linalg.norm(img, axis=1, keepdims=True)
    nb = np.linalg.norm(txt, axis=1, keepdims=True)
    a, b = img / na, txt / nb
    cos = a @ b.T
    logits = scale * cos
    t = targets(groups)
    p_rows = np.exp(log_softmax(logits, 1))
    p_cols = np.exp(log_softmax(logits, 0))
    # d loss / d logits: rows of t sum to 1 and t is symmetric (its columns sum to 1 too).
    g = 0.5 / n * ((p_rows - t) + (p_cols - t))
    ga = scale * g @ b
    gb = scale * g.T @ a
    # Through x / |x|: (dy - y <y, dy>) / |x|.
    gimg = (ga - a * (a * ga).sum(axis=1, keepdims=True)) / na
    gtxt = (gb - b * (b * gb).sum(axis=1, keepdims=True)) / nb
    gscale = (g * cos).sum()
    glog = gscale * scale if np.exp(log_scale) < 100.0 else 0.0
    return gimg, gtxt, glog


def finite_differences(img, txt, log_scale, groups, h=1e-6):
    def num(x, f):
        out = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            xp, xm = x.copy(), x.copy()
            xp[idx] += h
            xm[idx] -= h
            out[idx] = (f(xp) - f(xm)) / (2 * h)
        return out

    gi = num(img, lambda x: forward(x, txt, log_scale, groups))
    gt = num(txt, lambda x: forward(img, x, log_scale, groups))
    gl = (forward(img, txt, log_scale + h, groups) - forward(img, txt, log_scale - h, groups)) / (2 * h)
    return gi, gt, gl


def case(n, d, log_scale, groups):
    img = rng.standard_normal((n, d))
    txt = rng.standard_normal((n, d))
    # Identical texts embed identically (same token ids, same text tower).
    for i in range(n):
        first = groups.index(groups[i])
        txt[i] = txt[first]
    loss = forward(img, txt, log_scale, groups)
    gimg, gtxt, glog = gradients(img, txt, log_scale, groups)
    fi, ft, fl = finite_differences(img, txt, log_scale, groups)
    assert np.allclose(gimg, fi, atol=1e-7), np.abs(gimg - fi).max()
    assert np.allclose(gtxt, ft, atol=1e-7), np.abs(gtxt - ft).max()
    assert abs(glog - fl) < 1e-7, (glog, fl)
    if len(set(groups)) == n:
        assert abs(loss - infonce(img, txt, log_scale)) < 1e-12
    return {
        "image": img.tolist(), "text": txt.tolist(), "log_scale": log_scale, "groups": groups,
        "loss": loss, "grad_image": gimg.tolist(), "grad_text": gtxt.tolist(),
        "grad_log_scale": glog,
    }


cases = [
    # Two groups of identical texts and two singletons.
    case(6, 8, float(np.log(1 / 0.07)), [0, 1, 0, 2, 1, 3]),
    # One text for the whole batch but one ("normal" everywhere), a larger scale.
    case(5, 4, 3.0, [0, 0, 0, 1, 0]),
    # All texts distinct: InfoNCE.
    case(4, 6, 1.0, [0, 1, 2, 3]),
    # The scale clamped at 100: no gradient for the log scale.
    case(4, 5, 5.0, [0, 1, 1, 0]),
]
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump({"numpy": np.__version__, "cases": cases}, f, indent=1)
print(f"wrote {OUT}: {len(cases)} cases")
