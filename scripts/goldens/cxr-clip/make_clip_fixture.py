#!/usr/bin/env python3
"""Golden fixture for cxr-clip's parity tests.

Reference: Hugging Face transformers `CLIPModel` (version printed into `tiny_io.json`; made with
transformers 5.24.0, torch 2.15.0, safetensors 0.8.0). Builds a tiny random CLIP, perturbs
every parameter away from its (nearly symmetric) init so that mistakes show, and writes to
crates/cxr-clip/tests/fixtures/:

  tiny_hf/config.json, tiny_hf/model.safetensors   the model as `save_pretrained` writes it
  tiny_openai.pt                                   the same weights as an OpenAI-CLIP state dict
                                                   (the layout CheXzero releases), torch.save zip
  tiny_io.safetensors                              inputs and expected outputs, float64 reference:
      pixel_values [3,3,32,32] f32, input_ids [3,16] i64,
      image_embeds [3,32], text_embeds [3,32] (projected, unnormalised),
      logits_per_image [3,3], logits_per_text [3,3]  (all f64)

The vision tower is 128 wide with 2 heads and the text tower 64 wide with 1 head, because the
OpenAI layout carries no head count: loaders infer heads = width / 64, as OpenAI's build_model
does. Vocabulary 256 with start 254 and end 255 (CLIP's convention: end is the largest id).

Run: python3 scripts/goldens/cxr-clip/make_clip_fixture.py
"""

import json
import pathlib

import torch
import transformers
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel

ROOT = pathlib.Path(__file__).resolve().parents[3]
OUT = ROOT / "crates" / "cxr-clip" / "tests" / "fixtures"

VOCAB, CONTEXT, SOT, EOT = 256, 16, 254, 255


def make_model() -> CLIPModel:
    cfg = CLIPConfig(
        text_config=dict(
            vocab_size=VOCAB,
            max_position_embeddings=CONTEXT,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=1,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
            bos_token_id=SOT,
            eos_token_id=EOT,
            pad_token_id=0,
        ),
        vision_config=dict(
            image_size=32,
            patch_size=8,
            num_channels=3,
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=1,
            num_attention_heads=2,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
        ),
        projection_dim=32,
        logit_scale_init_value=2.0,
    )
    model = CLIPModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "logit_scale":
                p.fill_(2.3)
            else:
                p.add_(0.1 * torch.randn_like(p))
    return model


def hf_to_openai(sd: dict) -> dict:
    """Inverse of the remapping cxr-clip does when it reads an OpenAI-layout checkpoint."""
    out = {}

    def blocks(hf_prefix: str, oa_prefix: str, layers: int):
        for i in range(layers):
            h = f"{hf_prefix}.encoder.layers.{i}"
            o = f"{oa_prefix}transformer.resblocks.{i}"
            a = f"{h}.self_attn"
            out[f"{o}.attn.in_proj_weight"] = torch.cat(
                [sd[f"{a}.q_proj.weight"], sd[f"{a}.k_proj.weight"], sd[f"{a}.v_proj.weight"]]
            )
            out[f"{o}.attn.in_proj_bias"] = torch.cat(
                [sd[f"{a}.q_proj.bias"], sd[f"{a}.k_proj.bias"], sd[f"{a}.v_proj.bias"]]
            )
            out[f"{o}.attn.out_proj.weight"] = sd[f"{a}.out_proj.weight"]
            out[f"{o}.attn.out_proj.bias"] = sd[f"{a}.out_proj.bias"]
            for hn, on in [("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"),
                           ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")]:
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
    blocks(v, "visual.", 1)

    t = "text_model"
    out["token_embedding.weight"] = sd[f"{t}.embeddings.token_embedding.weight"]
    out["positional_embedding"] = sd[f"{t}.embeddings.position_embedding.weight"]
    out["ln_final.weight"] = sd[f"{t}.final_layer_norm.weight"]
    out["ln_final.bias"] = sd[f"{t}.final_layer_norm.bias"]
    out["text_projection"] = sd["text_projection.weight"].t()
    out["logit_scale"] = sd["logit_scale"]
    blocks(t, "", 2)
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def main() -> None:
    torch.manual_seed(0)
    model = make_model()
    (OUT / "tiny_hf").mkdir(parents=True, exist_ok=True)
    model.save_pretrained(OUT / "tiny_hf", safe_serialization=True)

    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    torch.save(hf_to_openai(sd), OUT / "tiny_openai.pt")

    pixel_values = torch.randn(3, 3, 32, 32)
    ids = torch.zeros(3, CONTEXT, dtype=torch.int64)
    ids[0, :6] = torch.tensor([SOT, 17, 40, 99, 3, EOT])          # OpenAI padding (0)
    ids[1, :] = torch.randint(1, SOT, (CONTEXT,))                  # full length
    ids[1, 0], ids[1, -1] = SOT, EOT
    ids[2, :3] = torch.tensor([SOT, 250, EOT])                      # HF padding (EOT)
    ids[2, 3:] = EOT

    m64 = model.double()
    with torch.no_grad():
        px = pixel_values.double()
        img = m64.visual_projection(m64.vision_model(pixel_values=px).pooler_output)
        txt = m64.text_projection(m64.text_model(input_ids=ids).pooler_output)
        out = m64(input_ids=ids, pixel_values=px)
    save_file(
        {
            "pixel_values": pixel_values.contiguous(),
            "input_ids": ids.contiguous(),
            "image_embeds": img.contiguous(),
            "text_embeds": txt.contiguous(),
            "logits_per_image": out.logits_per_image.contiguous(),
            "logits_per_text": out.logits_per_text.contiguous(),
        },
        OUT / "tiny_io.safetensors",
    )
    (OUT / "tiny_io.json").write_text(
        json.dumps(
            {
                "reference": "transformers.CLIPModel, float64",
                "transformers": transformers.__version__,
                "torch": torch.__version__,
                "seed": 0,
                "script": "scripts/goldens/cxr-clip/make_clip_fixture.py",
            },
            indent=2,
        )
        + "\n"
    )
    print("wrote", sorted(p.name for p in OUT.rglob("*") if p.is_file()))


if __name__ == "__main__":
    main()
