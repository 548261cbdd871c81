//! The E-step: where its distance kernel runs (CPU or CUDA, [`Device`]) and how distances
//! become log densities, log responsibilities and per-sample log-likelihoods. Every kernel has
//! a CPU implementation; the CUDA one exists only with the `cuda` feature. The density itself
//! (Gaussian or Student-t) is the caller's `log_density(k, delta)`: this module knows
//! components and devices, not mixture models.

use ndarray::{Array1, Array2, ArrayView2};
use rayon::prelude::*;

use crate::components::Components;
use crate::error::Result;

/// Compute device for the E-step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Device {
    /// Rayon over samples on the CPU.
    #[default]
    Cpu,
    /// The CUDA device with this ordinal (needs the `cuda` feature and a GPU at run time).
    #[cfg(feature = "cuda")]
    Cuda(usize),
}

/// Squared Mahalanobis distances `N x K` on `device`, every pair.
pub(crate) fn sq_mahalanobis(
    comps: &Components,
    x: ArrayView2<'_, f64>,
    device: Device,
) -> Result<Array2<f64>> {
    match device {
        Device::Cpu => Ok(comps.sq_mahalanobis(x)),
        #[cfg(feature = "cuda")]
        Device::Cuda(ordinal) => crate::cuda::sq_mahalanobis(comps, x, ordinal),
    }
}

/// The E-step's distances: with `prune` (inside a fit) on the CPU, pairs whose weighted log
/// density (`log_density(k, delta)`, non-increasing in `delta`) is provably negligible are
/// `+inf` (see [`crate::pruned`]); otherwise, and on CUDA, every pair.
pub(crate) fn distances<F>(
    comps: &Components,
    x: ArrayView2<'_, f64>,
    device: Device,
    prune: bool,
    log_density: &F,
) -> Result<Array2<f64>>
where
    F: Fn(usize, f64) -> f64 + Sync,
{
    match device {
        Device::Cpu if prune => Ok(comps.sq_mahalanobis_pruned(x, log_density)),
        _ => sq_mahalanobis(comps, x, device),
    }
}

/// Replace each distance `delta_nk` of `N x K` distances by `log_density(k, delta_nk)`, in
/// parallel over samples.
pub(crate) fn apply_log_density<F>(m: &mut Array2<f64>, log_density: &F)
where
    F: Fn(usize, f64) -> f64 + Sync,
{
    let k_n = m.ncols();
    m.as_slice_mut()
        .expect("fresh array")
        .par_chunks_mut(k_n)
        .for_each(|row| {
            for (k, v) in row.iter_mut().enumerate() {
                *v = log_density(k, *v);
            }
        });
}

/// Weighted log densities `log_density(k, delta_nk)`, `N x K` (`-inf` where pruned).
pub(crate) fn weighted_log_densities<F>(
    comps: &Components,
    x: ArrayView2<'_, f64>,
    device: Device,
    prune: bool,
    log_density: &F,
) -> Result<Array2<f64>>
where
    F: Fn(usize, f64) -> f64 + Sync,
{
    let mut m = distances(comps, x, device, prune, log_density)?;
    apply_log_density(&mut m, log_density);
    Ok(m)
}

/// Log responsibilities `N x K` and per-sample log-likelihoods under `log_density`. With
/// `prune` (inside a fit), responsibilities below `exp(-80)` may come out as exactly 0.
pub(crate) fn e_step<F>(
    comps: &Components,
    x: ArrayView2<'_, f64>,
    device: Device,
    prune: bool,
    log_density: &F,
) -> Result<(Array2<f64>, Array1<f64>)>
where
    F: Fn(usize, f64) -> f64 + Sync,
{
    let mut w = weighted_log_densities(comps, x, device, prune, log_density)?;
    let lpn = normalize_log_resp(&mut w);
    Ok((w, lpn))
}

/// Normalise weighted log probabilities `N x K` in place into log responsibilities; returns
/// the per-sample log-likelihoods (`logsumexp` over components), computed in parallel.
pub(crate) fn normalize_log_resp(weighted: &mut Array2<f64>) -> Array1<f64> {
    let k_n = weighted.ncols();
    let lpn: Vec<f64> = weighted
        .as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(k_n)
        .map(|row| {
            let l = crate::linalg::logsumexp(row);
            row.iter_mut().for_each(|v| *v -= l);
            l
        })
        .collect();
    Array1::from(lpn)
}

/// Expand a `fn case(dev: Device) -> Result<()>` into a CPU test and, with the `cuda` feature,
/// a CUDA test (candle's `test_device!`).
#[cfg(test)]
macro_rules! test_device {
    ($case:ident, $cpu:ident, $cuda:ident) => {
        #[test]
        fn $cpu() -> $crate::Result<()> {
            $case($crate::Device::Cpu)
        }
        #[cfg(feature = "cuda")]
        #[test]
        fn $cuda() -> $crate::Result<()> {
            $case($crate::Device::Cuda(0))
        }
    };
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2, Array3};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::Device;
    use crate::components::{Components, Covariances};
    use crate::Result;

    fn random_components(k: usize, d: usize, rng: &mut ChaCha8Rng) -> [Components; 3] {
        let means = Array2::from_shape_fn((k, d), |_| rng.gen_range(-2.0..2.0));
        let weights = Array1::from_elem(k, 1.0 / k as f64);
        let full = Array3::from_shape_fn((k, d, d), |_| rng.gen_range(-0.5..0.5));
        let mut spd = Array3::<f64>::zeros((k, d, d));
        for c in 0..k {
            let a = full.index_axis(ndarray::Axis(0), c);
            let mut m = a.dot(&a.t());
            for i in 0..d {
                m[[i, i]] += 0.5;
            }
            spd.index_axis_mut(ndarray::Axis(0), c).assign(&m);
        }
        let diag = Array2::from_shape_fn((k, d), |_| rng.gen_range(0.2..3.0));
        let sph = Array1::from_shape_fn(k, |_| rng.gen_range(0.2..3.0));
        [
            Components::new(weights.clone(), means.clone(), Covariances::Full(spd)).unwrap(),
            Components::new(weights.clone(), means.clone(), Covariances::Diag(diag)).unwrap(),
            Components::new(weights, means, Covariances::Spherical(sph)).unwrap(),
        ]
    }

    /// The fast distance kernels (several row chunks, odd sizes) against the plain loops.
    fn distances_match_reference(dev: Device) -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (n, d, k) = (700, 7, 5);
        let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-4.0..4.0));
        for comps in random_components(k, d, &mut rng) {
            let fast = super::sq_mahalanobis(&comps, x.view(), dev)?;
            let slow = crate::reference::sq_mahalanobis(&comps, x.view());
            for (a, b) in fast.iter().zip(&slow) {
                assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                    "{a} vs {b} ({:?})",
                    comps.covariances.covariance_type()
                );
            }
        }
        Ok(())
    }
    test_device!(distances_match_reference, distances_cpu, distances_cuda);

    #[test]
    fn faer_precision_cholesky_matches_textbook() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let [full, _, _] = random_components(2, 6, &mut rng);
        let cov = full.covariances.dense(1, 6);
        let l = crate::reference::cholesky(&cov).unwrap();
        let ld: f64 = -l.diag().iter().map(|v| v.ln()).sum::<f64>();
        assert!((ld - full.log_det[1]).abs() < 1e-12);
    }
}
