//! State round trips, missing gradients, validation and schedules.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use cxr_optim::{
    default_decay_filter, AdamW, AdamWConfig, LrSchedule, OptimError, Optimizer, PlateauConfig,
    ReduceLrOnPlateau, Sgd, SgdConfig,
};

fn named(seed: f32) -> Vec<(String, Var)> {
    [
        ("a.weight", vec![4usize, 3]),
        ("a.bias", vec![3]),
        ("b", vec![40_000]),
    ]
    .into_iter()
    .map(|(n, s)| {
        let len: usize = s.iter().product();
        let data: Vec<f32> = (0..len).map(|i| ((i as f32 + seed) * 0.37).sin()).collect();
        let t = Tensor::from_vec(data, s, &Device::Cpu).unwrap();
        (n.to_string(), Var::from_tensor(&t).unwrap())
    })
    .collect()
}

/// Gradient of `sum(p^3) / 3 + step * sum(p)`: p^2 + step, different at every step.
fn grads_for(vars: &[(String, Var)], step: usize) -> GradStore {
    let mut g = GradStore::default();
    for (_, v) in vars {
        g.insert(
            v.as_tensor(),
            (v.as_tensor().sqr().unwrap() + step as f64).unwrap(),
        );
    }
    g
}

fn snapshot(vars: &[(String, Var)]) -> Vec<Vec<f32>> {
    vars.iter()
        .map(|(_, v)| v.flatten_all().unwrap().to_vec1().unwrap())
        .collect()
}

#[test]
fn adamw_resumed_from_state_tensors_matches_uninterrupted_run() {
    let cfg = AdamWConfig::default();
    let straight = named(0.0);
    let mut opt = AdamW::new(straight.clone(), cfg.clone(), default_decay_filter).unwrap();
    for s in 0..6 {
        opt.step(&grads_for(&straight, s)).unwrap();
    }

    let resumed = named(0.0);
    let mut first = AdamW::new(resumed.clone(), cfg.clone(), default_decay_filter).unwrap();
    for s in 0..3 {
        first.step(&grads_for(&resumed, s)).unwrap();
    }
    first.set_learning_rate(cfg.lr); // lr is part of the state
    let state: HashMap<String, Tensor> = first.state_tensors().unwrap();
    assert_eq!(state.len(), 2 + 2 * 3);
    let mut second = AdamW::new(
        resumed.clone(),
        AdamWConfig { lr: 0.5, ..cfg },
        default_decay_filter,
    )
    .unwrap();
    second.load_state_tensors(&state).unwrap();
    assert_eq!(second.step_count(), 3);
    assert_eq!(second.learning_rate(), 1e-3);
    for s in 3..6 {
        second.step(&grads_for(&resumed, s)).unwrap();
    }
    assert_eq!(snapshot(&straight), snapshot(&resumed));
}

#[test]
fn sgd_resumed_from_state_tensors_matches_uninterrupted_run() {
    let cfg = SgdConfig {
        lr: 1e-2,
        weight_decay: 1e-3,
        ..SgdConfig::default()
    };
    let straight = named(1.0);
    let mut opt = Sgd::new(straight.clone(), cfg.clone(), default_decay_filter).unwrap();
    for s in 0..4 {
        opt.step(&grads_for(&straight, s)).unwrap();
    }
    let resumed = named(1.0);
    let mut first = Sgd::new(resumed.clone(), cfg.clone(), default_decay_filter).unwrap();
    for s in 0..2 {
        first.step(&grads_for(&resumed, s)).unwrap();
    }
    let state = first.state_tensors().unwrap();
    let mut second = Sgd::new(resumed.clone(), cfg, default_decay_filter).unwrap();
    second.load_state_tensors(&state).unwrap();
    for s in 2..4 {
        second.step(&grads_for(&resumed, s)).unwrap();
    }
    assert_eq!(snapshot(&straight), snapshot(&resumed));
}

#[test]
fn load_state_rejects_missing_or_misshapen_entries_and_changes_nothing() {
    let vars = named(2.0);
    let mut opt = AdamW::new(vars.clone(), AdamWConfig::default(), |_| true).unwrap();
    opt.step(&grads_for(&vars, 0)).unwrap();
    let good = opt.state_tensors().unwrap();

    let mut missing = good.clone();
    missing.remove("exp_avg/b");
    assert!(matches!(
        opt.load_state_tensors(&missing),
        Err(OptimError::State(_))
    ));

    let mut wrong = good.clone();
    wrong.insert(
        "exp_avg_sq/a.bias".into(),
        Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap(),
    );
    assert!(matches!(
        opt.load_state_tensors(&wrong),
        Err(OptimError::State(_))
    ));

    let mut no_step = good.clone();
    no_step.remove("step");
    assert!(matches!(
        opt.load_state_tensors(&no_step),
        Err(OptimError::State(_))
    ));
    assert_eq!(opt.step_count(), 1);
}

#[test]
fn missing_gradients_are_skipped_and_reported_but_none_at_all_is_an_error() {
    let vars = named(3.0);
    let before = snapshot(&vars);
    let mut opt = AdamW::new(vars.clone(), AdamWConfig::default(), default_decay_filter).unwrap();
    assert!(matches!(
        opt.step(&GradStore::default()),
        Err(OptimError::NoGradients(3))
    ));
    assert_eq!(opt.step_count(), 0);
    assert_eq!(snapshot(&vars), before);

    let mut partial = grads_for(&vars, 0);
    partial.remove(vars[1].1.as_tensor());
    opt.step(&partial).unwrap();
    assert_eq!(opt.skipped(), ["a.bias".to_string()]);
    let after = snapshot(&vars);
    assert_eq!(after[1], before[1], "skipped variable must not move");
    assert_ne!(after[0], before[0]);

    let mut sgd = Sgd::new(vars.clone(), SgdConfig::default(), |_| false).unwrap();
    assert!(matches!(
        sgd.step(&GradStore::default()),
        Err(OptimError::NoGradients(3))
    ));
}

#[test]
fn gradient_with_wrong_shape_is_an_error() {
    let vars = named(4.0);
    let mut opt = AdamW::new(vars.clone(), AdamWConfig::default(), default_decay_filter).unwrap();
    let mut g = grads_for(&vars, 0);
    g.insert(
        vars[0].1.as_tensor(),
        Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap(),
    );
    assert!(matches!(opt.step(&g), Err(OptimError::GradMismatch { .. })));
}

#[test]
fn duplicate_names_are_rejected() {
    let mut vars = named(5.0);
    vars[1].0 = vars[0].0.clone();
    assert!(matches!(
        AdamW::new(vars.clone(), AdamWConfig::default(), default_decay_filter),
        Err(OptimError::Config(_))
    ));
    assert!(matches!(
        Sgd::new(vars, SgdConfig::default(), default_decay_filter),
        Err(OptimError::Config(_))
    ));
}

#[test]
fn adamw_config_rejects_each_invalid_field() {
    let ok = AdamWConfig::default();
    ok.validate().unwrap();
    for bad in [
        AdamWConfig {
            lr: -1.0,
            ..ok.clone()
        },
        AdamWConfig {
            lr: f64::NAN,
            ..ok.clone()
        },
        AdamWConfig {
            beta1: 1.0,
            ..ok.clone()
        },
        AdamWConfig {
            beta2: -0.1,
            ..ok.clone()
        },
        AdamWConfig {
            eps: 0.0,
            ..ok.clone()
        },
        AdamWConfig {
            weight_decay: -1e-4,
            ..ok.clone()
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(OptimError::Config(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn sgd_config_rejects_each_invalid_field() {
    let ok = SgdConfig::default();
    ok.validate().unwrap();
    for bad in [
        SgdConfig {
            lr: f64::INFINITY,
            ..ok.clone()
        },
        SgdConfig {
            momentum: 1.0,
            ..ok.clone()
        },
        SgdConfig {
            momentum: 0.0,
            nesterov: true,
            ..ok.clone()
        },
        SgdConfig {
            weight_decay: -1.0,
            ..ok.clone()
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(OptimError::Config(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn plateau_config_rejects_each_invalid_field() {
    let ok = PlateauConfig::default();
    assert_eq!((ok.factor, ok.patience), (0.1, 2));
    for bad in [
        PlateauConfig {
            factor: 1.0,
            ..ok.clone()
        },
        PlateauConfig {
            factor: 0.0,
            ..ok.clone()
        },
        PlateauConfig {
            threshold: -1.0,
            ..ok.clone()
        },
        PlateauConfig {
            min_lr: -1.0,
            ..ok.clone()
        },
        PlateauConfig {
            eps: f64::NAN,
            ..ok.clone()
        },
    ] {
        assert!(ReduceLrOnPlateau::new(bad).is_err());
    }
}

#[test]
fn warmup_schedules_ramp_linearly_then_follow_their_shape() {
    let base = 1e-3;
    let w = LrSchedule::WarmupConstant { warmup_steps: 4 };
    let got: Vec<f64> = (0..6).map(|s| w.lr_at(base, s)).collect();
    let want = [0.25e-3, 0.5e-3, 0.75e-3, 1e-3, 1e-3, 1e-3];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-15);
    }
    let c = LrSchedule::CosineWithWarmup {
        warmup_steps: 2,
        total_steps: 6,
        min_lr: 1e-4,
    };
    c.validate().unwrap();
    assert!((c.lr_at(base, 0) - 0.5e-3).abs() < 1e-15);
    assert!((c.lr_at(base, 2) - base).abs() < 1e-15); // cosine starts at the base rate
    assert!((c.lr_at(base, 4) - (1e-4 + 0.5 * (base - 1e-4))).abs() < 1e-15); // half way
    assert_eq!(c.lr_at(base, 6), 1e-4);
    assert_eq!(c.lr_at(base, 100), 1e-4);
    assert_eq!(LrSchedule::Constant.lr_at(base, 7), base);
    let bad = LrSchedule::CosineWithWarmup {
        warmup_steps: 5,
        total_steps: 5,
        min_lr: 0.0,
    };
    assert!(bad.validate().is_err());
}

#[test]
fn schedule_round_trips_through_serde() {
    let c = LrSchedule::CosineWithWarmup {
        warmup_steps: 10,
        total_steps: 100,
        min_lr: 0.0,
    };
    let s = serde_json::to_string(&c).unwrap();
    assert!(s.contains("\"kind\":\"cosine-with-warmup\""), "{s}");
    assert_eq!(serde_json::from_str::<LrSchedule>(&s).unwrap(), c);
}

#[test]
fn clip_grad_norm_rejects_bad_max_norm_and_reports_nonfinite_norm() {
    let v = Var::new(&[3f32, 4.0], &Device::Cpu).unwrap();
    let mut g = GradStore::default();
    g.insert(
        v.as_tensor(),
        Tensor::new(&[3f32, 4.0], &Device::Cpu).unwrap(),
    );
    assert!(cxr_optim::clip_grad_norm(std::slice::from_ref(&v), &mut g, 0.0).is_err());
    assert_eq!(
        cxr_optim::grad_norm(std::slice::from_ref(&v), &g).unwrap(),
        5.0
    );
    g.insert(
        v.as_tensor(),
        Tensor::new(&[f32::NAN, 4.0], &Device::Cpu).unwrap(),
    );
    let n = cxr_optim::clip_grad_norm(std::slice::from_ref(&v), &mut g, 1.0).unwrap();
    assert!(n.is_nan());
}

#[test]
fn state_survives_a_safetensors_round_trip() {
    let vars = named(6.0);
    let mut opt = AdamW::new(vars.clone(), AdamWConfig::default(), default_decay_filter).unwrap();
    opt.step(&grads_for(&vars, 0)).unwrap();
    opt.set_learning_rate(2.5e-4);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optim.safetensors");
    candle_core::safetensors::save(&opt.state_tensors().unwrap(), &path).unwrap();
    let loaded = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let mut fresh = AdamW::new(vars.clone(), AdamWConfig::default(), default_decay_filter).unwrap();
    fresh.load_state_tensors(&loaded).unwrap();
    assert_eq!(fresh.step_count(), 1);
    assert_eq!(fresh.learning_rate(), 2.5e-4);
    let (a, b) = (opt.state_tensors().unwrap(), fresh.state_tensors().unwrap());
    for (k, t) in &a {
        let d = (t.to_dtype(DType::F64).unwrap() - b[k].to_dtype(DType::F64).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert_eq!(d, 0.0, "{k}");
    }
}
