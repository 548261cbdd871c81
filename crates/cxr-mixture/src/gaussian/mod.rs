//! Gaussian mixture fitted by EM, following scikit-learn's `GaussianMixture` step for step
//! (same initial responsibilities, M-step, precision Cholesky factors and stopping rule), so
//! that from the same initial parameters the per-iteration log-likelihoods agree.

mod algorithm;
mod hyperparams;

pub use hyperparams::{GmmParams, InitMethod};

use ndarray::{Array1, Array2};

use crate::components::{Components, CovarianceType, Covariances};
use crate::device::Device;

/// A fitted Gaussian mixture. Build with [`GaussianMixture::params`] then
/// [`GmmParams::fit`], or from known parameters with [`GaussianMixture::from_parts`].
#[derive(Clone, Debug)]
pub struct GaussianMixture {
    pub(crate) device: Device,
    pub(crate) comps: Components,
    pub(crate) converged: bool,
    pub(crate) n_iter: usize,
    pub(crate) lower_bound_history: Vec<f64>,
}

impl GaussianMixture {
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
        Ok(Self {
            device: Device::Cpu,
            comps,
            converged: false,
            n_iter: 0,
            lower_bound_history: Vec::new(),
        })
    }

    /// Mixture weights, `K`.
    pub fn weights(&self) -> &Array1<f64> {
        &self.comps.weights
    }

    /// Component means, `K x D`.
    pub fn means(&self) -> &Array2<f64> {
        &self.comps.means
    }

    /// Component covariances (regularised by `reg_covar`).
    pub fn covariances(&self) -> &Covariances {
        &self.comps.covariances
    }

    /// The covariance type.
    pub fn covariance_type(&self) -> CovarianceType {
        self.comps.covariances.covariance_type()
    }

    /// Whether the best run's change in mean log-likelihood fell below `tol`.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// EM iterations of the best run.
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }

    /// Mean log-likelihood per sample at each iteration of the best run (scikit-learn's
    /// `lower_bounds_`): iteration `i`'s value is evaluated before its M-step.
    pub fn lower_bound_history(&self) -> &[f64] {
        &self.lower_bound_history
    }

    /// The last entry of [`lower_bound_history`](Self::lower_bound_history)
    /// (`-inf` for a mixture built by `from_parts`).
    pub fn lower_bound(&self) -> f64 {
        self.lower_bound_history
            .last()
            .copied()
            .unwrap_or(f64::NEG_INFINITY)
    }

    /// Run predictions on `device` (a fit keeps the device it was fitted on).
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Number of components.
    pub fn n_components(&self) -> usize {
        self.comps.n_components()
    }

    /// Number of features the mixture was fitted on.
    pub fn n_features(&self) -> usize {
        self.comps.n_features()
    }

    /// Free parameters (for BIC/AIC).
    pub fn n_parameters(&self) -> usize {
        self.comps.n_parameters()
    }
}
