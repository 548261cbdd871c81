//! Where the E-step's distance kernel runs. Every kernel has a CPU implementation; the CUDA one
//! exists only with the `cuda` feature.

use ndarray::{Array2, ArrayView2};

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

impl Components {
    /// Squared Mahalanobis distances `N x K` on `device`.
    pub(crate) fn sq_mahalanobis_on(
        &self,
        x: ArrayView2<'_, f64>,
        device: Device,
    ) -> Result<Array2<f64>> {
        match device {
            Device::Cpu => Ok(self.sq_mahalanobis(x)),
            #[cfg(feature = "cuda")]
            Device::Cuda(ordinal) => crate::cuda::sq_mahalanobis(self, x, ordinal),
        }
    }

    /// The E-step's distances inside a fit: on the CPU, pairs whose weighted log density
    /// (`log_density(k, delta)`, non-increasing in `delta`) is provably negligible are `+inf`
    /// (see [`crate::pruned`]); on CUDA, every pair.
    pub(crate) fn sq_mahalanobis_fit<F>(
        &self,
        x: ArrayView2<'_, f64>,
        device: Device,
        log_density: F,
    ) -> Result<Array2<f64>>
    where
        F: Fn(usize, f64) -> f64 + Sync,
    {
        match device {
            Device::Cpu => Ok(self.sq_mahalanobis_pruned(x, log_density)),
            #[cfg(feature = "cuda")]
            Device::Cuda(_) => {
                let _ = log_density;
                self.sq_mahalanobis_on(x, device)
            }
        }
    }
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
            let fast = comps.sq_mahalanobis_on(x.view(), dev)?;
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
