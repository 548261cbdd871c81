//! ECM for the Student-t mixture, the `nu` update, the Student-t log density and latent
//! weights (prediction is [`crate::mixture`]'s).

use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};

use super::special::{digamma, ln_gamma, tetragamma, trigamma};
use super::{NuPolicy, ScaleUpdate, StudentMixture, StudentParams, StudentT};
use crate::components::{m_step, Components, Divisor};
use crate::data::check_data_dim;
use crate::error::{invalid, MixtureError, Result};
use crate::estep::{self, Device};
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
        if gmm.n_components() != self.gmm.k {
            return Err(invalid(
                "k",
                format!(
                    "the Gaussian mixture has {} components, the parameters say {}",
                    gmm.n_components(),
                    self.gmm.k
                ),
            ));
        }
        if gmm.covariance_type() != self.gmm.covariance_type {
            return Err(invalid(
                "covariance_type",
                format!(
                    "the Gaussian mixture is {:?}, the parameters say {:?}",
                    gmm.covariance_type(),
                    self.gmm.covariance_type
                ),
            ));
        }
        let nu0 = match self.nu {
            NuPolicy::Fixed(v) => v,
            _ => self.nu_init,
        };
        self.fit_from_parts(gmm.comps.clone(), Array1::from_elem(self.gmm.k, nu0), x)
    }

    /// Refine a fitted Student-t mixture (a warm start, e.g. for a memory bank).
    pub fn fit_from_student(
        &self,
        prev: &StudentMixture,
        x: ArrayView2<'_, f64>,
    ) -> Result<StudentMixture> {
        self.check()?;
        if prev.n_components() != self.gmm.k || prev.covariance_type() != self.gmm.covariance_type {
            return Err(invalid(
                "k",
                "the previous Student-t mixture has a different k or scale type",
            ));
        }
        let nu = match self.nu {
            NuPolicy::Fixed(v) => Array1::from_elem(self.gmm.k, v),
            _ => prev.nu().clone(),
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
            let (log_resp, per_sample, u) = e_step(&comps, &nu, x, self.gmm.device)?;
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
                self.gmm.covariance_type,
                self.gmm.reg_covar,
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
            density: StudentT {
                nu,
                policy: self.nu,
            },
            device: self.gmm.device,
            comps,
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

/// `(k, delta) -> log w_k + log t(x | mu_k, scale_k, nu_k)` at squared Mahalanobis distance
/// `delta`, for the components' `log det P_k`.
pub(super) fn log_density<'a>(
    nu: &'a Array1<f64>,
    weights: &Array1<f64>,
    log_det: &Array1<f64>,
    n_features: usize,
) -> impl Fn(usize, f64) -> f64 + Sync + 'a {
    let d = n_features as f64;
    let consts: Vec<f64> = nu
        .iter()
        .zip(log_det)
        .map(|(&v, &ld)| {
            ln_gamma(0.5 * (v + d))
                - ln_gamma(0.5 * v)
                - 0.5 * d * (v.ln() + std::f64::consts::PI.ln())
                + ld
        })
        .collect();
    let lw = weights.mapv(|w| w.max(MIN_LOG_WEIGHT).ln());
    move |k: usize, delta: f64| consts[k] - 0.5 * (nu[k] + d) * (delta / nu[k]).ln_1p() + lw[k]
}

/// Latent precision weights `E[u_nk] = (nu_k + D) / (nu_k + delta_nk)` from squared
/// Mahalanobis distances `N x K` (0 where a pair was pruned, `delta = +inf`).
fn latent_weights(maha: &Array2<f64>, nu: &Array1<f64>, d: f64) -> Array2<f64> {
    let mut u = Array2::<f64>::zeros(maha.raw_dim());
    Zip::from(maha.rows())
        .and(u.rows_mut())
        .par_for_each(|m, mut uu| {
            for k in 0..m.len() {
                uu[k] = (nu[k] + d) / (nu[k] + m[k]);
            }
        });
    u
}

/// E-step inside a fit: log responsibilities, per-sample log-likelihoods and `E[u]`. Pairs
/// that provably cannot matter have responsibility 0 and `E[u] = 0` (see [`crate::pruned`]).
fn e_step(
    comps: &Components,
    nu: &Array1<f64>,
    x: ArrayView2<'_, f64>,
    device: Device,
) -> Result<(Array2<f64>, Array1<f64>, Array2<f64>)> {
    let d = comps.n_features();
    let density = log_density(nu, &comps.weights, &comps.log_det, d);
    let mut lp = estep::distances(comps, x, device, true, &density)?;
    let u = latent_weights(&lp, nu, d as f64);
    estep::apply_log_density(&mut lp, &density);
    let lpn = estep::normalize_log_resp(&mut lp);
    Ok((lp, lpn, u))
}

impl StudentMixture {
    /// Latent precision weights `E[u_nk] = (nu_k + D) / (nu_k + delta_nk)`, `N x K`: small
    /// for samples far out in a component's tail.
    pub fn latent_weights(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let x = check_data_dim(x, self.n_features())?;
        let maha = estep::sq_mahalanobis(&self.comps, x.view(), self.device)?;
        Ok(latent_weights(&maha, self.nu(), self.n_features() as f64))
    }
}
