#!/usr/bin/env python3
"""A tiny OpenAI-format CLIP checkpoint with CLIP's full vocabulary, for end-to-end tests.

CheXzero releases its weights as OpenAI-CLIP state dicts saved with `torch.save` (`.pt`, zip
format). Real prompts ("pleural effusion", "no pleural effusion") only tokenize into a model
whose token embedding has CLIP's full 49,408-token vocabulary and 77 positions, which the other
CLIP fixture (vocabulary 256) lacks. This one has them, with tiny towers otherwise:

  text:   49,408 tokens x width 32, 77 positions, 1 layer (MLP 64), 1 head
  vision: 64 px, patch 16, width 64, 1 layer (MLP 128), 1 head
  projection 32

Heads: the OpenAI layout carries no head count; loaders infer width / 64 (at least 1), as
OpenAI's build_model does, so both towers have one head.

The model is Hugging Face transformers' `CLIPModel` with a random init that every parameter is
then perturbed away from (seeded, so that mistakes show), converted to OpenAI names (the
remapping `make_clip_fixture.py` tests). The token embedding is stored in float16 (3.2 MB;
OpenAI's own checkpoints are float16) and the rest in float32, so a loader must read both.

Writes crates/cxr-clip/tests/fixtures/full_vocab_openai.pt and full_vocab_openai.json
(versions, seed, shapes). Deterministic in its tensors for a given torch version.
Run from anywhere: python3 scripts/goldens/cxr-clip/make_full_vocab_fixture.py
"""

import json
import pathlib

import torch
import transformers
from transformers import CLIPConfig, CLIPModel

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
OUT = ROOT / "crates" / "cxr-clip" / "tests" / "fixtures"
NAME = "full_vocab_openai"

SEED = 20261201
VOCAB, CONTEXT, SOT, EOT = 49408, 77, 49406, 49407
TEXT = dict(width=32, layers=1, mlp=64)
VISION = dict(image_size=64, patch=16, width=64, layers=1, mlp=128)
PROJ = 32


def config() -> CLIPConfig:
    return CLIPConfig(
        text_config=dict(
            vocab_size=VOCAB,
            max_position_embeddings=CONTEXT,
            hidden_size=TEXT["width"],
            intermediate_size=TEXT["mlp"],
            num_hidden_layers=TEXT["layers"],
            num_attention_heads=1,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
            bos_token_id=SOT,
            eos_token_id=EOT,
            pad_token_id=EOT,
        ),
        vision_config=dict(
            image_size=VISION["image_size"],
            patch_size=VISION["patch"],
            num_channels=3,
            hidden_size=VISION["width"],
            intermediate_size=VISION["mlp"],
            num_hidden_layers=VISION["layers"],
            num_attention_heads=1,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
        ),
        projection_dim=PROJ,
        logit_scale_init_value=2.6592,
    )


def hf_to_openai(sd: dict) -> dict:
    """HF `CLIPModel` names -> OpenAI names, for these layer counts."""
    out = {}

    def blocks(hf_prefix, oa_prefix, layers):
        for i in range(layers):
            h = f"{hf_prefix}.encoder.layers.{i}"
            o = f"{oa_prefix}transformer.resblocks.{i}"
            a = f"{h}.self_attn"
            for p in ["weight", "bias"]:
                out[f"{o}.attn.in_proj_{p}"] = torch.cat(
                    [sd[f"{a}.q_proj.{p}"], sd[f"{a}.k_proj.{p}"], sd[f"{a}.v_proj.{p}"]]
                )
            for hn, on in [("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"),
                           ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"),
                           ("mlp.fc2", "mlp.c_proj")]:
                out[f"{o}.{on}.weight"] = sd[f"{h}.{hn}.weight"]
                out[f"{o}.{on}.bias"] = sd[f"{h}.{hn}.bias"]

    v = "vision_model"
    out["visual.class_embedding"] = sd[f"{v}.embeddings.class_embedding"]
    out["visual.positional_embedding"] = sd[f"{v}.embeddings.position_embedding.weight"]
    out["visual.conv1.weight"] = sd[f"{v}.embeddings.patch_embedding.weight"]
    for hn, on in [("pre_layrnorm", "ln_pre"), ("post_layernorm", "ln_post")]:
        out[f"visual.{on}.weight"] = sd[f"{v}.{hn}.weight"]
        out[f"visual.{on}.bias"] = sd[f"{v}.{hn}.bias"]
    out["visual.proj"] = sd["visual_projection.weight"].t()
    blocks(v, "visual.", VISION["layers"])
    t = "text_model"
    out["token_embedding.weight"] = sd[f"{t}.embeddings.token_embedding.weight"]
    out["positional_embedding"] = sd[f"{t}.embeddings.position_embedding.weight"]
    out["ln_final.weight"] = sd[f"{t}.final_layer_norm.weight"]
    out["ln_final.bias"] = sd[f"{t}.final_layer_norm.bias"]
    out["text_projection"] = sd["text_projection.weight"].t()
    out["logit_scale"] = sd["logit_scale"]
    blocks(t, "", TEXT["layers"])
    return out


def main() -> None:
    torch.manual_seed(SEED)
    model = CLIPModel(config()).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "logit_scale":
                p.fill_(2.6592)
            else:
                p.add_(0.1 * torch.randn_like(p))
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    oa = {k: v.detach().clone().contiguous().float() for k, v in hf_to_openai(sd).items()}
    oa["token_embedding.weight"] = oa["token_embedding.weight"].half()
    OUT.mkdir(parents=True, exist_ok=True)
    torch.save(oa, OUT / f"{NAME}.pt")
    meta = {
        "script": "scripts/goldens/cxr-clip/make_full_vocab_fixture.py",
        "seed": SEED,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "format": "OpenAI CLIP state dict (torch.save zip), token embedding float16, rest float32",
        "vocab_size": VOCAB,
        "context_length": CONTEXT,
        "text": TEXT,
        "vision": VISION,
        "projection_dim": PROJ,
        "tensors": {k: list(v.shape) for k, v in sorted(oa.items())},
    }
    (OUT / f"{NAME}.json").write_text(json.dumps(meta, indent=1) + "\n")
    size = (OUT / f"{NAME}.pt").stat().st_size
    print(f"wrote {OUT / NAME}.pt ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
