"""Golden outputs of the CheXzero and CLIP image preprocessing.

References (versions written into preprocess_goldens.json): Pillow (decode, LANCZOS / BICUBIC
resize) and torchvision (tensor Resize(224, BICUBIC) with its default antialias, Normalize,
ToTensor, CenterCrop), following
- CheXzero `data_process.preprocess` (longest side to 320 with Image.LANCZOS via int(x * ratio),
  centre paste on a black 320x320 'L' canvas) and its eval transforms (repeat to 3 channels,
  Normalize(101.48761, 83.43944) on 0-255, Resize(224, BICUBIC));
- OpenAI CLIP / open_clip `image_transform`: Resize(224, BICUBIC) (shortest side), CenterCrop(224),
  convert('RGB'), ToTensor, Normalize(CLIP mean, std).
16-bit PNGs are brought to 8 bits as round(v / 257) (our documented convention).

Writes into crates/cxr-data/tests/fixtures/preprocess/: the input images, channel 0 of each
normalised 3x224x224 output as float16 .npy, the exact 320x320 padded uint8 image of the PNG
input, and preprocess_goldens.json (per-channel means of every output).
Usage: python preprocess_goldens.py
"""
import json, os

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "..", "crates", "cxr-data", "tests", "fixtures", "preprocess")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def scene(w, h, seed, maxval):
    """A deterministic chest-like test pattern: gradients, discs, lines, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 0.3 + 0.4 * (x / w) * (1 - y / h)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, min(w, h) / 4)
        img += rng.uniform(-0.25, 0.25) * (((x - cx) ** 2 + (y - cy) ** 2) < r * r)
    img[:, w // 3 : w // 3 + 3] += 0.3
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * maxval).round()


def chexzero_pad(img, desired=320):
    old = img.size
    ratio = float(desired) / max(old)
    new = tuple([int(x * ratio) for x in old])
    img = img.resize(new, Image.LANCZOS)
    canvas = Image.new("L", (desired, desired))
    canvas.paste(img, ((desired - new[0]) // 2, (desired - new[1]) // 2))
    return canvas


def chexzero(img):
    padded = chexzero_pad(img)
    t = torch.from_numpy(np.array(padded)).float().unsqueeze(0).repeat(3, 1, 1)
    t = T.Normalize((101.48761,) * 3, (83.43944,) * 3)(t)
    t = T.Resize(224, interpolation=InterpolationMode.BICUBIC)(t)
    return padded, t.numpy()


def clip(img):
    tf = T.Compose([
        T.Resize(224, interpolation=InterpolationMode.BICUBIC),
        T.CenterCrop(224),
        lambda im: im.convert("RGB"),
        T.ToTensor(),
        T.Normalize(CLIP_MEAN, CLIP_STD),
    ])
    return tf(img).numpy()


def main():
    os.makedirs(OUT, exist_ok=True)
    # A portrait 8-bit grayscale JPEG (like a CXR) and a landscape 16-bit PNG.
    Image.fromarray(scene(341, 412, 1, 255).astype(np.uint8), "L").save(os.path.join(OUT, "portrait.jpg"), quality=90)
    Image.fromarray(scene(260, 181, 2, 65535).astype(np.uint16)).save(os.path.join(OUT, "landscape16.png"))

    meta = {"pillow": PIL.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__, "cases": {}}
    for name in ["portrait.jpg", "landscape16.png"]:
        im = Image.open(os.path.join(OUT, name))
        if name.endswith(".png"):
            im = Image.fromarray(np.round(np.array(im).astype(np.float64) / 257.0).astype(np.uint8), "L")
        else:
            im = im.convert("L")
        stem = name.split(".")[0]
        padded, cz = chexzero(im)
        cl = clip(im)
        if name.endswith(".png"):
            np.save(os.path.join(OUT, f"{stem}_pad320_u8.npy"), np.array(padded, dtype=np.uint8))
        for mode, arr in [("chexzero", cz), ("clip", cl)]:
            assert arr.shape == (3, 224, 224)
            np.save(os.path.join(OUT, f"{stem}_{mode}_c0_f16.npy"), arr[0].astype(np.float16))
            meta["cases"][f"{stem}_{mode}"] = {"channel_means": [float(arr[c].mean()) for c in range(3)]}
    with open(os.path.join(OUT, "preprocess_goldens.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
