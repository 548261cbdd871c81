//! Checked hyperparameters for [`GaussianMixture`](super::GaussianMixture).

use ndarray::{Array1, Array2};

use crate::components::{CovarianceType, Covariances};
use crate::error::{check_em, check_k, invalid, Result};
use crate::estep::Device;

/// How EM's starting point is chosen (scikit-learn's `init_params`, plus given parameters).
#[derive(Clone, Debug, PartialEq)]
pub enum InitMethod {
    /// k-means (k-means++ seeds, Lloyd iterations), hard assignments: scikit-learn's default.
    KMeans,
    /// k-means++ centres only, hard assignments to the nearest.
    KMeansPlusPlus,
    /// Uniform random responsibilities.
    Random,
    /// `k` random samples, one per component.
    RandomFromData,
    /// Start from these parameters (warm start; scikit-learn's `*_init`). `n_init` is ignored.
    Params {
        /// `K` mixture weights summing to one.
        weights: Array1<f64>,
        /// `K x D` means.
        means: Array2<f64>,
        /// Covariances of the configured type.
        covariances: Covariances,
    },
}

/// Hyperparameters of a Gaussian mixture fit. Build with
/// [`GaussianMixture::params`](super::GaussianMixture::params); every setter consumes and
/// returns the builder, and [`GmmParams::check`] runs before any work in
/// [`fit`](GmmParams::fit).
#[derive(Clone, Debug, PartialEq)]
pub struct GmmParams {
    pub(crate) k: usize,
    pub(crate) covariance_type: CovarianceType,
    pub(crate) reg_covar: f64,
    pub(crate) tol: f64,
    pub(crate) max_iter: usize,
    pub(crate) n_init: usize,
    pub(crate) init_method: InitMethod,
    pub(crate) seed: u64,
    pub(crate) device: Device,
}

impl GmmParams {
    /// All defaults live here (scikit-learn's, except a fixed seed so runs reproduce).
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            covariance_type: CovarianceType::Full,
            reg_covar: 1e-6,
            tol: 1e-3,
            max_iter: 100,
            n_init: 1,
            init_method: InitMethod::KMeans,
            seed: 42,
            device: Device::Cpu,
        }
    }

    /// Covariance shape (default [`CovarianceType::Full`]).
    pub fn covariance_type(mut self, t: CovarianceType) -> Self {
        self.covariance_type = t;
        self
    }

    /// Added to covariance diagonals so they stay positive definite (default 1e-6, >= 0).
    pub fn reg_covar(mut self, r: f64) -> Self {
        self.reg_covar = r;
        self
    }

    /// Convergence threshold on the change of the mean log-likelihood (default 1e-3, >= 0).
    pub fn tol(mut self, t: f64) -> Self {
        self.tol = t;
        self
    }

    /// EM iterations per initialisation (default 100, >= 1).
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }

    /// Initialisations; the best lower bound wins (default 1, >= 1).
    pub fn n_init(mut self, n: usize) -> Self {
        self.n_init = n;
        self
    }

    /// Starting point (default [`InitMethod::KMeans`]).
    pub fn init_method(mut self, m: InitMethod) -> Self {
        self.init_method = m;
        self
    }

    /// Seed of the initialisation RNG (default 42); initialisation `i` uses `seed + i`.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }

    /// Where the E-step's distances are computed (default [`Device::Cpu`]).
    pub fn device(mut self, d: Device) -> Self {
        self.device = d;
        self
    }

    /// Number of components.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Reject out-of-range values with a message. Data-dependent checks (shape of given
    /// initial parameters, finiteness of `x`) happen at the start of `fit`.
    pub fn check(&self) -> Result<()> {
        check_k(self.k)?;
        check_em(self.reg_covar, self.tol, self.max_iter)?;
        if self.n_init == 0 {
            return Err(invalid("n_init", "must be at least 1"));
        }
        Ok(())
    }
}
