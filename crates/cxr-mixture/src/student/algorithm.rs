//! ECM for the Student-t mixture, the `nu` update, and prediction.

use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};

use super::special::{digamma, ln_gamma, tetragamma, trigamma};
use super::{NuPolicy, ScaleUpdate, StudentMixture, StudentParams};
use crate::components::{argmax_rows, m_step, normalize_log_resp, Components, Divisor};
use crate::data::check_data_dim;
use crate::device::Device;
use crate::error::{invalid, MixtureError, Result};
use crate::gaussian::GaussianMixture;

/// `studenttmixture` clips weights at this before taking logs.
const MIN_LOG_WEIGHT: f64 = 1e-12;

impl StudentParams {
    /// Fit a Gaussian mixture with this builder's initialisation parameters, then refine it.
    pub fn fit(&self, x: ArrayView2<'_, f64>) -> Result<StudentMixture> {
        self.check()?;
        let gmm = self.gmm.fit(x)?;
        self.fit_from(&gmm, x)
    }

    /// Refine a fitted Gaussian mixture: its weights, means and covariances become the
    /// starting weights, locations and scales; `nu` starts at the fixed value or `nu_init`.
    pub fn fit_from(
        &self,
        gmm: &GaussianMixture,
        x: ArrayView2<'_, f64>,
    ) -> Result<StudentMixture> {
        self.check()?;
        if gmm.n_components() != self.k {
            return Err(invalid(
                "k",
                format!(
                    "the Gaussian mixture has {} components, the parameters say {}",
                    gmm.n_components(),
                    self.k
                ),
            ));
        }
        if gmm.covariance_type() != self.covariance_type {
            return Err(invalid(
                "covariance_type",
                format!(
                    "the Gaussian mixture is {:?}, the parameters say {:?}",
                    gmm.covariance_type(),
                    self.covariance_type
                ),
            ));
        }
        let nu0 = match self.nu {
            NuPolicy::Fixed(v) => v,
            _ => self.nu_init,
        };
        self.fit_from_parts(gmm.comps.clone(), Array1::from_elem(self.k, nu0), x)
    }

    /// Refine a fitted Student-t mixture (a warm start, e.g. for a memory bank).
    pub fn fit_from_student(
        &self,
        prev: &StudentMixture,
        x: ArrayView2<'_, f64>,
    ) -> Result<StudentMixture> {
        self.check()?;
        if prev.n_components() != self.k || prev.covariance_type() != self.covariance_type {
            return Err(invalid(
                "k",
                "the previous Student-t mixture has a different k or scale type",
            ));
        }
        let nu = match self.nu {
            NuPolicy::Fixed(v) => Array1::from_elem(self.k, v),
            _ => prev.nu.clone(),
        };
        self.fit_from_parts(prev.comps.clone(), nu, x)
    }

    pub(crate) fn fit_from_parts(
        &self,
        mut comps: Components,
        mut nu: Array1<f64>,
        x: ArrayView2<'_, f64>,
    ) -> Result<StudentMixture> {
        let x = check_data_dim(x, comps.n_features())?;
        let x = x.view();
        let d = x.ncols() as f64;
        let divisor = match self.scale_update {
            ScaleUpdate::StudentTMixturePackage => Divisor::WeightSum,
            ScaleUpdate::McLachlanPeel => Divisor::RespSum,
        };
        let nu_tol = match self.scale_update {
            ScaleUpdate::StudentTMixturePackage => 1e-3,
            ScaleUpdate::McLachlanPeel => 1e-10,
        };
        let mut history = Vec::with_capacity(self.max_iter);
        let mut lower_bound = f64::NEG_INFINITY;
        let mut converged = false;
        let mut n_iter = 0;
        for iter in 1..=self.max_iter {
            let (log_resp, per_sample, u) = e_step(&comps, &nu, x, self.gmm.device, true)?;
            let current = per_sample.mean().expect("n >= 1");
            if !current.is_finite() {
                return Err(MixtureError::Diverged { iteration: iter });
            }
            let mut resp = log_resp;
            resp.par_mapv_inplace(f64::exp);
            let ms = m_step(
                x,
                &resp,
                Some(&u),
                self.covariance_type,
                self.reg_covar,
                divisor,
                per_sample.as_slice().expect("fresh array"),
            );
            let weights = &ms.mass / ms.mass.sum();
            comps = Components::new(weights, ms.means, ms.covariances)?;
            if !matches!(self.nu, NuPolicy::Fixed(_)) {
                nu = self.update_nu(&resp, &u, &nu, d, nu_tol);
            }
            history.push(current);
            n_iter = iter;
            if (current - lower_bound).abs() < self.tol {
                converged = true;
                break;
            }
            lower_bound = current;
        }
        if !converged {
            tracing::warn!(
                n_iter,
                "Student-t mixture did not converge: raise max_iter or tol"
            );
        }
        Ok(StudentMixture {
            device: self.gmm.device,
            comps,
            nu,
            nu_policy: self.nu,
            converged,
            n_iter,
            lower_bound_history: history,
        })
    }

    /// ECM update of `nu`: the root of
    /// `1 + c - psi(nu/2) + ln(nu/2) = 0` with
    /// `c = sum_n r_nk (ln u_nk - u_nk) / sum_n r_nk + psi((nu_old + D)/2) - ln((nu_old + D)/2)`
    /// (pooled over components for [`NuPolicy::Shared`]), by scipy's Halley iteration from the
    /// old value, then clamped into the bounds (a NaN result keeps the old value).
    fn update_nu(
        &self,
        resp: &Array2<f64>,
        u: &Array2<f64>,
        nu: &Array1<f64>,
        d: f64,
        tol: f64,
    ) -> Array1<f64> {
        let k_n = nu.len();
        let mut num = Array1::<f64>::zeros(k_n);
        Zip::from(resp.rows()).and(u.rows()).for_each(|r, uu| {
            for k in 0..k_n {
                // Pruned pairs have r = 0 and u = 0 (ln u = -inf): they add nothing.
                if r[k] > 0.0 {
                    num[k] += r[k] * (uu[k].ln() - uu[k]);
                }
            }
        });
        let rsum = resp.sum_axis(Axis(0));
        let (lo, hi) = self.nu_bounds;
        let solve = |c: f64, start: f64| {
            let root = halley_nu(c, start, tol, self.max_iter);
            let v = if root.is_nan() { start } else { root };
            v.clamp(lo, hi)
        };
        match self.nu {
            NuPolicy::Fixed(_) => nu.clone(),
            NuPolicy::PerComponent => Array1::from_shape_fn(k_n, |k| {
                let h = 0.5 * (nu[k] + d);
                let c = 1.0 + num[k] / rsum[k] + digamma(h) - h.ln();
                solve(c, nu[k])
            }),
            NuPolicy::Shared => {
                let h = 0.5 * (nu[0] + d);
                let c = 1.0 + num.sum() / rsum.sum() + digamma(h) - h.ln();
                Array1::from_elem(k_n, solve(c, nu[0]))
            }
        }
    }
}

/// scipy.optimize.newton with `fprime2` (Halley) on `f(nu) = c - psi(nu/2) + ln(nu/2)`,
/// reproduced step for step (absolute tolerance, `maxiter`, the `|adj| < 1` guard).
fn halley_nu(c: f64, x0: f64, tol: f64, maxiter: usize) -> f64 {
    let f = |v: f64| c - digamma(0.5 * v) + (0.5 * v.max(1e-9)).ln();
    let f1 = |v: f64| -0.5 * trigamma(0.5 * v) + 1.0 / v;
    let f2 = |v: f64| -0.25 * tetragamma(0.5 * v) - 1.0 / (v * v);
    let mut p0 = x0;
    let mut p = x0;
    for _ in 0..maxiter {
        let fval = f(p0);
        if fval == 0.0 {
            return p0;
        }
        let fder = f1(p0);
        if fder == 0.0 {
            return p0;
        }
        let mut step = fval / fder;
        let adj = step * f2(p0) / fder / 2.0;
        if adj.abs() < 1.0 {
            step /= 1.0 - adj;
        }
        p = p0 - step;
        if (p - p0).abs() <= tol {
            return p;
        }
        p0 = p;
    }
    p
}

/// Weighted Student-t log densities `log w_k + log t(x | ...)`, `N x K`, and the latent
/// weights `E[u]`. With `prune` (inside a fit), pairs that provably cannot matter have log
/// density `-inf` and `E[u] = 0` (see [`crate::pruned`]).
fn log_student(
    comps: &Components,
    nu: &Array1<f64>,
    x: ArrayView2<'_, f64>,
    device: Device,
    prune: bool,
) -> Result<(Array2<f64>, Array2<f64>)> {
    let d = comps.n_features() as f64;
    let consts: Vec<f64> = nu
        .iter()
        .zip(&comps.log_det)
        .map(|(&v, &ld)| {
            ln_gamma(0.5 * (v + d))
                - ln_gamma(0.5 * v)
                - 0.5 * d * (v.ln() + std::f64::consts::PI.ln())
                + ld
        })
        .collect();
    let lw = comps.weights.mapv(|w| w.max(MIN_LOG_WEIGHT).ln());
    let density =
        |k: usize, delta: f64| consts[k] - 0.5 * (nu[k] + d) * (delta / nu[k]).ln_1p() + lw[k];
    let mut maha = if prune {
        comps.sq_mahalanobis_fit(x, device, density)?
    } else {
        comps.sq_mahalanobis_on(x, device)?
    };
    let mut u = Array2::<f64>::zeros(maha.raw_dim());
    Zip::from(maha.rows_mut())
        .and(u.rows_mut())
        .par_for_each(|mut m, mut uu| {
            for k in 0..m.len() {
                let delta = m[k];
                uu[k] = (nu[k] + d) / (nu[k] + delta);
                m[k] = density(k, delta);
            }
        });
    Ok((maha, u))
}

/// E-step: log responsibilities, per-sample log-likelihoods and `E[u]`.
fn e_step(
    comps: &Components,
    nu: &Array1<f64>,
    x: ArrayView2<'_, f64>,
    device: Device,
    prune: bool,
) -> Result<(Array2<f64>, Array1<f64>, Array2<f64>)> {
    let (mut lp, u) = log_student(comps, nu, x, device, prune)?;
    let lpn = normalize_log_resp(&mut lp);
    Ok((lp, lpn, u))
}

impl StudentMixture {
    /// Hard labels: the component with the highest posterior.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Array1<usize>> {
        let x = check_data_dim(x, self.n_features())?;
        Ok(argmax_rows(
            &e_step(&self.comps, &self.nu, x.view(), self.device, false)?.0,
        ))
    }

    /// Posterior probabilities `N x K`.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let x = check_data_dim(x, self.n_features())?;
        Ok(e_step(&self.comps, &self.nu, x.view(), self.device, false)?
            .0
            .mapv(f64::exp))
    }

    /// Log-likelihood of each sample.
    pub fn score_samples(&self, x: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
        let x = check_data_dim(x, self.n_features())?;
        Ok(e_step(&self.comps, &self.nu, x.view(), self.device, false)?.1)
    }

    /// Mean log-likelihood per sample.
    pub fn score(&self, x: ArrayView2<'_, f64>) -> Result<f64> {
        Ok(self.score_samples(x)?.mean().expect("checked non-empty"))
    }

    /// Latent precision weights `E[u_nk] = (nu_k + D) / (nu_k + delta_nk)`, `N x K`: small
    /// for samples far out in a component's tail.
    pub fn latent_weights(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let x = check_data_dim(x, self.n_features())?;
        Ok(log_student(&self.comps, &self.nu, x.view(), self.device, false)?.1)
    }

    /// Bayesian information criterion (lower is better).
    pub fn bic(&self, x: ArrayView2<'_, f64>) -> Result<f64> {
        let n = x.nrows() as f64;
        Ok(-2.0 * self.score(x)? * n + self.n_parameters() as f64 * n.ln())
    }
}
