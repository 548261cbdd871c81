#!/usr/bin/env python3
"""Reference side of zero-shot image embedding in `cargo xtask bench all`: what
`xtask embed --weights DIR --images ... --out OUT` does, in transformers / PyTorch.

    python3 bench_embed_torch.py --weights DIR --out OUT --threads 2 [--batch-size 16] IMAGE...

The same Hugging Face folder (`config.json` + `model.safetensors`, written by cxr-clip's
`save_pretrained`; random weights are fine for speed) is loaded with
`CLIPModel.from_pretrained`; each image is decoded with Pillow and preprocessed as CheXzero does
(LANCZOS to fit 320, centred on a black 320 x 320 canvas, bicubic resize to the model's input
size, (x - 101.48761) / 83.43944, gray repeated to 3 channels: the pipeline of
zero_shot_golden.py, in float32); batches of --batch-size go through
`CLIPModel.get_image_features` under `torch.inference_mode()`, are L2-normalised and written to
OUT/image_embeds.npy (float32), as ours writes them. `bench all` times the whole process from
outside; this script prints one JSON line with its own phases (import, load, embed) and its
peak resident memory.

Reference versions: torch 2.15.0, transformers 5.24.0, torchvision 0.29.2, pillow 13.0.0
(scripts/goldens/requirements.txt).
"""

import argparse
import json
import os
import time

T_START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision.transforms as T  # noqa: E402
import transformers  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.transforms import InterpolationMode  # noqa: E402
from transformers import CLIPModel  # noqa: E402

# The script's folder is on sys.path when it runs as a script (as `bench all` runs it).
from bench_clip_torch import peak_rss_bytes  # noqa: E402

CHEXZERO_PAD = 320
CHEXZERO_MEAN, CHEXZERO_STD = 101.48761, 83.43944


def chexzero_pixels(path: str, size: int) -> torch.Tensor:
    img = Image.open(path).convert("L")
    ratio = CHEXZERO_PAD / max(img.size)
    new = tuple(int(x * ratio) for x in img.size)
    img = img.resize(new, Image.LANCZOS)
    canvas = Image.new("L", (CHEXZERO_PAD, CHEXZERO_PAD))
    canvas.paste(img, ((CHEXZERO_PAD - new[0]) // 2, (CHEXZERO_PAD - new[1]) // 2))
    t = torch.from_numpy(np.asarray(canvas, dtype=np.float32)).unsqueeze(0)
    if size != CHEXZERO_PAD:
        t = T.Resize(size, interpolation=InterpolationMode.BICUBIC)(t)
    t = (t - CHEXZERO_MEAN) / CHEXZERO_STD
    return t.expand(3, size, size)


def features(model: CLIPModel, px: torch.Tensor) -> torch.Tensor:
    e = model.get_image_features(pixel_values=px)
    if not isinstance(e, torch.Tensor):  # transformers 5 may return an output object
        e = e.pooler_output if hasattr(e, "pooler_output") else e[0]
    return e


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True, help="Hugging Face CLIP folder")
    ap.add_argument("--out", required=True, help="folder for image_embeds.npy")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t_import = time.perf_counter() - T_START

    t0 = time.perf_counter()
    model = CLIPModel.from_pretrained(a.weights).eval()
    size = model.config.vision_config.image_size
    t_load = time.perf_counter() - t0

    t0 = time.perf_counter()
    out = []
    with torch.inference_mode():
        for i in range(0, len(a.images), a.batch_size):
            chunk = a.images[i : i + a.batch_size]
            px = torch.stack([chexzero_pixels(p, size) for p in chunk])
            out.append(torch.nn.functional.normalize(features(model, px), dim=-1))
    emb = torch.cat(out).float().numpy()
    t_embed = time.perf_counter() - t0
    os.makedirs(a.out, exist_ok=True)
    np.save(os.path.join(a.out, "image_embeds.npy"), emb)
    print(json.dumps({
        "images": len(a.images), "dim": int(emb.shape[1]), "batch_size": a.batch_size,
        "import_s": t_import, "load_s": t_load, "embed_s": t_embed,
        "embed_images_per_s": len(a.images) / t_embed,
        "peak_rss_bytes": peak_rss_bytes(), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "transformers": transformers.__version__,
    }))


if __name__ == "__main__":
    main()
