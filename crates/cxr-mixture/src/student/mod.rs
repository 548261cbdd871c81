//! Mixture of multivariate Student-t distributions fitted by EM/ECM, initialised from a
//! fitted Gaussian mixture ("GMM refined by a Student-t distribution", as the CXR-CML paper
//! puts it). The default M-step follows the `studenttmixture` package (J. Parkinson,
//! `EMStudentMixture`) step for step; McLachlan and Peel's update is the alternative.
//!
//! Each sample's latent precision weight `E[u_nk] = (nu_k + D) / (nu_k + delta_nk)` (with
//! `delta` the squared Mahalanobis distance) down-weights outliers in the M-step: the source
//! of the robustness to heavy tails.

mod algorithm;
mod hyperparams;
pub(crate) mod special;

pub use hyperparams::{NuPolicy, ScaleUpdate, StudentParams};

use ndarray::{Array1, Array2};

use crate::components::{Components, CovarianceType, Covariances};
use crate::device::Device;
use crate::error::{check_fixed_nu, Result};
use crate::gaussian::GaussianMixture;

/// A fitted Student-t mixture.
#[derive(Clone, Debug)]
pub struct StudentMixture {
    pub(crate) device: Device,
    pub(crate) comps: Components,
    pub(crate) nu: Array1<f64>,
    pub(crate) nu_policy: NuPolicy,
    pub(crate) converged: bool,
    pub(crate) n_iter: usize,
    pub(crate) lower_bound_history: Vec<f64>,
}

impl StudentMixture {
    /// Hyperparameters for `k` components, with defaults (see [`StudentParams`]).
    pub fn params(k: usize) -> StudentParams {
        StudentParams::new(k)
    }

    /// A Student-t mixture with a fitted Gaussian mixture's weights, means and covariances
    /// as its weights, locations and scales and `nu` fixed, without any Student-t EM: the
    /// released CXR-CML code's single pass of Student-t log densities with the GMM's
    /// parameters (there `nu = 8`). The paper's refinement is [`StudentParams::fit_from`].
    pub fn from_gaussian(gmm: &GaussianMixture, nu: f64) -> Result<Self> {
        check_fixed_nu(nu)?;
        Ok(Self {
            device: gmm.device,
            comps: gmm.comps.clone(),
            nu: Array1::from_elem(gmm.n_components(), nu),
            nu_policy: NuPolicy::Fixed(nu),
            converged: false,
            n_iter: 0,
            lower_bound_history: Vec::new(),
        })
    }

    /// Mixture weights, `K`.
    pub fn weights(&self) -> &Array1<f64> {
        &self.comps.weights
    }

    /// Component locations, `K x D`.
    pub fn means(&self) -> &Array2<f64> {
        &self.comps.means
    }

    /// Component scale matrices (regularised by `reg_covar`). The covariance of component
    /// `k` is `nu_k / (nu_k - 2)` times its scale when `nu_k > 2`.
    pub fn scales(&self) -> &Covariances {
        &self.comps.covariances
    }

    /// Degrees of freedom per component, `K` (all equal unless learned per component).
    pub fn nu(&self) -> &Array1<f64> {
        &self.nu
    }

    /// The scale type.
    pub fn covariance_type(&self) -> CovarianceType {
        self.comps.covariances.covariance_type()
    }

    /// Whether the change in mean log-likelihood fell below `tol`.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// EM iterations run.
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }

    /// Mean log-likelihood per sample at each iteration, evaluated before its M-step.
    pub fn lower_bound_history(&self) -> &[f64] {
        &self.lower_bound_history
    }

    /// The last entry of the history (`-inf` if none).
    pub fn lower_bound(&self) -> f64 {
        self.lower_bound_history
            .last()
            .copied()
            .unwrap_or(f64::NEG_INFINITY)
    }

    /// Number of components.
    pub fn n_components(&self) -> usize {
        self.comps.n_components()
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.comps.n_features()
    }

    /// Free parameters: the Gaussian count plus the learned `nu`s.
    pub fn n_parameters(&self) -> usize {
        let nu = match self.nu_policy {
            NuPolicy::Fixed(_) => 0,
            NuPolicy::Shared => 1,
            NuPolicy::PerComponent => self.n_components(),
        };
        self.comps.n_parameters() + nu
    }
}
