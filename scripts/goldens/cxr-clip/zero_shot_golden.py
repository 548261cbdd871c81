#!/usr/bin/env python3
"""Golden zero-shot scores of the full-vocabulary `.pt` fixture by an independent pipeline.

Reference pipeline (versions recorded in the output):
  - weights: `full_vocab_openai.pt` read with `torch.load`, its OpenAI names mapped to Hugging
    Face names here (OpenAI -> HF, written independently of cxr-clip's Rust remapping) and
    loaded strictly into transformers' `CLIPModel`, in float64;
  - text: transformers' `CLIPTokenizer`, built offline from OpenAI's BPE file
    (`data/bpe_simple_vocab_16e6.txt.gz`, as scripts/goldens/cxr-text does);
  - images: CheXzero's preprocessing with Pillow and torchvision (longest side to 320 with
    Image.LANCZOS, centre zero-pad to 320x320 'L', repeat to 3 channels, Normalize(101.48761,
    83.43944) on 0-255, Resize(<the weights' input size>, BICUBIC));
  - zero-shot: CheXzero's prompts "{}" / "no {}" per class, L2-normalised embeddings, raw
    cosine logits, p = exp(pos) / (exp(pos) + exp(neg));
  - metric: scikit-learn's roc_auc_score per class.

It also writes the images it scores (never seen by any model, written once from a seed):
a tiny CXR-LT-layout dataset under tests/fixtures/zero_shot_golden/ -- `labels.csv`
(dicom_id, subject_id, study_id, ViewPosition, fpath, then 6 class columns) and 8-bit grayscale
JPEGs of several sizes and aspect ratios at files/pXX/pSUBJECT/sSTUDY/DICOM.jpg -- and
`goldens.json` (per image and class the reference probability, per class the AUC).
The Rust test tests/zero_shot_golden.rs scores the same files with `evaluate_weights`.

Run from anywhere: python3 scripts/goldens/cxr-clip/zero_shot_golden.py
"""

import gzip
import json
import pathlib
import tempfile

import numpy as np
import PIL
import sklearn
import torch
import torchvision
import transformers
from PIL import Image
from sklearn.metrics import roc_auc_score
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
WEIGHTS = ROOT / "crates" / "cxr-clip" / "tests" / "fixtures" / "full_vocab_openai.pt"
OUT = ROOT / "tests" / "fixtures" / "zero_shot_golden"
SEED = 20261201
N_IMAGES = 24
CLASSES = ["Atelectasis", "Cardiomegaly", "Edema", "Pleural Effusion", "Pneumothorax", "Fracture"]


def bytes_to_unicode():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_hf_tokenizer_files(folder: pathlib.Path):
    """vocab.json / merges.txt from OpenAI's BPE file by OpenAI's procedure (as
    scripts/goldens/cxr-text/make_tokenizer_goldens.py does)."""
    lines = gzip.open(ROOT / "data" / "bpe_simple_vocab_16e6.txt.gz").read().decode("utf-8")
    merges = lines.split("\n")[1:49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


# ---------------------------------------------------------------------------------------------
# Weights: OpenAI state dict -> HF CLIPModel.


def openai_to_hf(sd: dict):
    """Infers the architecture from shapes (heads = width // 64, at least 1, as OpenAI's
    build_model) and renames every tensor; returns (CLIPConfig, HF state dict)."""
    sd = {k: v.double() for k, v in sd.items()}
    conv = sd["visual.conv1.weight"]
    vw, patch = conv.shape[0], conv.shape[-1]
    grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    vocab, tw = sd["token_embedding.weight"].shape
    ctx = sd["positional_embedding"].shape[0]

    def layers(prefix):
        return len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})

    vl, tl = layers("visual.transformer.resblocks."), layers("transformer.resblocks.")
    cfg = CLIPConfig(
        text_config=dict(vocab_size=vocab, max_position_embeddings=ctx, hidden_size=tw,
                         intermediate_size=sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
                         num_hidden_layers=tl, num_attention_heads=max(tw // 64, 1),
                         hidden_act="quick_gelu", layer_norm_eps=1e-5,
                         bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1),
        vision_config=dict(image_size=grid * patch, patch_size=patch, num_channels=3,
                           hidden_size=vw,
                           intermediate_size=sd["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
                           num_hidden_layers=vl, num_attention_heads=max(vw // 64, 1),
                           hidden_act="quick_gelu", layer_norm_eps=1e-5),
        projection_dim=sd["text_projection"].shape[1],
    )
    hf = {}
    v, t = "vision_model", "text_model"
    hf[f"{v}.embeddings.class_embedding"] = sd["visual.class_embedding"]
    hf[f"{v}.embeddings.position_embedding.weight"] = sd["visual.positional_embedding"]
    hf[f"{v}.embeddings.patch_embedding.weight"] = sd["visual.conv1.weight"]
    for oa, name in [("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")]:
        for p in ["weight", "bias"]:
            hf[f"{v}.{name}.{p}"] = sd[f"visual.{oa}.{p}"]
    hf["visual_projection.weight"] = sd["visual.proj"].t().contiguous()
    hf[f"{t}.embeddings.token_embedding.weight"] = sd["token_embedding.weight"]
    hf[f"{t}.embeddings.position_embedding.weight"] = sd["positional_embedding"]
    for p in ["weight", "bias"]:
        hf[f"{t}.final_layer_norm.{p}"] = sd[f"ln_final.{p}"]
    hf["text_projection.weight"] = sd["text_projection"].t().contiguous()
    hf["logit_scale"] = sd["logit_scale"]
    for oa_prefix, hf_prefix, n in [("visual.transformer.resblocks", v, vl),
                                    ("transformer.resblocks", t, tl)]:
        for i in range(n):
            o, h = f"{oa_prefix}.{i}", f"{hf_prefix}.encoder.layers.{i}"
            for p in ["weight", "bias"]:
                q, k, val = sd[f"{o}.attn.in_proj_{p}"].chunk(3, dim=0)
                hf[f"{h}.self_attn.q_proj.{p}"] = q
                hf[f"{h}.self_attn.k_proj.{p}"] = k
                hf[f"{h}.self_attn.v_proj.{p}"] = val
                for oa, name in [("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"),
                                 ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"),
                                 ("mlp.c_proj", "mlp.fc2")]:
                    hf[f"{h}.{name}.{p}"] = sd[f"{o}.{oa}.{p}"]
    return cfg, hf


def load_reference_model():
    sd = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    cfg, hf = openai_to_hf(sd)
    model = CLIPModel(cfg).double().eval()
    missing, unexpected = model.load_state_dict(hf, strict=False)
    # position_ids are buffers transformers creates itself.
    assert all(k.endswith("position_ids") for k in missing), missing
    assert not unexpected, unexpected
    return model, cfg


# ---------------------------------------------------------------------------------------------
# Images.


def scene(w, h, seed, labels):
    """A chest-like test pattern (gradients, discs, a line, noise), brighter where labelled."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 0.3 + 0.4 * (x / w) * (1 - y / h)
    for _ in range(10):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(4, min(w, h) / 4)
        img += rng.uniform(-0.25, 0.25) * (((x - cx) ** 2 + (y - cy) ** 2) < r * r)
    for j, positive in enumerate(labels):
        if positive:  # one class-specific disc, so that classes differ between images
            cx, cy = w * (0.2 + 0.12 * j), h * (0.3 + 0.08 * j)
            img += 0.3 * (((x - cx) ** 2 + (y - cy) ** 2) < (min(w, h) / 7) ** 2)
    img[:, w // 3: w // 3 + 2] += 0.3
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def write_dataset(rng):
    labels = np.zeros((N_IMAGES, len(CLASSES)), dtype=int)
    for j in range(len(CLASSES)):
        pos = rng.choice(N_IMAGES, size=int(rng.integers(4, N_IMAGES - 4)), replace=False)
        labels[pos, j] = 1
    rows = []
    for i in range(N_IMAGES):
        subject, study = 10000000 + i // 2, 50000000 + i
        dicom = f"golden-{i:02d}"
        w, h = [(96, 112), (112, 96), (80, 80), (72, 120)][i % 4]
        rel = f"files/p{str(subject)[:2]}/p{subject}/s{study}/{dicom}.jpg"
        path = OUT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene(w, h, SEED + i, labels[i]), "L").save(path, quality=92)
        rows.append([dicom, str(subject), f"s{study}", "PA", rel] + [str(v) for v in labels[i]])
    header = ["dicom_id", "subject_id", "study_id", "ViewPosition", "fpath"] + CLASSES
    (OUT / "labels.csv").write_text("\n".join(",".join(r) for r in [header] + rows) + "\n")
    return rows, labels


def chexzero_pixels(path, size):
    img = Image.open(path).convert("L")
    ratio = 320.0 / max(img.size)
    new = tuple(int(x * ratio) for x in img.size)
    img = img.resize(new, Image.LANCZOS)
    canvas = Image.new("L", (320, 320))
    canvas.paste(img, ((320 - new[0]) // 2, (320 - new[1]) // 2))
    t = torch.from_numpy(np.array(canvas)).double().unsqueeze(0).repeat(3, 1, 1)
    t = T.Normalize((101.48761,) * 3, (83.43944,) * 3)(t)
    return T.Resize(size, interpolation=InterpolationMode.BICUBIC)(t)


# ---------------------------------------------------------------------------------------------


def main():
    rng = np.random.default_rng(SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    rows, labels = write_dataset(rng)
    model, cfg = load_reference_model()

    with tempfile.TemporaryDirectory() as tmp:
        write_hf_tokenizer_files(pathlib.Path(tmp))
        tokenizer = CLIPTokenizer.from_pretrained(tmp, local_files_only=True)
    ctx = cfg.text_config.max_position_embeddings

    def text_embeddings(texts):
        enc = tokenizer(texts, padding="max_length", truncation=True, max_length=ctx,
                        return_tensors="pt")
        with torch.no_grad():
            e = model.get_text_features(input_ids=enc["input_ids"])
            e = getattr(e, "pooler_output", e)
        return torch.nn.functional.normalize(e, dim=-1)

    names = [c.lower() for c in CLASSES]
    pos = text_embeddings(names)
    neg = text_embeddings([f"no {c}" for c in names])

    size = cfg.vision_config.image_size
    px = torch.stack([chexzero_pixels(OUT / r[4], size) for r in rows])
    with torch.no_grad():
        img = model.get_image_features(pixel_values=px)
        img = getattr(img, "pooler_output", img)
    img = torch.nn.functional.normalize(img, dim=-1)
    lp, ln = img @ pos.T, img @ neg.T
    probs = (torch.exp(lp) / (torch.exp(lp) + torch.exp(ln))).numpy()
    aucs = {c: float(roc_auc_score(labels[:, j], probs[:, j])) for j, c in enumerate(CLASSES)}

    out = {
        "script": "scripts/goldens/cxr-clip/zero_shot_golden.py",
        "weights": "crates/cxr-clip/tests/fixtures/full_vocab_openai.pt",
        "reference": "transformers CLIPModel (float64) + Pillow/torchvision CheXzero "
                     "preprocessing + CheXzero softmax + sklearn roc_auc_score",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "transformers": transformers.__version__, "pillow": PIL.__version__,
                     "scikit-learn": sklearn.__version__, "numpy": np.__version__},
        "seed": SEED,
        "image_size": size,
        "prompts": ["{}", "no {}"],
        "classes": CLASSES,
        "ids": [r[0] for r in rows],
        "scores": [[float(v) for v in row] for row in probs],
        "auc": aucs,
        "score_std_per_class": [float(s) for s in probs.std(axis=0)],
    }
    (OUT / "goldens.json").write_text(json.dumps(out, indent=1) + "\n")
    print("AUC", {k: round(v, 3) for k, v in aucs.items()})
    print("score std per class", np.round(probs.std(axis=0), 4))


if __name__ == "__main__":
    main()
