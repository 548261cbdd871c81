#!/usr/bin/env python3
"""The references of the GPU check (docs/gpu.md), run by check.sh in the same run.

PyTorch eager on the same GPU: a Hugging Face `CLIPModel` ViT-B/32 (random init, no download)
training step (forward with the CLIP loss, backward, AdamW) at batch 32 and 256, in f32 and
under bf16 autocast; image embedding throughput (inference mode). scikit-learn's
GaussianMixture (diag, full) at N = 50,000, K = 40, D = 512 on all the machine's cores.
Same step ids the report's ratios look for: torch_train_b{32,256}_{f32,bf16}, torch_embed,
sklearn_gmm_{diag,full}.

Each step is caught and time-boxed against --budget-s (steps that would start after it are
`skipped`); the JSON (--out) is rewritten after every step, so a kill leaves a valid file.
A missing package (torch, transformers, scikit-learn) makes its steps `skipped`, not an error.

--dry-run: CPU, tiny shapes (a tiny CLIP, N = 2,000, K = 4, D = 16), seconds.

Usage: reference.py --out FILE [--dry-run] [--budget-s S] [--device cuda|cpu]
"""

import argparse
import json
import os
import platform
import sys
import time
import traceback

SCHEMA = "cxr-cml-gpu-reference/1"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes")
    ap.add_argument("--budget-s", type=float, default=150.0, help="overall time budget (s)")
    ap.add_argument("--device", default="cuda", help="torch device (ignored by --dry-run)")
    args = ap.parse_args()
    start = time.time()
    report = {
        "schema": SCHEMA,
        "mode": "dry-run" if args.dry_run else "device",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "budget_s": args.budget_s,
        "versions": {},
        "steps": {},
        "finished": False,
    }

    def save():
        report["elapsed_s"] = time.time() - start
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=2)
        os.replace(tmp, args.out)

    def step(name, fn, needs):
        missing = [m for m in needs if not importable(m)]
        left = args.budget_s - (time.time() - start)
        if missing:
            report["steps"][name] = {"status": "skipped", "error": f"not importable: {', '.join(missing)}"}
        elif left < 5:
            report["steps"][name] = {"status": "skipped", "error": f"budget of {args.budget_s:.0f} s spent"}
        else:
            t0 = time.time()
            try:
                res = fn()
                res["status"] = "ok"
            except Exception as e:  # recorded, never fatal
                res = {"status": "error", "error": f"{type(e).__name__}: {e}",
                       "traceback": traceback.format_exc()[-2000:]}
            res["seconds"] = time.time() - t0
            report["steps"][name] = res
        print(f"[reference] {name}: {report['steps'][name]['status']}", file=sys.stderr, flush=True)
        save()

    for mod in ["numpy", "torch", "transformers", "sklearn"]:
        if importable(mod):
            report["versions"][mod] = __import__(mod).__version__
    save()

    device = "cpu" if args.dry_run else args.device
    for batch in (32, 256):
        for prec in ("f32", "bf16"):
            b = batch if not args.dry_run else (4 if batch == 32 else 8)
            step(f"torch_train_b{batch}_{prec}",
                 lambda b=b, prec=prec: torch_train(b, prec, device, args.dry_run),
                 ["torch", "transformers"])
    step("torch_embed", lambda: torch_embed(device, args.dry_run), ["torch", "transformers"])
    for cov in ("diag", "full"):
        step(f"sklearn_gmm_{cov}", lambda cov=cov: sklearn_gmm(cov, args.dry_run), ["sklearn", "numpy"])
    report["finished"] = True
    save()


def importable(mod):
    try:
        __import__(mod)
        return True
    except Exception:
        return False


def clip_model(dry_run, device):
    import torch
    from transformers import CLIPConfig, CLIPModel

    if dry_run:
        vision = dict(image_size=32, patch_size=8, hidden_size=64, intermediate_size=256,
                      num_hidden_layers=2, num_attention_heads=2)
        text = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                    num_attention_heads=2, vocab_size=49408, max_position_embeddings=77)
        proj = 64
    else:  # ViT-B/32 (openai/clip-vit-base-patch32's shapes)
        vision = dict(image_size=224, patch_size=32, hidden_size=768, intermediate_size=3072,
                      num_hidden_layers=12, num_attention_heads=12)
        text = dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                    num_attention_heads=8, vocab_size=49408, max_position_embeddings=77)
        proj = 512
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=proj)
    torch.manual_seed(0)
    model = CLIPModel(cfg).to(device)
    return model, vision["image_size"]


def inputs(batch, size, device):
    import torch

    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(batch, 3, size, size, generator=g).to(device)
    ids = torch.zeros(batch, 77, dtype=torch.long)
    for i in range(batch):
        n = int(torch.randint(3, 20, (1,), generator=g))
        ids[i, 0] = 49406
        ids[i, 1:n] = torch.randint(1, 40000, (n - 1,), generator=g)
        ids[i, n] = 49407
    return pixels, ids.to(device)


def sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def torch_train(batch, prec, device, dry_run):
    import torch

    model, size = clip_model(dry_run, device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.1)
    pixels, ids = inputs(batch, size, device)
    dev_type = "cuda" if str(device).startswith("cuda") else "cpu"
    if dev_type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def one():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev_type, dtype=torch.bfloat16, enabled=(prec == "bf16")):
            out = model(input_ids=ids, pixel_values=pixels, return_loss=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return out.loss.item()  # the logged scalar (a host round trip, as ours)

    warmup, timed = (1, 2) if dry_run else (2, 5)
    for _ in range(warmup):
        one()
    sync(device)
    t0 = time.time()
    for _ in range(timed):
        loss = one()
    sync(device)
    secs = time.time() - t0
    res = {"device": "dry-run" if dry_run else str(device), "batch": batch, "precision": prec,
           "timed_steps": timed, "seconds_per_step": secs / timed,
           "images_per_s": batch * timed / secs, "last_loss": loss,
           "step": "HF CLIPModel forward with the CLIP loss, backward, grad clipping, AdamW "
                   "(no pseudo-labels / triplet loss)"}
    if dev_type == "cuda":
        res["peak_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    del model, opt
    if dev_type == "cuda":
        torch.cuda.empty_cache()
    return res


def torch_embed(device, dry_run):
    import torch

    model, size = clip_model(dry_run, device)
    model.eval()
    batch, reps = (16, 2) if dry_run else (256, 5)
    pixels, _ = inputs(batch, size, device)

    def embed():
        with torch.inference_mode():
            e = model.get_image_features(pixel_values=pixels)
            if not isinstance(e, torch.Tensor):  # transformers 5 may return an output object
                e = e.pooler_output if hasattr(e, "pooler_output") else e[0]
            return torch.nn.functional.normalize(e, dim=-1).float().cpu()

    embed()
    sync(device)
    t0 = time.time()
    for _ in range(reps):
        embed()
    secs = time.time() - t0
    return {"device": "dry-run" if dry_run else str(device), "batch": batch, "batches": reps,
            "images_per_s": batch * reps / secs}


def sklearn_gmm(cov, dry_run):
    import numpy as np
    from sklearn.mixture import GaussianMixture

    n, k, d = (2000, 4, 16) if dry_run else (50_000, 40, 512)
    max_iter = 3 if cov == "full" else 10
    rng = np.random.default_rng(0)
    centres = 4.0 * rng.standard_normal((k, d))
    x = centres[np.arange(n) % k] + rng.standard_normal((n, d))
    t0 = time.time()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol = 0 never "converges"
        gm = GaussianMixture(n_components=k, covariance_type=cov, max_iter=max_iter, tol=0.0,
                             reg_covar=1e-6, init_params="kmeans", random_state=0).fit(x)
    secs = time.time() - t0
    return {"n": n, "k": k, "d": d, "covariance": cov, "iterations": int(gm.n_iter_),
            "seconds": secs, "seconds_per_iteration": secs / max(int(gm.n_iter_), 1),
            "threads": os.cpu_count(),
            "note": "seconds include the k-means initialisation, as ours"}


if __name__ == "__main__":
    main()
