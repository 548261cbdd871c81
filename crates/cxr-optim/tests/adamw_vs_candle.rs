//! The fused AdamW must reproduce `candle_nn::AdamW` (same update, same global step counter).

use candle_core::{Device, Tensor, Var};
use candle_nn::Optimizer;
use cxr_optim::{AdamW, AdamWConfig, Optimizer as _};

/// Deterministic pseudo-random values (no RNG dependency): a scrambled sine.
fn values(n: usize, seed: f64) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f64 * 12.9898 + seed * 78.233).sin() * 43758.5453).fract() as f32 - 0.5)
        .collect()
}

fn quadratic_grads(vars: &[Var], targets: &[Tensor]) -> candle_core::backprop::GradStore {
    let mut loss = Tensor::new(0f32, &Device::Cpu).unwrap();
    for (v, t) in vars.iter().zip(targets) {
        // sum((v - t)^2 * v) gives non-trivial, parameter-dependent gradients.
        let d = (v.as_tensor() - t).unwrap();
        loss = (loss
            + (d.sqr().unwrap() * v.as_tensor())
                .unwrap()
                .sum_all()
                .unwrap())
        .unwrap();
    }
    loss.backward().unwrap()
}

/// Shapes spanning the serial path and several parallel chunks (CHUNK = 32768).
const SHAPES: &[&[usize]] = &[&[7], &[3, 5], &[300, 257], &[70_001]];

#[test]
fn fused_adamw_matches_candle_nn_adamw_over_steps() {
    let dev = Device::Cpu;
    let cfg = AdamWConfig {
        lr: 3e-3,
        weight_decay: 0.05,
        ..AdamWConfig::default()
    };
    let mk = |seed: f64| -> Vec<Var> {
        SHAPES
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let n: usize = s.iter().product();
                Var::from_tensor(&Tensor::from_vec(values(n, seed + i as f64), *s, &dev).unwrap())
                    .unwrap()
            })
            .collect()
    };
    let ours = mk(1.0);
    let theirs = mk(1.0);
    let targets: Vec<Tensor> = mk(2.0).iter().map(|v| v.as_tensor().detach()).collect();
    let named = ours
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("p{i}"), v.clone()))
        .collect();
    let mut fused = AdamW::new(named, cfg.clone(), |_| true).unwrap();
    let mut reference = candle_nn::AdamW::new(
        theirs.clone(),
        candle_nn::ParamsAdamW {
            lr: cfg.lr,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.eps,
            weight_decay: cfg.weight_decay,
        },
    )
    .unwrap();
    for _ in 0..6 {
        fused.step(&quadratic_grads(&ours, &targets)).unwrap();
        reference.step(&quadratic_grads(&theirs, &targets)).unwrap();
    }
    assert_eq!(fused.step_count(), 6);
    for (a, b) in ours.iter().zip(&theirs) {
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-6, "max |fused - candle_nn| = {worst}");
    }
    // The parameters did move.
    let start = mk(1.0);
    let moved = (ours[2].as_tensor() - start[2].as_tensor())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(moved > 1e-3);
}

#[test]
fn fused_adamw_matches_candle_nn_adamw_in_f64() {
    let dev = Device::Cpu;
    let mk = || -> Vec<Var> {
        [vec![5usize, 3], vec![40_000]]
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let n: usize = s.iter().product();
                let data: Vec<f64> = values(n, i as f64).into_iter().map(f64::from).collect();
                Var::from_tensor(&Tensor::from_vec(data, s, &dev).unwrap()).unwrap()
            })
            .collect()
    };
    let (ours, theirs) = (mk(), mk());
    let grads = |vars: &[Var]| {
        let mut g = candle_core::backprop::GradStore::default();
        for v in vars {
            g.insert(v.as_tensor(), (v.as_tensor().sqr().unwrap() - 0.1).unwrap());
        }
        g
    };
    let named = ours
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("p{i}"), v.clone()))
        .collect();
    let mut fused = AdamW::new(named, AdamWConfig::default(), |_| true).unwrap();
    let mut reference =
        candle_nn::AdamW::new(theirs.clone(), candle_nn::ParamsAdamW::default()).unwrap();
    for _ in 0..4 {
        fused.step(&grads(&ours)).unwrap();
        reference.step(&grads(&theirs)).unwrap();
    }
    for (a, b) in ours.iter().zip(&theirs) {
        let d = (a.as_tensor() - b.as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(d.to_scalar::<f64>().unwrap() <= 1e-14);
    }
}

/// bf16 has no fused kernel: the tensor-op fallback (also used on CUDA) must equal candle_nn.
#[test]
fn tensor_op_fallback_matches_candle_nn_adamw() {
    let dev = Device::Cpu;
    let mk = || {
        let t = Tensor::from_vec(values(64, 3.0), (8, 8), &dev)
            .unwrap()
            .to_dtype(candle_core::DType::BF16)
            .unwrap();
        Var::from_tensor(&t).unwrap()
    };
    let (ours, theirs) = (mk(), mk());
    let grad = |v: &Var| {
        let mut g = candle_core::backprop::GradStore::default();
        g.insert(v.as_tensor(), (v.as_tensor() * 0.5).unwrap());
        g
    };
    let mut fused = AdamW::new(
        vec![("w".into(), ours.clone())],
        AdamWConfig::default(),
        |_| true,
    )
    .unwrap();
    let mut reference =
        candle_nn::AdamW::new(vec![theirs.clone()], candle_nn::ParamsAdamW::default()).unwrap();
    for _ in 0..3 {
        fused.step(&grad(&ours)).unwrap();
        reference.step(&grad(&theirs)).unwrap();
    }
    let f = |v: &Var| {
        v.to_dtype(candle_core::DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(f(&ours), f(&theirs));
    assert_ne!(f(&ours), f(&mk()));
    let state = fused.state_tensors().unwrap();
    assert_eq!(state["exp_avg/w"].dtype(), candle_core::DType::BF16);
}
