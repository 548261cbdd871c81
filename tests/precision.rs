//! `loop.precision = "bf16"` against `"f32"`: the same CXR-CML run (same data, split, initial
//! weights and batches) trained a few steps in each precision. The per-step losses stay close,
//! the parameters and checkpoints stay f32, and the test macro AUC (evaluated in each run's
//! precision) is close.
//!
//! Tolerances. One bf16 forward of the tiny model has an embedding error of about 1.3% (measured;
//! bound 9.4%, `crates/cxr-clip/tests/mixed_precision.rs`), and the loss, a smooth function of
//! normalised embeddings, moves by less (measured: at most 0.21% over the six steps). Later
//! steps also differ by the weights' drift (every gradient's direction is within a cosine of
//! 1 - 1e-4 of the f32 one), which six steps at lr 1e-3 keep small. The test allows 2% per
//! step and 0.03 of test macro AUC (a rank statistic over a few dozen images, measured 0.001
//! apart). AdamW moves every weight by about lr per step whatever its gradient's size, so
//! weights whose gradients are mostly rounding noise (the key biases') may part by up to
//! 6 lr; the test allows the weights 1e-2 of their norm apart (measured 9.8e-4).

use cxr_cml::train::config::Precision;
use cxr_cml::train::{run_methods, Method, TrainConfig};

use crate::common;

fn config(root: &std::path::Path, precision: Precision) -> TrainConfig {
    let mut cfg = common::tiny_config(root, 40);
    cfg.train_loop.epochs = 2;
    cfg.train_loop.batch_size = 16;
    cfg.train_loop.max_steps = Some(6);
    cfg.train_loop.precision = precision;
    cfg.mixture.k = 4;
    cfg.mixture.bank_capacity = 64;
    cfg.mixture.max_iter = 5;
    cfg.optim.lr = 1e-3;
    cfg.eval.bootstrap = 0;
    cfg.eval.figures = false;
    cfg
}

#[test]
fn bf16_training_tracks_f32_and_keeps_f32_weights() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut results = Vec::new();
    for precision in [Precision::F32, Precision::Bf16] {
        let cfg = config(tmp.path(), precision);
        let out = tmp.path().join(precision.as_str());
        let mut r = run_methods(&cfg, &[Method::CxrCml], &out)?;
        results.push(r.remove(0));
    }
    let (f32_run, bf16_run) = (&results[0], &results[1]);
    assert!(
        bf16_run.run_name.ends_with("-bf16") && !f32_run.run_name.ends_with("-bf16"),
        "{} / {}",
        f32_run.run_name,
        bf16_run.run_name
    );
    let config_text = std::fs::read_to_string(bf16_run.run_dir.join("config.toml"))?;
    assert!(
        config_text.contains("precision = \"bf16\""),
        "{config_text}"
    );

    let l32 = common::step_losses(&f32_run.run_dir);
    let l16 = common::step_losses(&bf16_run.run_dir);
    assert_eq!(l32.len(), 6, "{l32:?}");
    assert_eq!(l16.len(), l32.len());
    let mut worst = 0f64;
    for ((s32, a), (s16, b)) in l32.iter().zip(&l16) {
        assert_eq!(s32, s16);
        let rel = (a - b).abs() / a.abs();
        worst = worst.max(rel);
        assert!(rel < 0.02, "step {s32}: loss {b} (bf16) vs {a} (f32)");
    }
    // bf16 really ran: the losses are not the f32 ones.
    assert!(worst > 0.0, "bf16 losses equal the f32 ones: {l16:?}");
    eprintln!("worst relative loss difference over the steps: {worst:.5}");

    // Master weights stay f32: every saved parameter is f32, and the two runs' weights differ
    // by a small fraction of their size (the trajectories part by rounding only).
    let dev = candle_core::Device::Cpu;
    let load = |run: &std::path::Path| {
        candle_core::safetensors::load(run.join("checkpoints/best/model.safetensors"), &dev)
    };
    let w16 = load(&bf16_run.run_dir)?;
    let w32 = load(&f32_run.run_dir)?;
    assert!(!w16.is_empty());
    let (mut diff2, mut norm2) = (0f64, 0f64);
    for (name, t) in &w16 {
        assert_eq!(t.dtype(), candle_core::DType::F32, "{name}");
        let u = &w32[name];
        assert_eq!(t.dims(), u.dims(), "{name}");
        diff2 += (t - u)?.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        norm2 += u.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    let weight_rel = (diff2 / norm2).sqrt();
    eprintln!("relative L2 difference of the weights: {weight_rel:.2e}");
    assert!(weight_rel > 0.0 && weight_rel < 1e-2, "{weight_rel}");

    let (a32, a16) = (
        f32_run.test.macro_all.expect("f32 macro AUC"),
        bf16_run.test.macro_all.expect("bf16 macro AUC"),
    );
    eprintln!("test macro AUC: f32 {a32:.4}, bf16 {a16:.4}");
    assert!(
        (a32 - a16).abs() < 0.03,
        "macro AUC {a16} (bf16) vs {a32} (f32)"
    );
    Ok(())
}
