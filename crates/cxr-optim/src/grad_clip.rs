//! Gradient-norm clipping over a [`GradStore`], as torch's `clip_grad_norm_`.

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Storage, Tensor, Var};
use rayon::prelude::*;

use crate::cpu::CHUNK;
use crate::error::{OptimError, Result};

/// The per-chunk sums added sequentially in chunk order: a rayon `sum` would combine them in
/// an order set by work stealing, so the norm (and the clipped gradients) would change in the
/// last bits from run to run.
fn in_order(chunk_sums: Vec<f64>) -> f64 {
    chunk_sums.into_iter().sum()
}

/// Sum of squares of one gradient, accumulated in f64 (parallel on CPU over fixed
/// [`CHUNK`]-element chunks, each summed sequentially, then added in chunk order: bit-exact
/// whatever the thread count).
fn sum_sq(g: &Tensor) -> Result<f64> {
    {
        let (storage, layout) = g.storage_and_layout();
        if let (Storage::Cpu(cpu), Some((a, b))) = (&*storage, layout.contiguous_offsets()) {
            match cpu {
                CpuStorage::F32(v) => {
                    return Ok(in_order(
                        v[a..b]
                            .par_chunks(CHUNK)
                            .map(|c| c.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>())
                            .collect(),
                    ));
                }
                CpuStorage::F64(v) => {
                    return Ok(in_order(
                        v[a..b]
                            .par_chunks(CHUNK)
                            .map(|c| c.iter().map(|&x| x * x).sum::<f64>())
                            .collect(),
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(g.to_dtype(DType::F64)?
        .sqr()?
        .sum_all()?
        .to_scalar::<f64>()?)
}

/// The global L2 norm of the gradients of `vars` (variables without gradient count as zero).
pub fn grad_norm(vars: &[Var], grads: &GradStore) -> Result<f64> {
    let mut total = 0.0;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            total += sum_sq(g)?;
        }
    }
    Ok(total.sqrt())
}

/// Scales the gradients of `vars` in `grads` so that their global L2 norm is at most
/// `max_norm`, and returns the norm *before* clipping (torch's `clip_grad_norm_`, coefficient
/// `max_norm / (norm + 1e-6)`).
///
/// A non-finite norm is returned as is and nothing is scaled: the caller decides whether to
/// skip the step (torch would fill the gradients with NaN).
pub fn clip_grad_norm(vars: &[Var], grads: &mut GradStore, max_norm: f64) -> Result<f64> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(OptimError::Config(format!(
            "max_norm for gradient clipping must be finite and > 0, got {max_norm}"
        )));
    }
    let norm = grad_norm(vars, grads)?;
    if !norm.is_finite() {
        return Ok(norm);
    }
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for v in vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                let scaled = scale(g, coef)?;
                grads.insert(v.as_tensor(), scaled);
            }
        }
    }
    Ok(norm)
}

/// `g * coef` as a new tensor (the gradient may be shared, so never in place); a parallel
/// pass for contiguous f32 on CPU, candle's affine op otherwise.
fn scale(g: &Tensor, coef: f64) -> Result<Tensor> {
    {
        let (storage, layout) = g.storage_and_layout();
        if let (Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) =
            (&*storage, layout.contiguous_offsets())
        {
            let c = coef as f32;
            let mut out = vec![0f32; b - a];
            out.par_chunks_mut(CHUNK)
                .zip(v[a..b].par_chunks(CHUNK))
                .for_each(|(o, x)| o.iter_mut().zip(x).for_each(|(o, &x)| *o = x * c));
            return Ok(Tensor::from_vec(out, g.shape(), g.device())?);
        }
    }
    Ok((g * coef)?)
}

#[cfg(test)]
mod determinism {
    use super::*;

    #[test]
    fn the_sum_of_squares_is_bit_identical_on_1_2_and_4_threads() {
        let n = 5 * CHUNK + 123;
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1009) as f32 * 1e-3 - 0.5)
            .collect();
        let t = Tensor::from_vec(v, n, &candle_core::Device::Cpu).unwrap();
        let sums: Vec<u64> = [1, 2, 4, 4]
            .into_iter()
            .map(|threads| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| sum_sq(&t).unwrap()).to_bits()
            })
            .collect();
        assert!(sums.iter().all(|&s| s == sums[0]), "{sums:?}");
    }
}
