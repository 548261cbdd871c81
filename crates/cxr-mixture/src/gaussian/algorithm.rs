//! EM for the Gaussian mixture (prediction is [`crate::mixture`]'s).

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Gaussian, GaussianMixture, GmmParams, InitMethod};
use crate::components::{m_step, Components, CovarianceType, Divisor};
use crate::data::check_data;
use crate::error::{MixtureError, Result};
use crate::estep::{self, Device};
use crate::init;
use crate::mixture::sealed::Sealed;

/// One EM run's result.
struct Run {
    comps: Components,
    converged: bool,
    n_iter: usize,
    history: Vec<f64>,
}

impl GmmParams {
    /// Fit by EM: `n_init` initialisations (one with [`InitMethod::Params`]), each for at most
    /// `max_iter` iterations or until the mean log-likelihood changes by less than `tol`;
    /// the run with the highest final lower bound is kept.
    ///
    /// Degenerate input: `N < K` fits (some components duplicate others, with a warning);
    /// `D > N` and duplicated points give finite results thanks to `reg_covar` (with
    /// `reg_covar = 0` they fail with [`MixtureError::NotPositiveDefinite`]).
    pub fn fit(&self, x: ArrayView2<'_, f64>) -> Result<GaussianMixture> {
        self.check()?;
        let x = check_data(x)?;
        let x = x.view();
        let (n, _) = x.dim();
        if n < self.k {
            tracing::warn!(
                n_samples = n,
                k = self.k,
                "fewer samples than components: some components will duplicate others"
            );
        }
        let runs = if matches!(self.init_method, InitMethod::Params { .. }) {
            1
        } else {
            self.n_init
        };
        let mut best: Option<Run> = None;
        for i in 0..runs {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed.wrapping_add(i as u64));
            let comps = self.initialize(x, &mut rng)?;
            let run = self.em(x, comps)?;
            let better = match &best {
                None => true,
                Some(b) => run.history.last() > b.history.last(),
            };
            if better {
                best = Some(run);
            }
        }
        let best = best.expect("n_init >= 1");
        if !best.converged {
            tracing::warn!(
                n_iter = best.n_iter,
                "Gaussian mixture did not converge: raise max_iter or tol, or check the data"
            );
        }
        Ok(GaussianMixture {
            density: Gaussian,
            device: self.device,
            comps: best.comps,
            converged: best.converged,
            n_iter: best.n_iter,
            lower_bound_history: best.history,
        })
    }

    /// Initial parameters: an M-step on the initial responsibilities (scikit-learn's
    /// `_initialize`), or the given parameters.
    pub(crate) fn initialize(
        &self,
        x: ArrayView2<'_, f64>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Components> {
        let (n, d) = x.dim();
        let k = self.k;
        let resp = match &self.init_method {
            InitMethod::Params {
                weights,
                means,
                covariances,
            } => {
                return Components::from_init(
                    weights,
                    means,
                    covariances,
                    k,
                    d,
                    self.covariance_type,
                );
            }
            InitMethod::KMeans => init::one_hot(&init::kmeans_labels(x, k, rng), k),
            InitMethod::KMeansPlusPlus => {
                let centers = init::kmeans_plus_plus(x, k, rng);
                init::one_hot(&init::nearest_labels(x, &centers), k)
            }
            InitMethod::Random => init::random_resp(n, k, rng),
            InitMethod::RandomFromData => init::random_from_data_resp(n, k, rng),
        };
        // Far-from-the-centre samples seed empty components first.
        let mean = x.mean_axis(Axis(0)).expect("n >= 1");
        let scores: Vec<f64> = x
            .outer_iter()
            .map(|r| -(&r - &mean).mapv(|v| v * v).sum())
            .collect();
        components_from_resp(x, &resp, self.covariance_type, self.reg_covar, &scores)
    }

    fn em(&self, x: ArrayView2<'_, f64>, mut comps: Components) -> Result<Run> {
        let mut history = Vec::with_capacity(self.max_iter);
        let mut lower_bound = f64::NEG_INFINITY;
        let mut converged = false;
        let mut n_iter = 0;
        for iter in 1..=self.max_iter {
            let prev = lower_bound;
            let (log_resp, per_sample) = e_step(&comps, x, self.device)?;
            lower_bound = per_sample.mean().expect("n >= 1");
            if !lower_bound.is_finite() {
                return Err(MixtureError::Diverged { iteration: iter });
            }
            let mut resp = log_resp;
            resp.par_mapv_inplace(f64::exp);
            comps = components_from_resp(
                x,
                &resp,
                self.covariance_type,
                self.reg_covar,
                per_sample.as_slice().expect("fresh array"),
            )?;
            history.push(lower_bound);
            n_iter = iter;
            if (lower_bound - prev).abs() < self.tol {
                converged = true;
                break;
            }
        }
        Ok(Run {
            comps,
            converged,
            n_iter,
            history,
        })
    }
}

/// M-step: weights, means and covariances from responsibilities.
pub(crate) fn components_from_resp(
    x: ArrayView2<'_, f64>,
    resp: &Array2<f64>,
    cov_type: CovarianceType,
    reg_covar: f64,
    scores: &[f64],
) -> Result<Components> {
    let ms = m_step(
        x,
        resp,
        None,
        cov_type,
        reg_covar,
        Divisor::WeightSum,
        scores,
    );
    let weights = &ms.mass / ms.mass.sum();
    Components::new(weights, ms.means, ms.covariances)
}

/// E-step inside a fit: log responsibilities and per-sample log-likelihoods, with
/// responsibilities below `exp(-80)` possibly exactly 0 (see [`crate::pruned`]).
fn e_step(
    comps: &Components,
    x: ArrayView2<'_, f64>,
    device: Device,
) -> Result<(Array2<f64>, Array1<f64>)> {
    let density = Gaussian.log_density(&comps.weights, &comps.log_det, comps.n_features());
    estep::e_step(comps, x, device, true, &density)
}
