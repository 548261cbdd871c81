//! The fitted-model core that the Gaussian and Student-t mixtures share: components, weights,
//! fit diagnostics and the predict / score / information-criterion family, written once over
//! the component density ([`Density`]). [`GaussianMixture`](crate::GaussianMixture) is
//! `Mixture<Gaussian>` and [`StudentMixture`](crate::StudentMixture) is `Mixture<StudentT>`;
//! what differs between them (their builders, `from_parts` / `from_gaussian`, `covariances`
//! / `scales` / `nu`, Student-t latent weights) lives in `gaussian/` and `student/`.
//!
//! A new mixture model is a new unit type implementing [`Density`] (in its own module, next to
//! its EM), plus an arm of [`FittedMixture`](crate::FittedMixture) if the pseudo-labeler is to
//! use it.

use ndarray::{Array1, Array2, ArrayView2};

use crate::components::{Components, CovarianceType};
use crate::data::check_data_dim;
use crate::error::Result;
use crate::estep::{self, Device};

/// The component density of a mixture: [`Gaussian`](crate::Gaussian) or
/// [`StudentT`](crate::StudentT). Sealed: implemented only in this crate.
pub trait Density: sealed::Sealed {}

pub(crate) mod sealed {
    use ndarray::Array1;

    /// What a fitted mixture needs from its density (kept out of the public API).
    pub trait Sealed: Clone + std::fmt::Debug + Send + Sync {
        /// `(k, delta) -> log w_k + log f_k(x)` for a sample at squared Mahalanobis distance
        /// `delta` from component `k`, given the mixture `weights`, the components' `log det
        /// P_k` and the number of features; non-increasing in `delta` (the E-step's pruning
        /// relies on it).
        fn log_density<'a>(
            &'a self,
            weights: &'a Array1<f64>,
            log_det: &'a Array1<f64>,
            n_features: usize,
        ) -> impl Fn(usize, f64) -> f64 + Sync + 'a;

        /// Free parameters besides the weights, means and covariances (for BIC/AIC).
        fn extra_parameters(&self, n_components: usize) -> usize;
    }
}

/// A fitted mixture with component density `D`. Use it through its aliases,
/// [`GaussianMixture`](crate::GaussianMixture) and [`StudentMixture`](crate::StudentMixture).
#[derive(Clone, Debug)]
pub struct Mixture<D> {
    pub(crate) density: D,
    pub(crate) device: Device,
    pub(crate) comps: Components,
    pub(crate) converged: bool,
    pub(crate) n_iter: usize,
    pub(crate) lower_bound_history: Vec<f64>,
}

impl<D: Density> Mixture<D> {
    /// A mixture that no EM has run on yet (not converged, empty history), predicting on the
    /// CPU.
    pub(crate) fn unfitted(density: D, comps: Components) -> Self {
        Self {
            density,
            device: Device::Cpu,
            comps,
            converged: false,
            n_iter: 0,
            lower_bound_history: Vec::new(),
        }
    }

    /// Mixture weights, `K`.
    pub fn weights(&self) -> &Array1<f64> {
        &self.comps.weights
    }

    /// Component means (Student-t: locations), `K x D`.
    pub fn means(&self) -> &Array2<f64> {
        &self.comps.means
    }

    /// The covariance (Student-t: scale) type.
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
    /// (`-inf` for a mixture no EM has run on).
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

    /// Free parameters (for BIC/AIC): weights, means and covariances, plus the density's own
    /// (the learned Student-t `nu`s).
    pub fn n_parameters(&self) -> usize {
        self.comps.n_parameters() + self.density.extra_parameters(self.n_components())
    }

    /// Weighted log densities `log w_k + log f_k(x_n)`, `N x K`, of checked data.
    fn weighted_log_densities(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let c = &self.comps;
        let f = self
            .density
            .log_density(&c.weights, &c.log_det, c.n_features());
        estep::weighted_log_densities(c, x, self.device, false, &f)
    }

    /// Log responsibilities and per-sample log-likelihoods of `x`, checked.
    fn e_step(&self, x: ArrayView2<'_, f64>) -> Result<(Array2<f64>, Array1<f64>)> {
        let x = check_data_dim(x, self.n_features())?;
        let c = &self.comps;
        let f = self
            .density
            .log_density(&c.weights, &c.log_det, c.n_features());
        estep::e_step(c, x.view(), self.device, false, &f)
    }

    /// Hard labels: the component with the highest posterior (the argmax of the weighted log
    /// densities, as scikit-learn's `predict`).
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Array1<usize>> {
        let x = check_data_dim(x, self.n_features())?;
        Ok(argmax_rows(&self.weighted_log_densities(x.view())?))
    }

    /// Posterior probabilities `N x K` (rows sum to one).
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        Ok(self.e_step(x)?.0.mapv(f64::exp))
    }

    /// Log-likelihood of each sample under the mixture.
    pub fn score_samples(&self, x: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
        Ok(self.e_step(x)?.1)
    }

    /// Mean log-likelihood per sample (scikit-learn's `score`).
    pub fn score(&self, x: ArrayView2<'_, f64>) -> Result<f64> {
        Ok(self.score_samples(x)?.mean().expect("checked non-empty"))
    }

    /// Bayesian information criterion: `-2 N score + n_parameters ln N` (lower is better).
    pub fn bic(&self, x: ArrayView2<'_, f64>) -> Result<f64> {
        let n = x.nrows() as f64;
        Ok(-2.0 * self.score(x)? * n + self.n_parameters() as f64 * n.ln())
    }

    /// Akaike information criterion: `-2 N score + 2 n_parameters`.
    pub fn aic(&self, x: ArrayView2<'_, f64>) -> Result<f64> {
        let n = x.nrows() as f64;
        Ok(-2.0 * self.score(x)? * n + 2.0 * self.n_parameters() as f64)
    }
}

/// Row-wise argmax (the first of equal maxima).
fn argmax_rows(m: &Array2<f64>) -> Array1<usize> {
    m.outer_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv {
                        (i, v)
                    } else {
                        (bi, bv)
                    }
                })
                .0
        })
        .collect()
}
