//! Checked hyperparameters for [`StudentMixture`](super::StudentMixture).

use crate::components::CovarianceType;
use crate::error::{check_em, check_fixed_nu, check_k, invalid, Result};
use crate::gaussian::{GaussianMixture, GmmParams};

/// How the degrees of freedom `nu` are treated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NuPolicy {
    /// Fixed at this value (> 0), never updated: the paper's `nu = 6`.
    Fixed(f64),
    /// One `nu` for all components, learned by the ECM update.
    Shared,
    /// One `nu` per component, each learned by the ECM update (`studenttmixture`'s
    /// `fixed_df = False`).
    PerComponent,
}

/// Which M-step updates the scale matrices. Both reach the same maximum-likelihood fixed point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScaleUpdate {
    /// `sum r u (x - mu)(x - mu)^T / sum r u` (Kent, Tyler and Vardi's faster-converging
    /// variant), as the `studenttmixture` package does; its `nu` solve stops at the package's
    /// Halley tolerance of 1e-3 so that fits agree step by step.
    #[default]
    StudentTMixturePackage,
    /// `sum r u (x - mu)(x - mu)^T / sum r` (McLachlan and Peel, 2000, ch. 7), with `nu`
    /// solved to 1e-10.
    McLachlanPeel,
}

/// Hyperparameters of a Student-t mixture fit. Build with
/// [`StudentMixture::params`](super::StudentMixture::params). The number of components, the
/// scale type and `reg_covar` are those of the Gaussian initialisation's parameters, which
/// hold them for both fits.
#[derive(Clone, Debug, PartialEq)]
pub struct StudentParams {
    pub(crate) nu: NuPolicy,
    pub(crate) nu_init: f64,
    pub(crate) nu_bounds: (f64, f64),
    pub(crate) tol: f64,
    pub(crate) max_iter: usize,
    pub(crate) scale_update: ScaleUpdate,
    /// The Gaussian initialisation's parameters; also the source of `k`, the covariance type
    /// and `reg_covar`.
    pub(crate) gmm: GmmParams,
    /// Set by [`gmm_params`](Self::gmm_params) when the replacement's `k`, covariance type or
    /// `reg_covar` differed from this builder's; reported by [`check`](Self::check).
    pub(crate) gmm_mismatch: Option<String>,
}

impl StudentParams {
    /// All defaults live here: `nu` fixed at 6 (the paper's best), `tol = 1e-3` on the mean
    /// log-likelihood, 100 iterations, the package's scale update, learned `nu` starting at 6
    /// within `[1, 1000]`; the Gaussian initialisation uses [`GaussianMixture::params`]
    /// defaults with the same `k` (so full scales and `reg_covar = 1e-6`).
    pub(crate) fn new(k: usize) -> Self {
        Self {
            nu: NuPolicy::Fixed(6.0),
            nu_init: 6.0,
            nu_bounds: (1.0, 1000.0),
            tol: 1e-3,
            max_iter: 100,
            scale_update: ScaleUpdate::default(),
            gmm: GaussianMixture::params(k),
            gmm_mismatch: None,
        }
    }

    /// Degrees-of-freedom policy (default `Fixed(6.0)`).
    pub fn nu(mut self, nu: NuPolicy) -> Self {
        self.nu = nu;
        self
    }

    /// Starting `nu` for the learned policies (default 6, > 0).
    pub fn nu_init(mut self, nu: f64) -> Self {
        self.nu_init = nu;
        self
    }

    /// Bounds that learned `nu` is clamped into (default `[1, 1000]`; `0 < lo <= hi`).
    pub fn nu_bounds(mut self, lo: f64, hi: f64) -> Self {
        self.nu_bounds = (lo, hi);
        self
    }

    /// Scale-matrix shape, also used by the Gaussian initialisation (default full).
    pub fn covariance_type(mut self, t: CovarianceType) -> Self {
        self.gmm = self.gmm.covariance_type(t);
        self
    }

    /// Added to scale diagonals (default 1e-6, >= 0), also for the Gaussian initialisation.
    pub fn reg_covar(mut self, r: f64) -> Self {
        self.gmm = self.gmm.reg_covar(r);
        self
    }

    /// Convergence threshold on the change of the mean log-likelihood (default 1e-3, >= 0).
    pub fn tol(mut self, t: f64) -> Self {
        self.tol = t;
        self
    }

    /// Maximum EM iterations (default 100, >= 1); also caps the `nu` solver's steps.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }

    /// The scale-matrix M-step (default [`ScaleUpdate::StudentTMixturePackage`]).
    pub fn scale_update(mut self, s: ScaleUpdate) -> Self {
        self.scale_update = s;
        self
    }

    /// Seed of the Gaussian initialisation (default 42).
    pub fn seed(mut self, s: u64) -> Self {
        self.gmm = self.gmm.seed(s);
        self
    }

    /// Where the E-step's distances are computed, for the Gaussian initialisation too
    /// (default [`Device::Cpu`](crate::Device::Cpu)).
    pub fn device(mut self, d: crate::Device) -> Self {
        self.gmm = self.gmm.device(d);
        self
    }

    /// Replace the Gaussian initialisation's parameters wholesale. Its `k`, covariance type
    /// and `reg_covar` must agree with this builder's as they stand when this is called (set
    /// those first); a mismatch is reported at fit.
    pub fn gmm_params(mut self, p: GmmParams) -> Self {
        if p.k != self.gmm.k
            || p.covariance_type != self.gmm.covariance_type
            || p.reg_covar != self.gmm.reg_covar
        {
            self.gmm_mismatch = Some(format!(
                "the Gaussian initialisation must have the same k, covariance_type and \
                 reg_covar: got ({}, {:?}, {}), this builder has ({}, {:?}, {})",
                p.k,
                p.covariance_type,
                p.reg_covar,
                self.gmm.k,
                self.gmm.covariance_type,
                self.gmm.reg_covar
            ));
        }
        self.gmm = p;
        self
    }

    /// Number of components.
    pub fn k(&self) -> usize {
        self.gmm.k
    }

    /// Reject out-of-range values with a message, before any work.
    pub fn check(&self) -> Result<()> {
        check_k(self.gmm.k)?;
        if let NuPolicy::Fixed(nu) = self.nu {
            check_fixed_nu(nu)?;
        }
        if !(self.nu_init > 0.0 && self.nu_init.is_finite()) {
            return Err(invalid(
                "nu_init",
                format!("must be finite and > 0, got {}", self.nu_init),
            ));
        }
        let (lo, hi) = self.nu_bounds;
        if !(lo > 0.0 && lo <= hi && hi.is_finite()) {
            return Err(invalid(
                "nu_bounds",
                format!("need 0 < lo <= hi < inf, got ({lo}, {hi})"),
            ));
        }
        check_em(self.gmm.reg_covar, self.tol, self.max_iter)?;
        self.gmm.check()?;
        if let Some(reason) = &self.gmm_mismatch {
            return Err(invalid("gmm_params", reason.clone()));
        }
        Ok(())
    }
}
