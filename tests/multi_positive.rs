//! Workspace integration test of `loss.clip = "multi-positive"`: the option reaches the
//! training step (run name, config file, whole-batch and GradCache paths) and, since identical
//! meta-label texts embed identically, it trains as InfoNCE does up to rounding (the batches of
//! this tiny synthetic data hold repeated texts: 2-4 per batch of 16 when this was written).

use cxr_cml::train::config::ClipLoss;
use cxr_cml::train::{run_methods, Method, TrainConfig};

use crate::common;

fn config(root: &std::path::Path) -> TrainConfig {
    let mut cfg = common::tiny_config(root, 60);
    cfg.train_loop.epochs = 1;
    cfg.train_loop.batch_size = 16;
    cfg.train_loop.max_steps = Some(4);
    cfg.eval.bootstrap = 0;
    cfg.eval.figures = false;
    cfg
}

#[test]
fn multi_positive_clip_loss_trains_like_infonce_on_identical_texts() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut losses = Vec::new();
    for (clip, accumulate) in [
        (ClipLoss::InfoNce, 1),
        (ClipLoss::MultiPositive, 1),
        (ClipLoss::MultiPositive, 2),
    ] {
        let mut cfg = config(tmp.path());
        cfg.loss.clip = clip;
        cfg.train_loop.accumulate = accumulate;
        let out = tmp.path().join(format!("{clip}-{accumulate}"));
        let r = run_methods(&cfg, &[Method::MetaLabels], &out)?;
        let run_dir = &r[0].run_dir;
        let toml = std::fs::read_to_string(run_dir.join("config.toml"))?;
        assert!(toml.contains(&format!("clip = \"{clip}\"")), "{toml}");
        assert_eq!(
            run_dir.to_string_lossy().ends_with("-multipos"),
            clip == ClipLoss::MultiPositive
        );
        let l = common::step_losses(run_dir);
        assert_eq!(l.len(), 4);
        losses.push(l);
    }
    for (k, other) in losses[1..].iter().enumerate() {
        for ((s, a), (_, b)) in losses[0].iter().zip(other) {
            assert!(
                (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                "variant {k} step {s}: {a} vs {b}"
            );
        }
    }
    let e = TrainConfig::demo()
        .set("loss.clip=supcon")
        .unwrap_err()
        .to_string();
    assert!(e.contains("infonce") && e.contains("multi-positive"), "{e}");
    Ok(())
}
