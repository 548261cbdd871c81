//! Property-based fuzzing of CLIP weight loading (see `tests/fuzz-support/mutate.rs` at the
//! workspace root): a Hugging Face folder (`config.json` + `model.safetensors`) with one of
//! its files mutated, and OpenAI-layout PyTorch `.pt` files (zip + pickle) mutated.
//!
//! Property: no panic: `ClipWeights::from_path` returns weights or an error, and weights that
//! load build a frozen model (`ClipWeights::model`) or say why not.
//!
//! Seeds: `tests/fuzz-corpus/hf/` (a 4-wide one-layer CLIP, written by [`seed_files`]) and,
//! for `.pt`, the existing `tests/fixtures/tiny_openai.pt` (made by
//! `scripts/goldens/cxr-clip/make_clip_fixture.py`; 1 MB, so it is used in place rather than
//! copied). `PROPTEST_CASES=100000 cargo test -p cxr-clip --test fuzz` runs longer than CI.

#[path = "../../../tests/fuzz-support/mutate.rs"]
mod mutate;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use cxr_clip::{
    save_pretrained, ClipConfig, ClipModel, ClipTextConfig, ClipVisionConfig, ClipWeights,
};
use proptest::prelude::*;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

fn tiny_config() -> ClipConfig {
    ClipConfig {
        vision_config: ClipVisionConfig {
            image_size: 4,
            patch_size: 2,
            hidden_size: 4,
            intermediate_size: 8,
            num_hidden_layers: 1,
            num_attention_heads: 1,
            ..ClipVisionConfig::default()
        },
        text_config: ClipTextConfig {
            vocab_size: 8,
            max_position_embeddings: 4,
            hidden_size: 4,
            intermediate_size: 8,
            num_hidden_layers: 1,
            num_attention_heads: 1,
            eos_token_id: 7,
            ..ClipTextConfig::default()
        },
        projection_dim: 4,
        logit_scale_init_value: 2.6592,
    }
}

/// A freshly initialised tiny CLIP saved as a Hugging Face folder. Initialisation is random,
/// so the committed `model.safetensors` is checked by loading, not byte for byte.
fn seed_files() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let cfg = tiny_config();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    ClipModel::new(vb, &cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_pretrained(&varmap, &cfg, dir.path()).unwrap();
    let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
    vec![
        ("hf", "config.json", read("config.json")),
        ("hf", "model.safetensors", read("model.safetensors")),
    ]
}

#[test]
fn seeds_load() {
    if std::env::var_os("FUZZ_WRITE_SEEDS").is_some_and(|v| v == "1") {
        mutate::check_seeds(&corpus(), &seed_files());
    }
    let w = ClipWeights::from_path(corpus().join("hf")).unwrap();
    assert_eq!(w.config, tiny_config());
    w.model(DType::F32, &Device::Cpu).unwrap();
    w.trainable(DType::F32, &Device::Cpu).unwrap();
}

const JSON_TOKENS: &[&[u8]] = &[
    b"\"",
    b":",
    b",",
    b"{",
    b"}",
    b"[",
    b"]",
    b"null",
    b"true",
    b"0",
    b"-1",
    b"1e999",
    b"18446744073709551615",
    b"4294967296",
    b"\"hidden_size\": 3",
    b"\"num_attention_heads\": 0",
    b"\"patch_size\": 0",
    b"\"image_size\": 3",
    b"\"hidden_act\": \"gelu\"",
    b"\"relu\"",
    b"\"num_hidden_layers\": 2",
    b"\"vocab_size\": 1",
    b"\"eos_token_id\": 99",
];

const BINARY_TOKENS: &[&[u8]] = &[
    b"\x00\x00\x00\x00\x00\x00\x00\x00",
    b"\xff\xff\xff\xff\xff\xff\xff\x7f",
    b"\"F16\"",
    b"\"I64\"",
    b"\"shape\":[]",
    b"[4294967296]",
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"\x80\x02",
    b"q\x00",
    b"ctorch._utils\n_rebuild_tensor_v2\n",
    b"\x8a\x01\xff",
    b"R",
    b".",
];

/// Loads whatever is at `path`; builds a model from what loads. Neither may panic.
fn load(path: &Path) {
    if let Ok(w) = ClipWeights::from_path(path) {
        let _ = w.model(DType::F32, &Device::Cpu);
    }
}

proptest! {
    #![proptest_config(mutate::config(2000))]

    #[test]
    fn hf_folder_never_panics(
        mutate_config in any::<bool>(),
        bytes in prop_oneof![
            mutate::input(vec![std::fs::read(corpus().join("hf/config.json")).unwrap()], JSON_TOKENS),
            mutate::input(vec![std::fs::read(corpus().join("hf/model.safetensors")).unwrap()], BINARY_TOKENS),
        ],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, st) = if mutate_config {
            (bytes, std::fs::read(corpus().join("hf/model.safetensors")).unwrap())
        } else {
            (std::fs::read(corpus().join("hf/config.json")).unwrap(), bytes)
        };
        std::fs::write(dir.path().join("config.json"), cfg).unwrap();
        std::fs::write(dir.path().join("model.safetensors"), st).unwrap();
        load(dir.path());
    }
}

proptest! {
    #![proptest_config(mutate::config(500))]

    #[test]
    fn openai_pt_never_panics(
        bytes in mutate::input(
            vec![std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_openai.pt")).unwrap()],
            BINARY_TOKENS,
        ),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.pt");
        std::fs::write(&p, bytes).unwrap();
        load(&p);
    }
}
