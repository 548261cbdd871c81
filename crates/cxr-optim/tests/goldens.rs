//! Parity with torch 2.15 goldens (`tests/fixtures/optim_goldens.json`, made by
//! `scripts/goldens/cxr-optim/make_optim_goldens.py`): AdamW and SGD trajectories,
//! ReduceLROnPlateau learning rates, cosine annealing.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use cxr_optim::{
    default_decay_filter, AdamW, AdamWConfig, LrSchedule, Optimizer, PlateauConfig, PlateauMode,
    ReduceLrOnPlateau, Sgd, SgdConfig, ThresholdMode,
};
use serde_json::Value;

fn goldens() -> Value {
    serde_json::from_str(include_str!("fixtures/optim_goldens.json")).unwrap()
}

fn vecf(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

const PARAMS: [(&str, &[usize]); 2] = [("w", &[3, 4]), ("ln.bias", &[5])];

fn params(case: &Value) -> Vec<(String, Var)> {
    PARAMS
        .iter()
        .map(|(n, s)| {
            let t = Tensor::from_vec(vecf(&case["init"][*n]), *s, &Device::Cpu).unwrap();
            (n.to_string(), Var::from_tensor(&t).unwrap())
        })
        .collect()
}

fn grads(case: &Value, step: usize, vars: &[(String, Var)]) -> GradStore {
    let mut g = GradStore::default();
    for (n, v) in vars {
        let t = Tensor::from_vec(vecf(&case["grads"][step][n]), v.shape(), &Device::Cpu).unwrap();
        g.insert(v.as_tensor(), t);
    }
    g
}

fn assert_vec_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Runs `step` over the golden gradients (with the golden lr change) and checks every step.
fn check_trajectory(
    case: &Value,
    vars: &[(String, Var)],
    mut set_lr: impl FnMut(f64),
    mut step: impl FnMut(&GradStore),
    what: &str,
) {
    let change = case["lr_change"].as_array().unwrap();
    let (at, lr2) = (
        change[0].as_u64().unwrap() as usize,
        change[1].as_f64().unwrap(),
    );
    for (i, after) in case["after"].as_array().unwrap().iter().enumerate() {
        if i == at {
            set_lr(lr2);
        }
        step(&grads(case, i, vars));
        for (n, v) in vars {
            assert_vec_close(
                &flat(v.as_tensor()),
                &vecf(&after[n]),
                2e-6,
                &format!("{what} step {i} {n}"),
            );
        }
    }
}

#[test]
fn adamw_matches_torch_adamw_with_decay_groups() {
    let g = goldens();
    for (k, case) in g["adamw"].as_array().unwrap().iter().enumerate() {
        let vars = params(case);
        let cfg = AdamWConfig {
            lr: case["lr"].as_f64().unwrap(),
            beta1: case["beta1"].as_f64().unwrap(),
            beta2: case["beta2"].as_f64().unwrap(),
            eps: case["eps"].as_f64().unwrap(),
            weight_decay: case["weight_decay"].as_f64().unwrap(),
        };
        let opt =
            std::cell::RefCell::new(AdamW::new(vars.clone(), cfg, default_decay_filter).unwrap());
        check_trajectory(
            case,
            &vars,
            |lr| opt.borrow_mut().set_learning_rate(lr),
            |gs| opt.borrow_mut().step(gs).unwrap(),
            &format!("adamw[{k}]"),
        );
        let state = opt.borrow().state_tensors().unwrap();
        for (n, _) in PARAMS {
            let st = &case["state"][n];
            assert_vec_close(
                &flat(&state[&format!("exp_avg/{n}")]),
                &vecf(&st["exp_avg"]),
                2e-6,
                "exp_avg",
            );
            assert_vec_close(
                &flat(&state[&format!("exp_avg_sq/{n}")]),
                &vecf(&st["exp_avg_sq"]),
                2e-6,
                "exp_avg_sq",
            );
        }
    }
}

#[test]
fn sgd_matches_torch_sgd_momentum_and_nesterov() {
    let g = goldens();
    for (k, case) in g["sgd"].as_array().unwrap().iter().enumerate() {
        let vars = params(case);
        let cfg = SgdConfig {
            lr: case["lr"].as_f64().unwrap(),
            momentum: case["momentum"].as_f64().unwrap(),
            nesterov: case["nesterov"].as_bool().unwrap(),
            weight_decay: case["weight_decay"].as_f64().unwrap(),
        };
        let momentum = cfg.momentum;
        let opt =
            std::cell::RefCell::new(Sgd::new(vars.clone(), cfg, default_decay_filter).unwrap());
        check_trajectory(
            case,
            &vars,
            |lr| opt.borrow_mut().set_learning_rate(lr),
            |gs| opt.borrow_mut().step(gs).unwrap(),
            &format!("sgd[{k}]"),
        );
        if momentum > 0.0 {
            let state = opt.borrow().state_tensors().unwrap();
            for (n, _) in PARAMS {
                let want = vecf(&case["state"][n]["momentum_buffer"]);
                assert_vec_close(
                    &flat(&state[&format!("momentum_buffer/{n}")]),
                    &want,
                    2e-6,
                    "momentum_buffer",
                );
            }
        }
    }
}

fn plateau_config(c: &Value) -> PlateauConfig {
    PlateauConfig {
        mode: match c["mode"].as_str().unwrap() {
            "min" => PlateauMode::Min,
            _ => PlateauMode::Max,
        },
        factor: c["factor"].as_f64().unwrap(),
        patience: c["patience"].as_u64().unwrap() as usize,
        threshold: c["threshold"].as_f64().unwrap(),
        threshold_mode: match c["threshold_mode"].as_str().unwrap() {
            "rel" => ThresholdMode::Rel,
            _ => ThresholdMode::Abs,
        },
        cooldown: c["cooldown"].as_u64().unwrap() as usize,
        min_lr: c["min_lr"].as_f64().unwrap(),
        eps: c["eps"].as_f64().unwrap(),
    }
}

#[test]
fn reduce_lr_on_plateau_matches_torch() {
    let g = goldens();
    let cases = g["plateau"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for (k, case) in cases.iter().enumerate() {
        let mut sched = ReduceLrOnPlateau::new(plateau_config(&case["config"])).unwrap();
        let mut lr = case["lr"].as_f64().unwrap();
        let metrics = case["metrics"].as_array().unwrap();
        let want = case["lrs"].as_array().unwrap();
        for (i, (m, w)) in metrics.iter().zip(want).enumerate() {
            let m = m.as_f64().unwrap_or(f64::NAN);
            // Round-trip the state through JSON half way, as a checkpoint would.
            if i == metrics.len() / 2 {
                sched = serde_json::from_str(&serde_json::to_string(&sched).unwrap()).unwrap();
            }
            lr = sched.step(m, lr);
            let w = w.as_f64().unwrap();
            assert!(
                (lr - w).abs() <= 1e-12 * w,
                "plateau[{k}] step {i}: lr {lr}, torch {w}"
            );
        }
    }
}

#[test]
fn cosine_schedule_matches_torch_cosine_annealing_after_warmup() {
    let g = goldens();
    for case in g["cosine"].as_array().unwrap() {
        let base = case["base_lr"].as_f64().unwrap();
        let sched = LrSchedule::CosineWithWarmup {
            warmup_steps: 0,
            total_steps: case["total_steps"].as_u64().unwrap() as usize,
            min_lr: case["min_lr"].as_f64().unwrap(),
        };
        sched.validate().unwrap();
        for (step, w) in case["lrs"].as_array().unwrap().iter().enumerate() {
            let w = w.as_f64().unwrap();
            let got = sched.lr_at(base, step);
            assert!(
                (got - w).abs() <= 1e-12 * base,
                "step {step}: {got} vs torch {w}"
            );
        }
    }
}

#[test]
fn clip_grad_norm_matches_torch() {
    let g = goldens();
    for (k, case) in g["clip_grad_norm"].as_array().unwrap().iter().enumerate() {
        let vars: Vec<Var> = PARAMS
            .iter()
            .map(|(_, s)| Var::zeros(*s, candle_core::DType::F32, &Device::Cpu).unwrap())
            .collect();
        let mut store = GradStore::default();
        for ((n, _), v) in PARAMS.iter().zip(&vars) {
            let t = Tensor::from_vec(vecf(&case["grads"][*n]), v.shape(), &Device::Cpu).unwrap();
            store.insert(v.as_tensor(), t);
        }
        let max_norm = case["max_norm"].as_f64().unwrap();
        let norm = cxr_optim::clip_grad_norm(&vars, &mut store, max_norm).unwrap();
        let want = case["norm"].as_f64().unwrap();
        assert!(
            (norm - want).abs() <= 1e-5 * want,
            "clip[{k}] norm {norm} vs {want}"
        );
        for ((n, _), v) in PARAMS.iter().zip(&vars) {
            let got = flat(store.get(v.as_tensor()).unwrap());
            assert_vec_close(
                &got,
                &vecf(&case["clipped"][*n]),
                1e-6,
                &format!("clip[{k}] {n}"),
            );
        }
    }
}
