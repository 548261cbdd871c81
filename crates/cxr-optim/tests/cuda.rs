//! The fused CUDA AdamW (feature `cuda`) against the fused CPU AdamW, step by step.
//!
//! Written once for every device: each test runs on CUDA device 0 when there is one. Without
//! one it prints a loud `SKIPPED` line and returns (set `CXR_REQUIRE_CUDA=1` to make that a
//! failure instead, as a GPU job should). CI has no GPU: `scripts/ci/cuda-check.sh` only
//! compile-checks these tests. Note that candle's CUDA backend links libcuda, cuBLAS, cuRAND
//! and NVRTC dynamically, so running them needs those libraries on the loader path.
#![cfg(feature = "cuda")]

#[path = "../../../tests/cuda-support/device.rs"]
mod cuda_support;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use cuda_support::{cuda_or_skip, values};
use cxr_optim::{AdamW, AdamWConfig, Optimizer as _};

/// What a skipped test leaves unchecked, for its `SKIPPED` line.
const UNVERIFIED: &str = "the CUDA AdamW kernel is";

/// `values` as a `dtype` tensor of `shape` on `dev`, rounded on the CPU so that every device
/// gets the same bits.
fn tensor(n_seed: (usize, f64), shape: &[usize], dtype: DType, dev: &Device) -> Tensor {
    Tensor::from_vec(values(n_seed.0, n_seed.1), shape, &Device::Cpu)
        .and_then(|t| t.to_dtype(dtype))
        .and_then(|t| t.to_device(dev))
        .unwrap()
}

/// Shapes: tiny, odd, one block exactly, and one past the capped grid (256 x 4096 elements),
/// so the kernel's grid-stride loop runs more than once.
const SHAPES: &[&[usize]] = &[&[1], &[7], &[256], &[300, 257], &[1_100_003]];

/// The same named variables on `dev`: every shape in f32, plus one f64 parameter.
fn vars(dev: &Device, seed: f64) -> Vec<(String, Var)> {
    let mut out: Vec<(String, Var)> = SHAPES
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n: usize = s.iter().product();
            let t = tensor((n, seed + i as f64), s, DType::F32, dev);
            // Every other parameter without weight decay (names as the decay filter reads them).
            let name = if i % 2 == 0 {
                format!("w{i}.weight")
            } else {
                format!("b{i}.bias")
            };
            (name, Var::from_tensor(&t).unwrap())
        })
        .collect();
    let t = tensor((1000, seed + 99.0), &[10, 100], DType::F64, dev);
    out.push(("f64.weight".into(), Var::from_tensor(&t).unwrap()));
    out
}

/// Gradients for step `k`, identical bit for bit on every device: the store comes from a
/// backward pass (its constructor is private) and is then overwritten with fixed values.
fn grads(vars: &[(String, Var)], k: usize) -> GradStore {
    let mut loss = Tensor::new(0f32, vars[0].1.device()).unwrap();
    for (_, v) in vars {
        let s = v
            .as_tensor()
            .sum_all()
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        loss = (loss + s).unwrap();
    }
    let mut store = loss.backward().unwrap();
    for (i, (_, v)) in vars.iter().enumerate() {
        let seed = 1000.0 + (k * 31 + i) as f64;
        let g = tensor((v.elem_count(), seed), v.dims(), v.dtype(), v.device());
        store.insert(v.as_tensor(), g);
    }
    store
}

fn host(v: &Tensor) -> Vec<f64> {
    v.flatten_all()
        .and_then(|t| t.to_dtype(DType::F64))
        .and_then(|t| t.to_device(&Device::Cpu))
        .and_then(|t| t.to_vec1::<f64>())
        .unwrap()
}

/// Largest |a - b| / (1 + |b|) between two parameter sets, by position.
fn worst_rel(a: &[(String, Var)], b: &[(String, Var)]) -> f64 {
    let mut worst = 0f64;
    for ((na, va), (nb, vb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        for (x, y) in host(va.as_tensor()).iter().zip(host(vb.as_tensor())) {
            worst = worst.max((x - y).abs() / (1.0 + y.abs()));
        }
    }
    worst
}

fn cfg() -> AdamWConfig {
    AdamWConfig {
        lr: 3e-3,
        weight_decay: 0.05,
        ..AdamWConfig::default()
    }
}

#[test]
fn cuda_adamw_matches_cpu_fused_adamw_over_steps() {
    let Some(gpu) = cuda_or_skip("cuda_adamw_matches_cpu_fused_adamw_over_steps", UNVERIFIED)
    else {
        return;
    };
    let (on_gpu, on_cpu) = (vars(&gpu, 1.0), vars(&Device::Cpu, 1.0));
    assert_eq!(
        worst_rel(&on_gpu, &on_cpu),
        0.0,
        "same start on both devices"
    );
    let mut a = AdamW::new(on_gpu.clone(), cfg(), cxr_optim::default_decay_filter).unwrap();
    let mut b = AdamW::new(on_cpu.clone(), cfg(), cxr_optim::default_decay_filter).unwrap();
    for k in 0..5 {
        a.step(&grads(&on_gpu, k)).unwrap();
        b.step(&grads(&on_cpu, k)).unwrap();
        // Compiled with --fmad=false and IEEE sqrt/div, the kernel should agree to the last
        // bit; the bound leaves room for one rounding difference without hiding a wrong formula
        // (a wrong bias correction or decay moves values by ~1e-3).
        let worst = worst_rel(&on_gpu, &on_cpu);
        assert!(worst <= 1e-6, "step {k}: CUDA and CPU differ by {worst:e}");
        eprintln!("step {k}: worst relative CUDA/CPU difference {worst:e}");
    }
    // The moments agree too, and stay on the parameter's device.
    let (sa, sb) = (a.state_tensors().unwrap(), b.state_tensors().unwrap());
    for (name, v) in &on_gpu {
        for key in [format!("exp_avg/{name}"), format!("exp_avg_sq/{name}")] {
            assert!(
                sa[&key].device().same_device(v.device()),
                "{key} left the GPU"
            );
            assert_eq!(sa[&key].dtype(), v.dtype());
            let (x, y) = (host(&sa[&key]), host(&sb[&key]));
            let worst = x
                .iter()
                .zip(&y)
                .map(|(x, y)| (x - y).abs() / (1e-12 + y.abs()))
                .fold(0f64, f64::max);
            assert!(
                worst <= 1e-6,
                "{key}: CUDA and CPU moments differ by {worst:e}"
            );
        }
    }
}

#[test]
fn cuda_adamw_state_round_trips_between_devices() {
    let Some(gpu) = cuda_or_skip("cuda_adamw_state_round_trips_between_devices", UNVERIFIED) else {
        return;
    };
    // Reference: 4 uninterrupted CPU steps.
    let on_cpu = vars(&Device::Cpu, 3.0);
    let mut reference = AdamW::new(on_cpu.clone(), cfg(), |_| true).unwrap();
    for k in 0..4 {
        reference.step(&grads(&on_cpu, k)).unwrap();
    }
    // 2 steps on the GPU, state moved to a fresh GPU optimiser (as after a checkpoint), then
    // 2 more steps.
    let on_gpu = vars(&gpu, 3.0);
    let mut first = AdamW::new(on_gpu.clone(), cfg(), |_| true).unwrap();
    for k in 0..2 {
        first.step(&grads(&on_gpu, k)).unwrap();
    }
    let state = first.state_tensors().unwrap();
    // Through the host, as a safetensors checkpoint would.
    let state: std::collections::HashMap<String, Tensor> = state
        .into_iter()
        .map(|(k, t)| (k, t.to_device(&Device::Cpu).unwrap()))
        .collect();
    drop(first);
    let mut second = AdamW::new(on_gpu.clone(), cfg(), |_| true).unwrap();
    second.load_state_tensors(&state).unwrap();
    assert_eq!(second.step_count(), 2);
    for k in 2..4 {
        second.step(&grads(&on_gpu, k)).unwrap();
    }
    let worst = worst_rel(&on_gpu, &on_cpu);
    assert!(
        worst <= 1e-6,
        "resumed CUDA run differs from CPU by {worst:e}"
    );
}

#[test]
fn cuda_bf16_parameters_use_the_tensor_op_path() {
    let Some(gpu) = cuda_or_skip("cuda_bf16_parameters_use_the_tensor_op_path", UNVERIFIED) else {
        return;
    };
    let mk = |dev: &Device| -> Vec<(String, Var)> {
        let t = tensor((300, 5.0), &[3, 100], DType::BF16, dev);
        vec![("w.weight".into(), Var::from_tensor(&t).unwrap())]
    };
    let (on_gpu, on_cpu) = (mk(&gpu), mk(&Device::Cpu));
    let mut a = AdamW::new(on_gpu.clone(), cfg(), |_| true).unwrap();
    let mut b = AdamW::new(on_cpu.clone(), cfg(), |_| true).unwrap();
    for k in 0..3 {
        a.step(&grads(&on_gpu, k)).unwrap();
        b.step(&grads(&on_cpu, k)).unwrap();
    }
    // Same tensor ops on both devices; bf16 keeps about 3 significant digits.
    let worst = worst_rel(&on_gpu, &on_cpu);
    assert!(worst <= 1e-2, "bf16 CUDA and CPU differ by {worst:e}");
    assert_eq!(
        a.state_tensors().unwrap()["exp_avg/w.weight"].dtype(),
        DType::BF16
    );
}

/// ViT-B/32-sized parameter set (about 148M f32 elements; the exact shapes are in
/// `crates/cxr-optim/examples/bench_optim.rs`): token embedding, 12 vision blocks of width 768 and 12 text
/// blocks of width 512 (attention in/out projections and MLP).
fn vit_b32_like_shapes() -> Vec<Vec<usize>> {
    let mut s = vec![vec![49_408, 512]];
    for w in [768usize, 512] {
        for _ in 0..12 {
            s.extend([vec![3 * w, w], vec![w, w], vec![4 * w, w], vec![w, 4 * w]]);
        }
    }
    s
}

/// Timing, not a test: one AdamW step over a ViT-B/32-sized parameter set on CUDA, fused
/// against `candle_nn::AdamW` (about 15 tensor ops per parameter). Run on a GPU with
/// `cargo test --release -p cxr-optim --features cuda --test cuda -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: needs a GPU and several seconds"]
fn bench_cuda_adamw_step_vit_b32_sized() {
    use candle_nn::Optimizer;
    let Some(gpu) = cuda_or_skip("bench_cuda_adamw_step_vit_b32_sized", UNVERIFIED) else {
        return;
    };
    let shapes = vit_b32_like_shapes();
    let mk = || -> Vec<(String, Var)> {
        shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let t = Tensor::zeros(s.as_slice(), DType::F32, &gpu)
                    .and_then(|t| t.affine(0.0, 0.01 * (i + 1) as f64))
                    .unwrap();
                (format!("p{i}.weight"), Var::from_tensor(&t).unwrap())
            })
            .collect()
    };
    let n: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
    let time = |mut step: Box<dyn FnMut() + '_>| -> f64 {
        step(); // warm-up: module load, allocations
        gpu.synchronize().unwrap();
        let mut t: Vec<f64> = (0..5)
            .map(|_| {
                let start = std::time::Instant::now();
                step();
                gpu.synchronize().unwrap();
                start.elapsed().as_secs_f64()
            })
            .collect();
        t.sort_by(f64::total_cmp);
        t[2]
    };
    let ours = mk();
    let g_ours = grads(&ours, 0);
    let mut fused = AdamW::new(ours.clone(), cfg(), |_| true).unwrap();
    let t_fused = time(Box::new(|| fused.step(&g_ours).unwrap()));
    drop((fused, g_ours, ours));
    let theirs = mk();
    let g_theirs = grads(&theirs, 0);
    let mut reference = candle_nn::AdamW::new(
        theirs.iter().map(|(_, v)| v.clone()).collect(),
        candle_nn::ParamsAdamW {
            lr: 3e-3,
            weight_decay: 0.05,
            ..Default::default()
        },
    )
    .unwrap();
    let t_candle = time(Box::new(|| reference.step(&g_theirs).unwrap()));
    eprintln!(
        "{n} f32 parameters in {} tensors: fused CUDA AdamW {:.3} ms/step ({:.0} GB/s at 28 B \
         per element), candle_nn::AdamW {:.3} ms/step, ratio {:.1}x",
        shapes.len(),
        t_fused * 1e3,
        28.0 * n as f64 / t_fused / 1e9,
        t_candle * 1e3,
        t_candle / t_fused
    );
}
