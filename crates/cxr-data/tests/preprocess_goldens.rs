//! CheXzero and CLIP preprocessing against Pillow + torchvision goldens
//! (`scripts/goldens/cxr-data/preprocess_goldens.py`; versions in preprocess_goldens.json).
//! Tolerance: mean absolute difference below 1/255 on the 0-1 intensity scale.

use std::path::PathBuf;

use cxr_data::image::{
    chexzero_pad, load_gray, normalise, preprocess_u8, Preprocess, PreprocessMode, CHEXZERO_STD,
    CLIP_STD,
};
use cxr_data::npy::read_f32;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/preprocess")
        .join(name)
}

fn meta() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("preprocess_goldens.json")).unwrap())
        .unwrap()
}

fn check(stem: &str, file: &str, mode: PreprocessMode) {
    let img = load_gray(&fixture(file)).unwrap();
    let p = Preprocess { mode, size: 224 };
    let ours = normalise(&preprocess_u8(&img, &p), mode);
    let tag = match mode {
        PreprocessMode::CheXzero => "chexzero",
        PreprocessMode::Clip => "clip",
    };
    let (shape, want) = read_f32(&fixture(&format!("{stem}_{tag}_c0_f16.npy"))).unwrap();
    assert_eq!(shape, vec![224, 224]);
    // back to the 0-1 intensity scale: normalised difference times std (std/255 for CheXzero)
    let scale = match mode {
        PreprocessMode::CheXzero => CHEXZERO_STD / 255.0,
        PreprocessMode::Clip => CLIP_STD[0],
    };
    let n = want.len();
    let mae = ours[..n]
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / n as f32
        * scale;
    eprintln!("{stem} {tag}: MAE {:.4}/255", mae * 255.0);
    assert!(
        mae < 1.0 / 255.0,
        "{stem} {tag}: MAE {:.3}/255",
        mae * 255.0
    );
    let means = &meta()["cases"][format!("{stem}_{tag}")]["channel_means"];
    for c in 0..3 {
        let m: f32 = ours[c * n..(c + 1) * n].iter().sum::<f32>() / n as f32;
        let g = means[c].as_f64().unwrap() as f32;
        let s = match mode {
            PreprocessMode::CheXzero => CHEXZERO_STD / 255.0,
            PreprocessMode::Clip => CLIP_STD[c],
        };
        assert!(
            ((m - g) * s).abs() < 1.0 / 255.0,
            "{stem} {tag} channel {c}: mean {m} vs {g}"
        );
    }
}

#[test]
fn chexzero_matches_pillow_and_torchvision() {
    check("portrait", "portrait.jpg", PreprocessMode::CheXzero);
    check("landscape16", "landscape16.png", PreprocessMode::CheXzero);
}

#[test]
fn clip_matches_pillow_and_torchvision() {
    check("portrait", "portrait.jpg", PreprocessMode::Clip);
    check("landscape16", "landscape16.png", PreprocessMode::Clip);
}

#[test]
fn lanczos_pad_is_bit_exact_with_pillow() {
    // PNG input: no decoder differences, so the LANCZOS resize + paste must match exactly.
    let img = load_gray(&fixture("landscape16.png")).unwrap();
    let (w, h) = img.dimensions();
    let ours = chexzero_pad(img.as_raw(), w, h, 320);
    let (shape, want) = read_f32(&fixture("landscape16_pad320_u8.npy")).unwrap();
    assert_eq!(shape, vec![320, 320]);
    let diff = ours
        .iter()
        .zip(&want)
        .filter(|(&a, &b)| a as f32 != b)
        .count();
    assert_eq!(diff, 0, "{diff} pixels differ from Pillow");
}
