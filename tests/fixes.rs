//! Workspace integration tests of the fixes listed in "Comparisons a reviewer trusts": frozen
//! towers stay bit-identical, the weighted loss's temperature stops at its bound, the baseline
//! skips images without a report, and warm-up works under every schedule. Tiny runs, seconds.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor, Var};
use cxr_cml::losses::{weighted_metric_loss, WeightedMetricConfig, MIN_TEMPERATURE};
use cxr_cml::optim::{AdamW, AdamWConfig, Optimizer};
use cxr_cml::train::batch::TextSource;
use cxr_cml::train::config::{ScheduleKind, Tower};
use cxr_cml::train::{checkpoint, model, prepare, step, train_one, Method, TrainConfig};

use crate::common;

/// Fix 2: trained alone, on fixed embeddings whose positives are (slightly) closer than their
/// negatives, the weighted loss's learnable temperature runs down to its lower bound and stops
/// there with the loss above 0 (unclamped, it would reach 0 and the loss with it).
#[test]
fn weighted_loss_temperature_stops_at_its_bound_and_the_loss_stays_positive() -> anyhow::Result<()>
{
    let dev = Device::Cpu;
    // Unit vectors at these angles; clusters {0, 1} and {2, 3}: same-cluster image-text pairs
    // sit 0.002 closer on average than different-cluster ones, less than margin * the bound.
    let unit = |angles: [f32; 4]| -> candle_core::Result<Tensor> {
        let v: Vec<f32> = angles.iter().flat_map(|a| [a.cos(), a.sin()]).collect();
        Tensor::from_vec(v, (4, 2), &dev)
    };
    let img = unit([0.0, 0.2, 1.0, 1.2])?;
    let txt = unit([0.599, 0.599, 0.601, 0.601])?;
    let plab = Tensor::new(&[[1f32, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], &dev)?;
    let cfg = WeightedMetricConfig::default();
    let log_t = Var::new(0f32, &dev)?;
    let mut opt = AdamW::new(
        vec![("log_temperature".into(), log_t.clone())],
        AdamWConfig {
            lr: 0.05,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
        |_| false,
    )?;
    let loss_at = |log_t: &Var| -> anyhow::Result<Tensor> {
        Ok(weighted_metric_loss(
            &img,
            &txt,
            &plab,
            &log_t.as_tensor().exp()?,
            &cfg,
        )?)
    };
    let first = loss_at(&log_t)?.to_scalar::<f32>()?;
    for _ in 0..400 {
        let grads = loss_at(&log_t)?.backward()?;
        opt.step(&grads)?;
    }
    let temperature = log_t.as_tensor().exp()?.to_scalar::<f32>()?;
    let last = loss_at(&log_t)?.to_scalar::<f32>()?;
    assert!(
        temperature <= MIN_TEMPERATURE as f32,
        "the temperature ran down to its bound: {temperature}"
    );
    assert!(last > 0.0 && last.is_finite(), "loss {first} -> {last}");
    let g = loss_at(&log_t)?.backward()?;
    let stopped = g
        .get(log_t.as_tensor())
        .map(|g| g.to_scalar::<f32>())
        .transpose()?
        .unwrap_or(0.0);
    assert_eq!(stopped, 0.0, "no gradient past the bound");
    Ok(())
}

/// A tiny meta-label run: `patients` synthetic patients, batches of 8, one epoch of at most
/// `max_steps` steps, no bootstrap or figures.
fn tiny(root: &Path, patients: usize, max_steps: usize) -> TrainConfig {
    let mut cfg = common::tiny_config(root, patients);
    cfg.method = Method::MetaLabels;
    cfg.train_loop.epochs = 1;
    cfg.train_loop.batch_size = 8;
    cfg.train_loop.max_steps = Some(max_steps);
    cfg.eval.bootstrap = 0;
    cfg.eval.figures = false;
    cfg
}

/// Every parameter of a model built from `cfg`, as host vectors by name.
fn initial_weights(cfg: &TrainConfig) -> anyhow::Result<HashMap<String, Vec<f32>>> {
    let (varmap, _) = model::build_model(cfg, &Device::Cpu)?;
    model::named_vars(&varmap)
        .into_iter()
        .map(|(n, v)| Ok((n, v.as_tensor().flatten_all()?.to_vec1::<f32>()?)))
        .collect()
}

/// Fix 1: a frozen tower is outside the optimiser (its state has no key for it) and gets no
/// gradient, so after training every one of its tensors is bit-identical to the initial
/// weights while the other tower changed; the optimiser state still loads for a resume.
#[test]
fn frozen_towers_stay_bit_identical_while_the_other_trains() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data_cfg = tiny(tmp.path(), 24, 3);
    let data = prepare::prepare(&data_cfg)?;
    let split = data.patient_split(&data_cfg.data, data_cfg.seed);
    for frozen in [Tower::Text, Tower::Vision] {
        let other = match frozen {
            Tower::Text => Tower::Vision,
            Tower::Vision => Tower::Text,
        };
        let mut cfg = data_cfg.clone();
        cfg.train_loop.freeze = vec![frozen];
        let run = tmp.path().join(format!("freeze-{frozen}"));
        let out = train_one(&cfg, &data, &split, &run)?;
        assert_eq!(out.steps, 3);
        let before = initial_weights(&cfg)?;
        let dir = checkpoint::latest(&run)?.expect("a checkpoint");
        let after = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)?;
        let (mut same, mut changed) = (0, 0);
        for (name, t) in &after {
            let now = t.flatten_all()?.to_vec1::<f32>()?;
            let was = &before[name];
            let identical = now.iter().zip(was).all(|(a, b)| a.to_bits() == b.to_bits());
            if frozen.owns(name) {
                assert!(identical, "frozen {name} changed");
                same += 1;
            } else if other.owns(name) && !identical {
                changed += 1;
            }
        }
        assert!(
            same > 0 && changed > 0,
            "{frozen}: {same} frozen, {changed} changed"
        );
        let state = checkpoint::load_optimizer(&dir)?;
        assert!(state
            .keys()
            .all(|k| !frozen.owns(k.rsplit('/').next().unwrap())));
        let (varmap, _) = model::build_model(&cfg, &Device::Cpu)?;
        model::build_optimizer(&cfg, &varmap)?.load_state_tensors(&state)?;
    }
    Ok(())
}

/// Fix 1: the frozen tower's parameters get no gradient at all (no gradient work), whole
/// batch or GradCache micro-batches.
#[test]
fn frozen_parameters_get_no_gradient() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    for accumulate in [1, 2] {
        let mut cfg = tiny(tmp.path(), 24, 1);
        cfg.train_loop.freeze = vec![Tower::Text];
        cfg.train_loop.accumulate = accumulate;
        let dev = Device::Cpu;
        let (varmap, clip) = model::build_model(&cfg, &dev)?;
        let side = cfg.model.image_size;
        let pixels = Tensor::randn(0f32, 1.0, (4, 3, side, side), &dev)?;
        let texts = [
            "effusion is present",
            "edema is present",
            "",
            "mass is present",
        ];
        let tokens = cxr_cml::text::ClipTokenizer::bundled()?.encode_batch(&texts, 32)?;
        let ids = Tensor::from_vec(tokens.ids, (4, 32), &dev)?;
        let params = model::trainable_vars(&cfg, &varmap);
        let mut objective = step::Objective::new(&cfg, None)?;
        let out = objective.loss_and_grads(&clip, &pixels, &ids, &params)?;
        for (name, var) in model::named_vars(&varmap) {
            let has = out.grads.get(var.as_tensor()).is_some();
            assert_eq!(
                has,
                !Tower::Text.owns(&name),
                "{name} (accumulate {accumulate})"
            );
        }
    }
    Ok(())
}

/// The learning rate of every step of a finished run.
fn step_lrs(run_dir: &Path) -> anyhow::Result<Vec<f64>> {
    let text = std::fs::read_to_string(run_dir.join("metrics.jsonl"))?;
    let mut lrs = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if v["kind"] == "step" {
            lrs.push(v["lr"].as_f64().expect("lr"));
        }
    }
    Ok(lrs)
}

/// Fix 7: `schedule.warmup_steps` ramps the rate linearly under the plateau and constant
/// schedules too; the plateau schedule's own rate (checkpointed) is untouched by it.
#[test]
fn warmup_ramps_the_rate_under_every_schedule() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cfg = tiny(tmp.path(), 24, 4);
    let data = prepare::prepare(&cfg)?;
    let split = data.patient_split(&cfg.data, cfg.seed);
    cfg.schedule.warmup_steps = 3;
    let lr = cfg.optim.lr;
    for kind in [
        ScheduleKind::Plateau,
        ScheduleKind::Constant,
        ScheduleKind::Cosine,
    ] {
        cfg.schedule.kind = kind;
        let run = tmp.path().join(kind.as_str());
        train_one(&cfg, &data, &split, &run)?;
        let lrs = step_lrs(&run)?;
        assert_eq!(lrs.len(), 4, "{kind}");
        for (s, want) in [lr / 3.0, 2.0 * lr / 3.0, lr].into_iter().enumerate() {
            assert!(
                (lrs[s] - want).abs() < 1e-12 * lr,
                "{kind} step {s}: {lrs:?}"
            );
        }
        if kind != ScheduleKind::Cosine {
            assert_eq!(lrs[3], lr, "{kind}");
        }
        let state = checkpoint::read_state(&checkpoint::latest(&run)?.expect("a checkpoint"))?;
        if kind == ScheduleKind::Plateau {
            assert_eq!(state.lr, lr, "the plateau rate is not warmed");
        }
    }
    Ok(())
}

/// Fix 3: the report-text baseline leaves images without a report out of its training
/// batches (the split is the same for every method), and errs when no training image has one.
/// The synthetic demo data has a report for every image.
#[test]
fn the_baseline_skips_images_without_a_report() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cfg = tiny(tmp.path(), 24, 1000);
    cfg.method = Method::Baseline;
    let data = prepare::prepare(&cfg)?;
    let split = data.patient_split(&cfg.data, cfg.seed);
    let texts = TextSource::new(&cfg, &data)?;
    assert_eq!(
        texts.trainable(&data.usable),
        data.usable,
        "demo data: every image has one"
    );

    // Remove the reports of the first three training images' studies.
    let report = |i: usize| {
        let r = &data.table.records[i];
        data.reports_root
            .join(cxr_cml::data::report::report_path(r.subject_id, r.study_id))
    };
    for &i in &split.train[..3] {
        if report(i).is_file() {
            std::fs::remove_file(report(i))?; // images of one study share its report
        }
    }
    let with: Vec<usize> = split
        .train
        .iter()
        .copied()
        .filter(|&i| report(i).is_file())
        .collect();
    assert!(with.len() < split.train.len());
    let texts = TextSource::new(&cfg, &data)?;
    assert_eq!(texts.trainable(&split.train), with);
    assert_eq!(
        texts.trainable(&split.val),
        split
            .val
            .iter()
            .copied()
            .filter(|&i| report(i).is_file())
            .collect::<Vec<_>>()
    );

    let run = tmp.path().join("baseline");
    let out = train_one(&cfg, &data, &split, &run)?;
    let b = cfg.train_loop.batch_size;
    let batches = with.len() / b + usize::from(with.len() % b >= 2);
    assert_eq!(out.steps, batches, "{} trainable images", with.len());
    let ids: prepare::SplitIds =
        serde_json::from_slice(&std::fs::read(run.join(prepare::SPLIT_FILE))?)?;
    assert_eq!(
        ids.train.len(),
        split.train.len(),
        "the split keeps every image"
    );

    for &i in &data.usable {
        let _ = std::fs::remove_file(report(i));
    }
    let e = TextSource::new(&cfg, &data)
        .err()
        .expect("no report at all")
        .to_string();
    assert!(e.contains("no report"), "{e}");
    Ok(())
}
