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

use ndarray::Array1;

use crate::components::Covariances;
use crate::error::{check_fixed_nu, Result};
use crate::gaussian::GaussianMixture;
use crate::mixture::{sealed, Density, Mixture};

/// The Student-t component density `t(x | mu_k, scale_k, nu_k)`, with its degrees of freedom.
#[derive(Clone, Debug, PartialEq)]
pub struct StudentT {
    /// Degrees of freedom per component, `K`.
    pub(crate) nu: Array1<f64>,
    /// How `nu` was fitted (it decides how many free parameters `nu` adds).
    pub(crate) policy: NuPolicy,
}

impl sealed::Sealed for StudentT {
    fn log_density<'a>(
        &'a self,
        weights: &'a Array1<f64>,
        log_det: &'a Array1<f64>,
        n_features: usize,
    ) -> impl Fn(usize, f64) -> f64 + Sync + 'a {
        algorithm::log_density(&self.nu, weights, log_det, n_features)
    }

    fn extra_parameters(&self, n_components: usize) -> usize {
        match self.policy {
            NuPolicy::Fixed(_) => 0,
            NuPolicy::Shared => 1,
            NuPolicy::PerComponent => n_components,
        }
    }
}

impl Density for StudentT {}

/// A fitted Student-t mixture. Build with [`StudentMixture::params`] then
/// [`StudentParams::fit`] or [`StudentParams::fit_from`], or from a Gaussian fit with
/// [`StudentMixture::from_gaussian`]. The accessors, `predict`, `score`, `bic` and the rest
/// are [`Mixture`]'s.
pub type StudentMixture = Mixture<StudentT>;

impl Mixture<StudentT> {
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
        let density = StudentT {
            nu: Array1::from_elem(gmm.n_components(), nu),
            policy: NuPolicy::Fixed(nu),
        };
        Ok(Self::unfitted(density, gmm.comps.clone()).with_device(gmm.device))
    }

    /// Component scale matrices (regularised by `reg_covar`). The covariance of component
    /// `k` is `nu_k / (nu_k - 2)` times its scale when `nu_k > 2`.
    pub fn scales(&self) -> &Covariances {
        &self.comps.covariances
    }

    /// Degrees of freedom per component, `K` (all equal unless learned per component).
    pub fn nu(&self) -> &Array1<f64> {
        &self.density.nu
    }
}
