#!/usr/bin/env python3
"""Golden trajectories for crates/cxr-optim, from torch 2.15.0.

    python3 scripts/goldens/cxr-optim/make_optim_goldens.py

Writes crates/cxr-optim/tests/fixtures/optim_goldens.json:
- adamw: torch.optim.AdamW with two parameter groups (decayed / not decayed, as
  cxr_optim::default_decay_filter splits them), explicit per-step gradients, a learning-rate
  change half way; parameters after every step and the final exp_avg / exp_avg_sq.
- sgd: torch.optim.SGD with momentum (plain and Nesterov), weight decay on one group.
- plateau: torch.optim.lr_scheduler.ReduceLROnPlateau on fixed metric sequences, the lr after
  every step, for several configurations.
- clip_grad_norm: torch.nn.utils.clip_grad_norm_ (norm before clipping, clipped gradients).
- cosine: torch.optim.lr_scheduler.CosineAnnealingLR (T_max = total steps, eta_min) closed form,
  the post-warmup half of cxr_optim::LrSchedule::CosineWithWarmup with warmup 0.
Everything runs in float32 like the Rust side, except the schedules (python floats).
"""
import json
import math
import os

import torch

torch.manual_seed(7)
OUT = os.path.join("crates", "cxr-optim", "tests", "fixtures", "optim_goldens.json")
SHAPES = {"w": [3, 4], "ln.bias": [5]}


def tolist(t):
    return t.detach().cpu().tolist()


def trajectory(make_opt, steps=6, lr_change=None):
    init = {k: torch.randn(*s) for k, s in SHAPES.items()}
    grads = [{k: torch.randn(*s) for k, s in SHAPES.items()} for _ in range(steps)]
    params = {k: torch.nn.Parameter(v.clone()) for k, v in init.items()}
    opt = make_opt(params)
    after = []
    for i, g in enumerate(grads):
        if lr_change is not None and i == lr_change[0]:
            for group in opt.param_groups:
                group["lr"] = lr_change[1]
        for k, p in params.items():
            p.grad = g[k].clone()
        opt.step()
        after.append({k: tolist(p.view(-1)) for k, p in params.items()})
    state = {k: {sk: tolist(sv.reshape(-1)) for sk, sv in opt.state[p].items() if sk != "step"}
             for k, p in params.items()}
    return {
        "init": {k: tolist(v.view(-1)) for k, v in init.items()},
        "grads": [{k: tolist(v.view(-1)) for k, v in g.items()} for g in grads],
        "after": after, "state": state, "lr_change": lr_change,
    }


def groups(params, wd):
    return [{"params": [params["w"]], "weight_decay": wd},
            {"params": [params["ln.bias"]], "weight_decay": 0.0}]


def adamw_case(lr, betas, eps, wd):
    t = trajectory(lambda p: torch.optim.AdamW(groups(p, wd), lr=lr, betas=betas, eps=eps,
                                               foreach=False), lr_change=(3, lr / 2))
    t.update({"lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps, "weight_decay": wd})
    return t


def sgd_case(lr, momentum, nesterov, wd):
    t = trajectory(lambda p: torch.optim.SGD(groups(p, wd), lr=lr, momentum=momentum,
                                             nesterov=nesterov, foreach=False), lr_change=(4, lr * 3))
    t.update({"lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": wd})
    return t


def plateau_case(metrics, lr, **kw):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    lrs = []
    for m in metrics:
        sched.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    cfg = {"mode": "min", "factor": 0.1, "patience": 10, "threshold": 1e-4,
           "threshold_mode": "rel", "cooldown": 0, "min_lr": 0.0, "eps": 1e-8}
    cfg.update(kw)
    return {"config": cfg, "lr": lr, "metrics": [None if math.isnan(m) else m for m in metrics],
            "lrs": lrs}


def cosine_case(base, total, eta_min):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=eta_min)
    lrs = []
    for step in range(total + 1):
        sched.last_epoch = step
        lrs.append(sched._get_closed_form_lr()[0])
    return {"base_lr": base, "total_steps": total, "min_lr": eta_min, "lrs": lrs}


def clip_case(max_norm, scale):
    params = {k: torch.nn.Parameter(torch.zeros(*s)) for k, s in SHAPES.items()}
    grads = {k: torch.randn(*s) * scale for k, s in SHAPES.items()}
    for k, p in params.items():
        p.grad = grads[k].clone()
    norm = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm)
    return {"max_norm": max_norm, "grads": {k: tolist(v.view(-1)) for k, v in grads.items()},
            "norm": norm.item(), "clipped": {k: tolist(p.grad.view(-1)) for k, p in params.items()}}


def main():
    losses = [1.0, 0.9, 0.95, 0.93, 0.92, 0.8999, 0.5, 0.6, 0.55, 0.5, 0.49996, 0.7, 0.4, 0.4, 0.4,
              0.4, 0.4, 0.4, 0.4, 0.4, 0.4]
    aucs = [0.6, 0.62, 0.625, 0.628, 0.70, 0.69, 0.705, 0.70, 0.71, 0.709, 0.708, 0.7, 0.72]
    out = {
        "generator": "scripts/goldens/cxr-optim/make_optim_goldens.py",
        "torch": torch.__version__,
        "adamw": [adamw_case(1e-2, (0.9, 0.999), 1e-8, 0.1), adamw_case(3e-3, (0.8, 0.95), 1e-6, 1e-2)],
        "sgd": [sgd_case(0.05, 0.9, False, 1e-2), sgd_case(0.02, 0.8, True, 0.0),
                sgd_case(0.1, 0.0, False, 1e-3)],
        "plateau": [
            plateau_case(losses, 1e-3, factor=0.1, patience=2),
            plateau_case(losses, 1e-4, factor=0.1, patience=3),
            plateau_case(losses, 1e-3, factor=0.5, patience=1, cooldown=2, min_lr=2e-4),
            plateau_case(losses[:6] + [float("nan")] * 4 + losses[6:], 1e-3, patience=2),
            plateau_case(aucs, 1e-3, mode="max", patience=1, threshold=0.01, threshold_mode="abs"),
            plateau_case(aucs, 1e-3, mode="max", patience=0, threshold=0.005),
        ],
        "clip_grad_norm": [clip_case(1.0, 1.0), clip_case(100.0, 1.0), clip_case(0.5, 3.0)],
        "cosine": [cosine_case(1e-3, 20, 0.0), cosine_case(5e-4, 13, 1e-5)],
    }
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
