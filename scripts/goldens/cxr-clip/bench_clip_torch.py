#!/usr/bin/env python3
"""PyTorch side of `cargo xtask bench clip`: forward + backward of a CLIP contrastive step with
transformers' CLIPModel (random weights, f32, CPU), the same loss, batch and token lengths as
crates/cxr-clip/examples/bench_clip.rs. Prints one JSON line with median seconds and the
process's peak resident memory (`peak_rss_bytes`: VmHWM of /proc/self/status, else ru_maxrss, of
the whole Python process: interpreter, libraries, model, activations and gradients).

Reference versions: torch 2.15.0, transformers 5.24.0 (printed in the output).
"""

import argparse
import json
import resource
import sys
import time

import torch
import torch.nn.functional as F
import transformers
from transformers import CLIPConfig, CLIPModel


def config(preset: str, image_size: int = 224) -> CLIPConfig:
    if preset == "vit-b-32":
        return CLIPConfig()  # transformers' defaults are ViT-B/32
    if preset == "vit-b-16":
        return CLIPConfig(vision_config=dict(patch_size=16))
    if preset == "tiny":  # ClipConfig::tiny(image_size)
        return CLIPConfig(
            text_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                             num_attention_heads=2),
            vision_config=dict(image_size=image_size, patch_size=8, hidden_size=64,
                               intermediate_size=256, num_hidden_layers=2, num_attention_heads=2),
            projection_dim=64,
        )
    raise SystemExit(f"unknown preset {preset}")


def token_ids(batch: int, context: int) -> torch.Tensor:
    ids = torch.zeros(batch, context, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    for row in range(batch):
        n = 8 + (row * 37) % (context - 7)
        ids[row, 0] = 49406
        ids[row, 1 : n - 1] = torch.randint(1, 49405, (n - 2,), generator=g)
        ids[row, n - 1] = 49407
    return ids


def peak_rss_bytes() -> int:
    """This process's peak resident set size: VmHWM of /proc/self/status where there is one.
    Not ru_maxrss on Linux: the kernel carries the parent's peak across exec into it, so a child
    of the candle benchmark (spawned with vfork) would report the candle process's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="vit-b-32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=224, help="image side of the tiny preset")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = CLIPModel(config(args.preset, args.image_size)).train()
    cfg = model.config
    px = torch.randn(args.batch, 3, cfg.vision_config.image_size, cfg.vision_config.image_size)
    ids = token_ids(args.batch, cfg.text_config.max_position_embeddings)
    labels = torch.arange(args.batch)
    fwd, bwd = [], []
    for it in range(args.iters + 1):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        img = F.normalize(model.visual_projection(model.vision_model(pixel_values=px).pooler_output), dim=-1)
        txt = F.normalize(model.text_projection(model.text_model(input_ids=ids).pooler_output), dim=-1)
        logits = model.logit_scale.exp() * img @ txt.t()
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
        loss.item()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if it > 0:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
    fwd.sort()
    bwd.sort()
    print(json.dumps({
        "forward_s": fwd[len(fwd) // 2],
        "backward_s": bwd[len(bwd) // 2],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "attn": getattr(cfg, "_attn_implementation", None) or "default",
        "threads": torch.get_num_threads(),
        "peak_rss_bytes": peak_rss_bytes(),
    }))


if __name__ == "__main__":
    main()
