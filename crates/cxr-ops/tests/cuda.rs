//! The CUDA kernels (feature `cuda`) against the CPU kernels: values and gradients of every
//! op, f32, on the row lengths of `tests/ops.rs`.
//!
//! Each test runs on CUDA device 0 when there is one. Without one it prints a loud `SKIPPED`
//! line and returns (set `CXR_REQUIRE_CUDA=1` to make that a failure instead, as a GPU job
//! should). CI has no GPU: `scripts/ci/cuda-check.sh` only compile-checks these tests.
#![cfg(feature = "cuda")]

#[path = "../../../tests/cuda-support/device.rs"]
mod cuda_support;

use candle_core::{DType, Device, Result, Tensor, Var};
use cuda_support::{cuda_or_skip, values};

/// What a skipped test leaves unchecked, for its `SKIPPED` line.
const UNVERIFIED: &str = "the CUDA kernels of cxr-ops are";

type Op1 = fn(&Tensor) -> Result<Tensor>;

const UNARY: &[(&str, Op1)] = &[
    ("softmax", cxr_ops::softmax_last_dim),
    ("log_softmax", cxr_ops::log_softmax_last_dim),
    ("quick_gelu", cxr_ops::quick_gelu),
    ("gelu_erf", cxr_ops::gelu_erf),
];

/// Row lengths 1, 7, 77, 768, 3072 (one to twelve warps of a 256-thread block and more), a
/// rank-3 shape, and one with more rows than the element-wise grid's cap covers at once.
const SHAPES: &[&[usize]] = &[
    &[5, 1],
    &[4, 7],
    &[3, 77],
    &[6, 768],
    &[2, 3072],
    &[2, 3, 7],
    &[1700, 768],
];

/// The same f32 values on `dev`.
fn tensor(shape: &[usize], seed: f64, scale: f64, shift: f64, dev: &Device) -> Result<Tensor> {
    let n = shape.iter().product();
    let v: Vec<f32> = values(n, seed)
        .iter()
        .map(|v| (v * scale + shift) as f32)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)?.to_device(dev)
}

/// Value and gradients of `sum(f(inputs) * r)` with every input a variable, on the CPU.
fn run(f: &dyn Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) -> Result<Vec<Vec<f32>>> {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&ts)?;
    let r = tensor(y.dims(), 7.0, 2.0, 0.1, y.device())?;
    let grads = (&y * r)?.sum_all()?.backward()?;
    let mut out = vec![y.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<f32>()?];
    for v in &vars {
        let g = grads
            .get(v.as_tensor())
            .expect("every input has a gradient");
        out.push(g.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// Largest `|a - b|` relative to `max(1, max |b|)`.
fn max_err(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs() as f64));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() as f64)
        .fold(0.0, f64::max)
        / scale
}

#[test]
fn unary_ops_on_cuda_match_the_cpu() -> Result<()> {
    let Some(dev) = cuda_or_skip("unary_ops_on_cuda_match_the_cpu", UNVERIFIED) else {
        return Ok(());
    };
    for &(name, op) in UNARY {
        for (i, shape) in SHAPES.iter().enumerate() {
            let x = tensor(shape, i as f64, 8.0, 0.0, &Device::Cpu)?;
            assert_eq!(x.dtype(), DType::F32);
            let cpu = run(&|t| op(&t[0]), std::slice::from_ref(&x))?;
            let gpu = run(&|t| op(&t[0]), &[x.to_device(&dev)?])?;
            for (what, (a, b)) in ["y", "dx"].iter().zip(gpu.iter().zip(&cpu)) {
                let e = max_err(a, b);
                assert!(e < 2e-5, "{name} {shape:?} {what}: CUDA vs CPU error {e:e}");
            }
        }
    }
    Ok(())
}

#[test]
fn layer_norm_on_cuda_matches_the_cpu() -> Result<()> {
    let Some(dev) = cuda_or_skip("layer_norm_on_cuda_matches_the_cpu", UNVERIFIED) else {
        return Ok(());
    };
    for (i, shape) in SHAPES.iter().enumerate() {
        let dim = *shape.last().unwrap();
        let inputs = [
            tensor(shape, i as f64, 6.0, 1.5, &Device::Cpu)?,
            tensor(&[dim], 11.0 + i as f64, 1.0, 1.0, &Device::Cpu)?,
            tensor(&[dim], 21.0 + i as f64, 1.0, 0.0, &Device::Cpu)?,
        ];
        let ln = |t: &[Tensor]| cxr_ops::layer_norm(&t[0], &t[1], &t[2], 1e-5);
        let cpu = run(&ln, &inputs)?;
        let on_gpu: Vec<Tensor> = inputs.iter().map(|t| t.to_device(&dev).unwrap()).collect();
        let gpu = run(&ln, &on_gpu)?;
        for (what, (a, b)) in ["y", "dx", "dweight", "dbias"]
            .iter()
            .zip(gpu.iter().zip(&cpu))
        {
            // dweight / dbias sum up to 1700 rows in another order than the CPU.
            let e = max_err(a, b);
            assert!(
                e < 5e-5,
                "layer_norm {shape:?} {what}: CUDA vs CPU error {e:e}"
            );
        }
    }
    Ok(())
}
