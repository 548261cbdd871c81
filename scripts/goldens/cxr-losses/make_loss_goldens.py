#!/usr/bin/env python3
"""Golden values and gradients for crates/cxr-losses.

References: torch 2.15.0 (torch.nn.TripletMarginLoss, autograd) and open_clip_torch 3.3.0
(open_clip.loss.ClipLoss). Run from the repository root:

    python3 scripts/goldens/cxr-losses/make_loss_goldens.py

Writes crates/cxr-losses/tests/fixtures/loss_goldens.json. Inputs are float64 in the file;
the Rust tests rebuild them as f32 (the reference runs in float64, so the goldens carry no
float32 rounding of their own).

- clip: open_clip ClipLoss on F.normalize'd features with scale exp(log).clamp(max=100),
  as cxr_losses::clip_loss does; gradients w.r.t. the raw features and the log scale.
- triplet: the mining rules (batch-all, batch-hard, semi-hard) are written here independently
  with torch tensor ops; the loss on the mined triplets is torch.nn.TripletMarginLoss(p=2).
- weighted_metric: a direct torch transcription of the documented reading of the released
  code's weighted metric loss (see cxr_losses::weighted_metric_loss).
- soft_pseudo_labels: the same transcription of the released code's soft pseudo-labels
  (see cxr_losses::soft_pseudo_labels).
"""
import json
import math
import os

import open_clip
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

torch.manual_seed(1234)
DT = torch.float64
OUT = os.path.join("crates", "cxr-losses", "tests", "fixtures", "loss_goldens.json")


def tolist(t):
    return t.detach().cpu().tolist()


def clip_case(n, d, log_scale):
    img = torch.randn(n, d, dtype=DT, requires_grad=True)
    txt = torch.randn(n, d, dtype=DT, requires_grad=True)
    ls = torch.tensor(log_scale, dtype=DT, requires_grad=True)
    scale = ls.exp().clamp(max=100.0)
    loss = ClipLoss()(F.normalize(img, dim=-1), F.normalize(txt, dim=-1), scale)
    loss.backward()
    return {
        "image": tolist(img), "text": tolist(txt), "log_scale": log_scale,
        "loss": loss.item(), "grad_image": tolist(img.grad), "grad_text": tolist(txt.grad),
        "grad_log_scale": ls.grad.item(),
    }


def mine(dist, labels, mining):
    """Index triples (a, p, n) chosen from the distance matrix, written with torch masks."""
    n = len(labels)
    lab = torch.tensor(labels)
    same = lab[:, None] == lab[None, :]
    eye = torch.eye(n, dtype=torch.bool)
    pos = same & ~eye
    neg = ~same
    out = []
    if mining == "batch-all":
        a, p, q = torch.nonzero(pos[:, :, None] & neg[:, None, :], as_tuple=True)
        out = list(zip(a.tolist(), p.tolist(), q.tolist()))
    elif mining == "batch-hard":
        dp = torch.where(pos, dist, torch.full_like(dist, -math.inf))
        dn = torch.where(neg, dist, torch.full_like(dist, math.inf))
        for a in range(n):
            if pos[a].any() and neg[a].any():
                out.append((a, int(dp[a].argmax()), int(dn[a].argmin())))
    elif mining == "semi-hard":
        for a in range(n):
            if not neg[a].any():
                continue
            for p in torch.nonzero(pos[a]).flatten().tolist():
                farther = neg[a] & (dist[a] > dist[a, p])
                if farther.any():
                    q = int(torch.where(farther, dist[a], torch.full_like(dist[a], math.inf)).argmin())
                else:
                    q = int(torch.where(neg[a], dist[a], torch.full_like(dist[a], -math.inf)).argmax())
                out.append((a, p, q))
    return out


def triplet_case(emb0, labels, margin, mining, normalise):
    emb = emb0.clone().requires_grad_(True)
    x = F.normalize(emb, dim=-1) if normalise else emb
    dist = torch.cdist(x.detach(), x.detach())
    trip = mine(dist, labels, mining)
    if trip:
        idx = torch.tensor(trip)
        loss = torch.nn.TripletMarginLoss(margin=margin, p=2)(x[idx[:, 0]], x[idx[:, 1]], x[idx[:, 2]])
    else:
        loss = (emb * 0).sum()
    loss.backward()
    return {
        "emb": tolist(emb0), "labels": labels, "margin": margin, "mining": mining,
        "normalise": normalise, "triplets": [list(t) for t in trip], "loss": loss.item(),
        "grad_emb": tolist(emb.grad),
    }


def weighted_case(n, d, k, base_margin, temperature):
    img = torch.randn(n, d, dtype=DT, requires_grad=True)
    txt = torch.randn(n, d, dtype=DT, requires_grad=True)
    t = torch.tensor(temperature, dtype=DT, requires_grad=True)
    # Soft pseudo-labels as the released code builds them: sharpened responsibilities,
    # reweighted by 1 / log1p(cluster mass), L1-normalised.
    logits = torch.randn(n, k, dtype=DT)
    resp = torch.softmax(logits / 0.05, dim=1)
    w = resp / torch.log1p(resp.sum(0) * 10.0)
    plab = w / w.sum(1, keepdim=True)
    dist = torch.cdist(F.normalize(img, dim=-1), F.normalize(txt, dim=-1)) / t
    pw = plab @ plab.T
    mean_pos = (dist * pw).sum() / pw.sum()
    mean_neg = (dist * (1 - pw)).sum() / (1 - pw).sum()
    loss = torch.relu(mean_pos - mean_neg + base_margin * (1 + torch.exp(-mean_pos)))
    loss.backward()
    return {
        "image": tolist(img), "text": tolist(txt), "pseudo_labels": tolist(plab),
        "temperature": temperature, "base_margin": base_margin, "loss": loss.item(),
        "grad_image": tolist(img.grad), "grad_text": tolist(txt.grad), "grad_temperature": t.grad.item(),
    }


def soft_labels_case(n, k, sharpen, zero_column):
    # Posteriors as a mixture's predict_proba gives them; optionally one empty cluster.
    logits = torch.randn(n, k, dtype=DT) * 3.0
    if zero_column:
        logits[:, -1] = -float("inf")
    post = torch.softmax(logits, dim=1)
    # Released code: softmax(log_probs / 0.05), / log1p(cluster mass), L1-normalised.
    resp = torch.softmax(torch.log(post) / sharpen, dim=1)
    mass = resp.sum(0)
    w = torch.where(mass > 0, resp / torch.log1p(mass), torch.zeros_like(resp))
    plab = w / w.sum(1, keepdim=True)
    return {"posteriors": tolist(post), "sharpen": sharpen, "soft_labels": tolist(plab)}


def main():
    clip = [clip_case(6, 8, math.log(1 / 0.07)), clip_case(5, 4, 3.0), clip_case(4, 6, 5.0)]
    emb = torch.randn(10, 6, dtype=DT)
    # Clusters of sizes 4, 3, 2 and one singleton (an anchor without positive).
    labels = [0, 1, 0, 2, 1, 0, 3, 2, 1, 0]
    trip = []
    for mining in ["batch-all", "batch-hard", "semi-hard"]:
        for margin in [0.2, 1.0]:
            trip.append(triplet_case(emb, labels, margin, mining, True))
    trip.append(triplet_case(emb * 0.5, labels, 0.5, "batch-hard", False))
    trip.append(triplet_case(emb * 0.5, labels, 0.5, "semi-hard", False))
    # Wider random batch with 3 pseudo-labels.
    emb2 = torch.randn(16, 5, dtype=DT)
    labels2 = [int(i) for i in torch.randint(0, 3, (16,))]
    for mining in ["batch-all", "batch-hard", "semi-hard"]:
        trip.append(triplet_case(emb2, labels2, 0.3, mining, True))
    weighted = [weighted_case(8, 6, 3, 0.3, 0.5), weighted_case(12, 5, 4, 0.3, 1.0)]
    # Drawn last so that the cases above keep their values.
    soft = [soft_labels_case(8, 4, 0.05, False), soft_labels_case(10, 5, 0.5, True)]
    out = {
        "generator": "scripts/goldens/cxr-losses/make_loss_goldens.py",
        "torch": torch.__version__, "open_clip": open_clip.__version__,
        "clip": clip, "triplet": trip, "weighted_metric": weighted,
        "soft_pseudo_labels": soft,
    }
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
