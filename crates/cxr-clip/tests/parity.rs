//! Parity with Hugging Face transformers' `CLIPModel` on a tiny random model, and loading of
//! the same weights in OpenAI layout.
//!
//! Fixtures: `tests/fixtures/`, made by `scripts/goldens/cxr-clip/make_clip_fixture.py` with
//! transformers 5.24.0 / torch 2.15.0 (expected outputs computed in float64).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use cxr_clip::{save_pretrained, CheckpointFormat, ClipModel, ClipWeights, Error};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn io() -> anyhow::Result<HashMap<String, Tensor>> {
    Ok(candle_core::safetensors::load(
        fixtures().join("tiny_io.safetensors"),
        &Device::Cpu,
    )?)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> anyhow::Result<f64> {
    assert_eq!(a.dims(), b.dims());
    let d = (a.to_dtype(DType::F64)? - b.to_dtype(DType::F64)?)?.abs()?;
    Ok(d.flatten_all()?.max(0)?.to_scalar::<f64>()?)
}

/// Compares embeddings and logits with the float64 transformers reference.
fn check_outputs(model: &ClipModel, dtype: DType, tol: f64) -> anyhow::Result<()> {
    let io = io()?;
    let px = io["pixel_values"].to_dtype(dtype)?;
    let ids = &io["input_ids"];
    let img = model.encode_image(&px)?;
    let txt = model.encode_text(ids)?;
    let (per_image, per_text) = model.logits(&px, ids)?;
    for (name, ours) in [
        ("image_embeds", &img),
        ("text_embeds", &txt),
        ("logits_per_image", &per_image),
        ("logits_per_text", &per_text),
    ] {
        let d = max_abs_diff(ours, &io[name])?;
        eprintln!("{name} ({dtype:?}): max abs diff {d:.2e}");
        assert!(d < tol, "{name} ({dtype:?}): max |diff| {d:e} >= {tol:e}");
    }
    // The reference embeddings are not trivially small or constant.
    let spread = io["image_embeds"]
        .to_dtype(DType::F64)?
        .abs()?
        .max(0)?
        .max(0)?;
    assert!(spread.to_scalar::<f64>()? > 0.1);
    Ok(())
}

#[test]
fn hf_folder_matches_transformers_f32() -> anyhow::Result<()> {
    let w = ClipWeights::from_hf_dir(fixtures().join("tiny_hf"))?;
    assert_eq!(w.format, CheckpointFormat::HuggingFace);
    assert_eq!(w.config.vision_config.num_attention_heads, 2);
    assert_eq!(w.config.text_config.eos_token_id, 255);
    check_outputs(&w.model(DType::F32, &Device::Cpu)?, DType::F32, 1e-5)
}

#[test]
fn hf_folder_matches_transformers_f64() -> anyhow::Result<()> {
    let w = ClipWeights::from_path(fixtures().join("tiny_hf"))?;
    check_outputs(&w.model(DType::F64, &Device::Cpu)?, DType::F64, 1e-10)
}

#[test]
fn openai_pt_loads_to_the_same_model() -> anyhow::Result<()> {
    let hf = ClipWeights::from_hf_dir(fixtures().join("tiny_hf"))?;
    let oa = ClipWeights::resolve(fixtures().join("tiny_openai.pt").to_str().unwrap())?;
    assert_eq!(oa.format, CheckpointFormat::OpenAi);
    // Architecture inferred from shapes equals the transformers config.
    assert_eq!(oa.config.vision_config, hf.config.vision_config);
    assert_eq!(oa.config.text_config, hf.config.text_config);
    assert_eq!(oa.config.projection_dim, hf.config.projection_dim);
    // Every tensor the model uses, remapped (q/k/v split, projections transposed), is equal.
    let model_keys: Vec<&String> = hf
        .tensors
        .keys()
        .filter(|k| !k.ends_with("position_ids"))
        .collect();
    assert_eq!(model_keys.len(), oa.tensors.len());
    for k in model_keys {
        let theirs = oa
            .tensors
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing after remap"));
        assert_eq!(max_abs_diff(&hf.tensors[k], theirs)?, 0.0, "{k}");
    }
    check_outputs(&oa.model(DType::F32, &Device::Cpu)?, DType::F32, 1e-5)
}

#[test]
fn trainable_round_trips_through_save_pretrained() -> anyhow::Result<()> {
    let w = ClipWeights::from_hf_dir(fixtures().join("tiny_hf"))?;
    let (model, varmap) = w.trainable(DType::F32, &Device::Cpu)?;
    assert!(model.logit_scale().is_variable());
    check_outputs(&model, DType::F32, 1e-5)?;

    let dir = tempfile::tempdir()?;
    save_pretrained(&varmap, model.config(), dir.path())?;
    let back = ClipWeights::from_hf_dir(dir.path())?;
    assert_eq!(&back.config, model.config());
    for (k, v) in varmap.data().lock().unwrap().iter() {
        assert_eq!(max_abs_diff(v.as_tensor(), &back.tensors[k])?, 0.0, "{k}");
    }
    // The written config.json is recognisable to transformers.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json"))?)?;
    assert_eq!(json["model_type"], "clip");
    assert_eq!(json["vision_config"]["model_type"], "clip_vision_model");
    Ok(())
}

/// Lays the fixture out as an hf-hub cache entry: refs/main -> snapshots/<commit>/...
fn fake_cache(root: &Path, repo: &str) -> anyhow::Result<()> {
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let entry = root.join(format!("models--{}", repo.replace('/', "--")));
    std::fs::create_dir_all(entry.join("refs"))?;
    std::fs::write(entry.join("refs/main"), commit)?;
    let snap = entry.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap)?;
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures().join("tiny_hf").join(f), snap.join(f))?;
    }
    Ok(())
}

#[test]
fn hub_cache_lookup_is_offline() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    fake_cache(cache.path(), "acme/tiny-clip")?;
    let w = ClipWeights::from_hf_cache_at(cache.path(), "acme/tiny-clip")?;
    check_outputs(&w.model(DType::F32, &Device::Cpu)?, DType::F32, 1e-5)?;

    let err =
        ClipWeights::from_hf_cache_at(cache.path(), "openai/clip-vit-base-patch32").unwrap_err();
    assert!(matches!(err, Error::NotCached { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("openai/clip-vit-base-patch32"), "{msg}");
    assert!(msg.contains("huggingface-cli download"), "{msg}");
    Ok(())
}

#[test]
fn bad_paths_give_clear_errors() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let err = ClipWeights::from_hf_dir(dir.path()).unwrap_err();
    assert!(
        err.to_string().contains("neither model.safetensors"),
        "{err}"
    );

    let txt = dir.path().join("weights.txt");
    std::fs::write(&txt, "hello")?;
    let err = ClipWeights::from_path(&txt).unwrap_err();
    assert!(
        err.to_string().contains("unknown weight file type"),
        "{err}"
    );

    let pt = dir.path().join("broken.pt");
    std::fs::write(&pt, "not a zip")?;
    let err = ClipWeights::from_path(&pt).unwrap_err();
    assert!(err.to_string().contains("PyTorch zip pickle"), "{err}");

    // A safetensors file without its config.json.
    let st = dir.path().join("model.safetensors");
    std::fs::copy(fixtures().join("tiny_hf/model.safetensors"), &st)?;
    let err = ClipWeights::from_path(&st).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");
    Ok(())
}

#[test]
fn config_mismatch_names_the_file() -> anyhow::Result<()> {
    let mut w = ClipWeights::from_hf_dir(fixtures().join("tiny_hf"))?;
    w.config.text_config.hidden_size = 128;
    w.config.text_config.num_attention_heads = 2;
    let err = w.model(DType::F32, &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    let Err(err) = w.trainable(DType::F32, &Device::Cpu) else {
        panic!("mismatched shapes were accepted")
    };
    assert!(err.to_string().contains("shape"), "{err}");
    Ok(())
}
