//! Pseudo-labels for training: which embeddings a mixture is fitted on at each step, and the
//! hard cluster labels it assigns to the current batch.
//!
//! The paper clusters with K = 40 but trains with batches of 32, so a per-batch fit has more
//! components than points (the released code silently drops to K = 5). The default here is a
//! memory bank of recent embeddings, refitted at every step from the previous parameters.

use std::collections::VecDeque;

mod state;
pub use state::{LabelerState, MixtureState};

use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::components::{Components, CovarianceType};
use crate::data::check_data;
use crate::error::{check_fixed_nu, invalid, MixtureError, Result};
use crate::estep::Device;
use crate::gaussian::{GaussianMixture, GmmParams, InitMethod};
use crate::student::{NuPolicy, StudentMixture, StudentParams};

/// What the mixture is fitted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PseudoLabelSource {
    /// A fresh fit on each batch alone; K is clipped to the batch size (warned once).
    PerBatch,
    /// A FIFO bank of the most recent `capacity` embeddings; each step pushes the batch,
    /// refits warm-started from the previous parameters, then labels the batch.
    MemoryBank {
        /// Embeddings kept (>= 1).
        capacity: usize,
    },
    /// One fit per epoch from [`PseudoLabeler::refit_epoch`] on all training embeddings; until
    /// the first refit, a memory bank of [`PseudoLabelConfig::epoch_bootstrap_capacity`]
    /// embeddings serves.
    Epoch,
}

/// The default memory-bank size of [`PseudoLabelSource::Epoch`] before its first epoch-level
/// refit ([`PseudoLabelConfig::epoch_bootstrap_capacity`]).
pub const EPOCH_BOOTSTRAP_CAPACITY: usize = 4096;

impl Default for PseudoLabelSource {
    fn default() -> Self {
        PseudoLabelSource::MemoryBank { capacity: 4096 }
    }
}

/// How many components a fit on `n` embeddings gets. In configuration files: `"fixed"` or
/// `"released-code"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentRule {
    /// The configured `k`, clipped to `n` (warned once).
    #[default]
    Fixed,
    /// The released CXR-CML code's per-batch rule: `min(5, n / 3)` below 50 embeddings, else
    /// `min(k, n / 4)` (its `k` is 40); at least 1. Five clusters at batch 32.
    ReleasedCode,
}

impl ComponentRule {
    /// Components for a fit on `n >= 1` embeddings with the configured `k`.
    pub fn components(self, k: usize, n: usize) -> usize {
        let k = match self {
            ComponentRule::Fixed => k.min(n),
            ComponentRule::ReleasedCode if n < 50 => 5.min(n / 3),
            ComponentRule::ReleasedCode => k.min(n / 4),
        };
        k.max(1)
    }
}

/// Which mixture assigns the labels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MixtureKind {
    /// Gaussian mixture alone.
    Gaussian,
    /// Gaussian mixture refined by a Student-t mixture (the paper's method).
    StudentT {
        /// Degrees-of-freedom policy.
        nu: NuPolicy,
    },
    /// A Gaussian mixture whose parameters score Student-t densities with this fixed `nu`,
    /// without Student-t EM: the released CXR-CML code (`nu = 8`), see
    /// [`StudentMixture::from_gaussian`].
    StudentTOnePass {
        /// Degrees of freedom (> 0).
        nu: f64,
    },
}

impl Default for MixtureKind {
    fn default() -> Self {
        MixtureKind::StudentT {
            nu: NuPolicy::Fixed(6.0),
        }
    }
}

/// Pseudo-label settings, checked by [`PseudoLabelConfig::check`] (called by
/// [`PseudoLabeler::new`]) before any fit.
#[derive(Clone, Debug, PartialEq)]
pub struct PseudoLabelConfig {
    /// Embeddings the mixture sees (default: a memory bank of 4096).
    pub source: PseudoLabelSource,
    /// Components (default 40, the paper's K).
    pub k: usize,
    /// How `k` adapts to the number of embeddings of a fit (default: clipped to it).
    pub k_rule: ComponentRule,
    /// Gaussian or Student-t (default Student-t with `nu = 6`, the paper's best).
    pub kind: MixtureKind,
    /// Covariance shape (default diagonal: full 512 x 512 covariances are rank-deficient from
    /// a bank of a few thousand points and cost `K D^2` per sample).
    pub covariance: CovarianceType,
    /// Added to covariance diagonals (default 1e-6).
    pub reg_covar: f64,
    /// EM iterations per fit (default 100).
    pub max_iter: usize,
    /// Convergence threshold on the mean log-likelihood (default 1e-3).
    pub tol: f64,
    /// Initialisations of each cold (not warm-started) fit (default 1).
    pub n_init: usize,
    /// Base seed; cold fit number `i` uses `seed + i` (default 42).
    pub seed: u64,
    /// Where the E-step runs (default CPU).
    pub device: Device,
    /// Memory-bank capacity of the epoch source before its first refit (default
    /// [`EPOCH_BOOTSTRAP_CAPACITY`]; `cxr-train` passes `mixture.bank_capacity`). Unused by
    /// the other sources.
    pub epoch_bootstrap_capacity: usize,
}

impl Default for PseudoLabelConfig {
    fn default() -> Self {
        Self {
            source: PseudoLabelSource::default(),
            k: 40,
            k_rule: ComponentRule::Fixed,
            kind: MixtureKind::default(),
            covariance: CovarianceType::Diag,
            reg_covar: 1e-6,
            max_iter: 100,
            tol: 1e-3,
            n_init: 1,
            seed: 42,
            device: Device::Cpu,
            epoch_bootstrap_capacity: EPOCH_BOOTSTRAP_CAPACITY,
        }
    }
}

impl PseudoLabelConfig {
    /// Reject invalid settings with a message naming the field.
    pub fn check(&self) -> Result<()> {
        if let PseudoLabelSource::MemoryBank { capacity: 0 } = self.source {
            return Err(invalid(
                "capacity",
                "the memory bank must hold at least one embedding",
            ));
        }
        if self.source == PseudoLabelSource::Epoch && self.epoch_bootstrap_capacity == 0 {
            return Err(invalid(
                "epoch_bootstrap_capacity",
                "the epoch source's bootstrap memory bank must hold at least one embedding",
            ));
        }
        self.gmm_params(self.k, 0).check()?;
        if let MixtureKind::StudentTOnePass { nu } = self.kind {
            check_fixed_nu(nu)?;
        }
        if let Some(p) = self.student_params(self.k, 0) {
            p.check()?;
        }
        Ok(())
    }

    fn gmm_params(&self, k: usize, fit_index: u64) -> GmmParams {
        GaussianMixture::params(k)
            .covariance_type(self.covariance)
            .reg_covar(self.reg_covar)
            .max_iter(self.max_iter)
            .tol(self.tol)
            .n_init(self.n_init)
            .seed(self.seed.wrapping_add(fit_index))
            .device(self.device)
    }

    fn student_params(&self, k: usize, fit_index: u64) -> Option<StudentParams> {
        match self.kind {
            MixtureKind::Gaussian | MixtureKind::StudentTOnePass { .. } => None,
            MixtureKind::StudentT { nu } => Some(
                StudentMixture::params(k)
                    .nu(nu)
                    .covariance_type(self.covariance)
                    .reg_covar(self.reg_covar)
                    .max_iter(self.max_iter)
                    .tol(self.tol)
                    .gmm_params(self.gmm_params(k, fit_index)),
            ),
        }
    }
}

/// The mixture currently assigning labels.
#[derive(Clone, Debug)]
pub enum FittedMixture {
    /// Gaussian.
    Gaussian(GaussianMixture),
    /// Student-t.
    StudentT(StudentMixture),
}

impl FittedMixture {
    /// Number of components.
    pub fn n_components(&self) -> usize {
        match self {
            FittedMixture::Gaussian(m) => m.n_components(),
            FittedMixture::StudentT(m) => m.n_components(),
        }
    }

    fn components(&self) -> &Components {
        match self {
            FittedMixture::Gaussian(m) => &m.comps,
            FittedMixture::StudentT(m) => &m.comps,
        }
    }

    /// Hard labels.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Array1<usize>> {
        match self {
            FittedMixture::Gaussian(m) => m.predict(x),
            FittedMixture::StudentT(m) => m.predict(x),
        }
    }

    /// Posterior probabilities.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        match self {
            FittedMixture::Gaussian(m) => m.predict_proba(x),
            FittedMixture::StudentT(m) => m.predict_proba(x),
        }
    }
}

/// Assigns pseudo-labels batch by batch. Holds the bank and the current fit; all fits are
/// seeded, so a run reproduces.
#[derive(Debug)]
pub struct PseudoLabeler {
    cfg: PseudoLabelConfig,
    bank: VecDeque<Vec<f64>>,
    dim: Option<usize>,
    model: Option<FittedMixture>,
    /// Epoch source: set once `refit_epoch` has run; batches are then only labelled.
    epoch_fitted: bool,
    warned_clip: bool,
    cold_fits: u64,
}

impl PseudoLabeler {
    /// Check the configuration and start with an empty bank and no fit.
    pub fn new(cfg: PseudoLabelConfig) -> Result<Self> {
        cfg.check()?;
        Ok(Self {
            cfg,
            bank: VecDeque::new(),
            dim: None,
            model: None,
            epoch_fitted: false,
            warned_clip: false,
            cold_fits: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PseudoLabelConfig {
        &self.cfg
    }

    /// The current fit, if any.
    pub fn model(&self) -> Option<&FittedMixture> {
        self.model.as_ref()
    }

    /// Embeddings currently in the bank.
    pub fn bank_len(&self) -> usize {
        self.bank.len()
    }

    /// Hard pseudo-labels for `batch` (`B x D` embeddings), updating the fit as the source
    /// says. Labels index the current fit's components, so they are comparable within a batch
    /// (what the triplet loss needs), not across refits.
    pub fn assign(&mut self, batch: ArrayView2<'_, f32>) -> Result<Vec<usize>> {
        let (m, x) = self.update(batch)?;
        Ok(m.predict(x.view())?.to_vec())
    }

    /// As [`Self::assign`] (the fit is updated the same way), but the posterior probabilities
    /// of `batch` (`B x K`, soft labels) instead of their argmax.
    pub fn assign_proba(&mut self, batch: ArrayView2<'_, f32>) -> Result<Array2<f64>> {
        let (m, x) = self.update(batch)?;
        m.predict_proba(x.view())
    }

    /// Update the fit with `batch` as the source says; the fit that labels it, and the batch
    /// in f64.
    fn update(&mut self, batch: ArrayView2<'_, f32>) -> Result<(&FittedMixture, Array2<f64>)> {
        let x = self.convert(batch)?;
        match self.cfg.source {
            PseudoLabelSource::PerBatch => {
                let m = self.fit(x.view(), false)?;
                self.model = Some(m);
            }
            PseudoLabelSource::MemoryBank { capacity } => self.bank_step(&x, capacity)?,
            PseudoLabelSource::Epoch => {
                if !self.epoch_fitted {
                    self.bank_step(&x, self.cfg.epoch_bootstrap_capacity)?;
                }
            }
        }
        let m = self.model.as_ref().expect("fitted above or by refit_epoch");
        Ok((m, x))
    }

    /// Posterior probabilities of `batch` under the current fit, without refitting
    /// (soft labels); an error before the first fit.
    pub fn predict_proba(&self, batch: ArrayView2<'_, f32>) -> Result<Array2<f64>> {
        let x = self.convert_readonly(batch)?;
        match &self.model {
            Some(m) => m.predict_proba(x.view()),
            None => Err(invalid(
                "model",
                "no fit yet: call assign or refit_epoch first",
            )),
        }
    }

    /// Refit on all training embeddings (warm-started from the current fit when it has the
    /// same K). With [`PseudoLabelSource::Epoch`] this fit labels every batch until the next
    /// refit; with a memory bank, the next steps warm-start from it; per-batch ignores it.
    pub fn refit_epoch(&mut self, all: ArrayView2<'_, f32>) -> Result<()> {
        let x = self.convert(all)?;
        if self.cfg.source == PseudoLabelSource::PerBatch {
            tracing::debug!(
                "refit_epoch ignored: the per-batch source keeps no fit across batches"
            );
            return Ok(());
        }
        let m = self.fit(x.view(), true)?;
        self.model = Some(m);
        self.epoch_fitted = true;
        Ok(())
    }

    fn bank_step(&mut self, x: &Array2<f64>, capacity: usize) -> Result<()> {
        for row in x.rows() {
            if self.bank.len() == capacity {
                self.bank.pop_front();
            }
            self.bank.push_back(row.to_vec());
        }
        let d = x.ncols();
        let flat: Vec<f64> = self.bank.iter().flatten().copied().collect();
        let bank = Array2::from_shape_vec((self.bank.len(), d), flat).expect("rows of width d");
        let m = self.fit(bank.view(), true)?;
        self.model = Some(m);
        Ok(())
    }

    /// Fit on `x`, warm-starting from the current fit when allowed and K matches.
    fn fit(&mut self, x: ArrayView2<'_, f64>, warm: bool) -> Result<FittedMixture> {
        let n = x.nrows();
        let k = self.cfg.k_rule.components(self.cfg.k, n);
        if self.cfg.k_rule == ComponentRule::Fixed && k < self.cfg.k && !self.warned_clip {
            tracing::warn!(
                k = self.cfg.k,
                n_samples = n,
                "fewer embeddings than components: K clipped to the number of embeddings (warned once)"
            );
            self.warned_clip = true;
        }
        let sp = self.cfg.student_params(k, self.cold_fits);
        let gp = self.cfg.gmm_params(k, self.cold_fits);
        if warm {
            match (&self.model, &sp) {
                (Some(FittedMixture::StudentT(p)), Some(sp)) if p.n_components() == k => {
                    return Ok(FittedMixture::StudentT(sp.fit_from_student(p, x)?));
                }
                // The Gaussian fit (alone, or under a one-pass Student-t) restarts from the
                // current parameters.
                (Some(m), None) if m.n_components() == k => {
                    let c = m.components();
                    let init = InitMethod::Params {
                        weights: c.weights.clone(),
                        means: c.means.clone(),
                        covariances: c.covariances.clone(),
                    };
                    return self.labelling_mixture(gp.init_method(init).fit(x)?);
                }
                _ => {}
            }
        }
        self.cold_fits += 1;
        let g = gp.fit(x)?;
        match sp {
            Some(sp) => Ok(FittedMixture::StudentT(sp.fit_from(&g, x)?)),
            None => self.labelling_mixture(g),
        }
    }

    /// The labelling mixture made from a Gaussian fit when no Student-t EM follows.
    fn labelling_mixture(&self, g: GaussianMixture) -> Result<FittedMixture> {
        Ok(match self.cfg.kind {
            MixtureKind::StudentTOnePass { nu } => {
                FittedMixture::StudentT(StudentMixture::from_gaussian(&g, nu)?)
            }
            _ => FittedMixture::Gaussian(g),
        })
    }

    fn convert(&mut self, batch: ArrayView2<'_, f32>) -> Result<Array2<f64>> {
        let x = self.convert_readonly(batch)?;
        self.dim = Some(x.ncols());
        Ok(x)
    }

    fn convert_readonly(&self, batch: ArrayView2<'_, f32>) -> Result<Array2<f64>> {
        if let Some(d) = self.dim {
            if batch.ncols() != d {
                return Err(MixtureError::DimensionMismatch {
                    expected: d,
                    got: batch.ncols(),
                });
            }
        }
        let x = batch.mapv(f64::from);
        check_data(x.view())?;
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::{ComponentRule, PseudoLabelConfig, PseudoLabelSource, PseudoLabeler};
    use crate::{CovarianceType, MixtureKind};

    /// Before its first refit the epoch source keeps a bank of `epoch_bootstrap_capacity`
    /// embeddings (cxr-train's `mixture.bank_capacity`), not a fixed 4,096.
    #[test]
    fn epoch_source_bootstrap_bank_honours_its_capacity() {
        let x = ndarray::Array2::from_shape_fn((40, 3), |(i, j)| {
            ((i * 7 + j * 13) % 11) as f32 + if i % 2 == 0 { 0.0 } else { 20.0 }
        });
        let cfg = PseudoLabelConfig {
            source: PseudoLabelSource::Epoch,
            k: 2,
            kind: MixtureKind::Gaussian,
            max_iter: 5,
            epoch_bootstrap_capacity: 24,
            ..Default::default()
        };
        let mut pl = PseudoLabeler::new(cfg.clone()).unwrap();
        for start in [0, 16, 24] {
            pl.assign(x.slice(ndarray::s![start..start + 16, ..]))
                .unwrap();
        }
        assert_eq!(pl.bank_len(), 24);
        let zero = PseudoLabelConfig {
            epoch_bootstrap_capacity: 0,
            ..cfg
        };
        let e = PseudoLabeler::new(zero).unwrap_err().to_string();
        assert!(e.contains("epoch_bootstrap_capacity"), "{e}");
    }

    /// The names a configuration file uses, both ways; an unknown name is an error.
    #[test]
    fn config_enums_serialise_as_kebab_case_names() {
        let covariance = [
            (CovarianceType::Full, "\"full\""),
            (CovarianceType::Diag, "\"diag\""),
            (CovarianceType::Spherical, "\"spherical\""),
        ];
        for (t, name) in covariance {
            assert_eq!(serde_json::to_string(&t).unwrap(), name);
            assert_eq!(serde_json::from_str::<CovarianceType>(name).unwrap(), t);
        }
        let rules = [
            (ComponentRule::Fixed, "\"fixed\""),
            (ComponentRule::ReleasedCode, "\"released-code\""),
        ];
        for (r, name) in rules {
            assert_eq!(serde_json::to_string(&r).unwrap(), name);
            assert_eq!(serde_json::from_str::<ComponentRule>(name).unwrap(), r);
        }
        for bad in [
            "\"Full\"",
            "\"tied\"",
            "\"released_code\"",
            "\"ReleasedCode\"",
        ] {
            assert!(
                serde_json::from_str::<CovarianceType>(bad).is_err(),
                "{bad}"
            );
            assert!(serde_json::from_str::<ComponentRule>(bad).is_err(), "{bad}");
        }
    }
}
