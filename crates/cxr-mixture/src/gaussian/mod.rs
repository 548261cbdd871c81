//! Gaussian mixture fitted by EM, following scikit-learn's `GaussianMixture` step for step
//! (same initial responsibilities, M-step, precision Cholesky factors and stopping rule), so
//! that from the same initial parameters the per-iteration log-likelihoods agree.

mod algorithm;
mod hyperparams;

pub use hyperparams::{GmmParams, InitMethod};

use ndarray::{Array1, Array2};

use crate::components::{Components, Covariances};
use crate::mixture::{sealed, Density, Mixture};

/// The Gaussian component density `N(x | mu_k, cov_k)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gaussian;

impl sealed::Sealed for Gaussian {
    fn log_density<'a>(
        &'a self,
        weights: &'a Array1<f64>,
        log_det: &'a Array1<f64>,
        n_features: usize,
    ) -> impl Fn(usize, f64) -> f64 + Sync + 'a {
        let c = n_features as f64 * (2.0 * std::f64::consts::PI).ln();
        let lw = weights.mapv(f64::ln);
        move |k: usize, delta: f64| lw[k] + (-0.5 * (c + delta) + log_det[k])
    }

    fn extra_parameters(&self, _n_components: usize) -> usize {
        0
    }
}

impl Density for Gaussian {}

/// A fitted Gaussian mixture. Build with [`GaussianMixture::params`] then
/// [`GmmParams::fit`], or from known parameters with [`GaussianMixture::from_parts`]. The
/// accessors, `predict`, `score`, `bic` and the rest are [`Mixture`]'s.
pub type GaussianMixture = Mixture<Gaussian>;

impl Mixture<Gaussian> {
    /// Hyperparameters for `k` components, with defaults (see [`GmmParams`]).
    pub fn params(k: usize) -> GmmParams {
        GmmParams::new(k)
    }

    /// A mixture with the given parameters (for warm starts, tests, or loading a saved fit).
    /// The shapes and positive definiteness are checked.
    pub fn from_parts(
        weights: Array1<f64>,
        means: Array2<f64>,
        covariances: Covariances,
    ) -> crate::Result<Self> {
        let (k, d) = means.dim();
        let t = covariances.covariance_type();
        let comps = Components::from_init(&weights, &means, &covariances, k, d, t)?;
        Ok(Self::unfitted(Gaussian, comps))
    }

    /// Component covariances (regularised by `reg_covar`).
    pub fn covariances(&self) -> &Covariances {
        &self.comps.covariances
    }
}
