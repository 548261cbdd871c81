//! Saving and restoring a [`PseudoLabeler`] exactly, for training checkpoints: the memory
//! bank, the current fit and the counters that seed later fits. A restored labeler assigns
//! the same labels and makes the same fits as the one it was saved from.

use ndarray::{Array1, Array2, Array3};
use serde::{Deserialize, Serialize};

use super::{FittedMixture, MixtureKind, PseudoLabeler};
use crate::components::{Components, CovarianceType, Covariances};
use crate::error::{invalid, Result};
use crate::estep::Device;
use crate::gaussian::Gaussian;
use crate::mixture::{Density, Mixture};
use crate::student::{NuPolicy, StudentT};

/// Everything a [`PseudoLabeler`] holds besides its configuration (serde; floats round-trip
/// exactly through JSON with serde_json's `float_roundtrip`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelerState {
    /// Bank rows, oldest first.
    pub bank: Vec<Vec<f64>>,
    pub dim: Option<usize>,
    pub model: Option<MixtureState>,
    pub epoch_fitted: bool,
    pub warned_clip: bool,
    pub cold_fits: u64,
}

/// A fitted mixture's parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixtureState {
    /// `true` for a Student-t mixture, `false` for a Gaussian one.
    pub student: bool,
    pub k: usize,
    pub d: usize,
    /// `full`, `diag` or `spherical`.
    pub covariance_type: String,
    pub weights: Vec<f64>,
    /// `K x D`, row-major.
    pub means: Vec<f64>,
    /// Covariances (Student-t: scales), row-major: `K x D x D`, `K x D` or `K`.
    pub covariances: Vec<f64>,
    /// Student-t degrees of freedom per component (empty for a Gaussian).
    pub nu: Vec<f64>,
    pub converged: bool,
    pub n_iter: usize,
    pub lower_bound_history: Vec<f64>,
}

fn components_state(c: &Components) -> (String, Vec<f64>) {
    match &c.covariances {
        Covariances::Full(a) => ("full".into(), a.iter().copied().collect()),
        Covariances::Diag(a) => ("diag".into(), a.iter().copied().collect()),
        Covariances::Spherical(a) => ("spherical".into(), a.to_vec()),
    }
}

fn components_from(s: &MixtureState) -> Result<Components> {
    let (k, d) = (s.k, s.d);
    let bad = |what: &str| invalid("labeler state", what);
    let weights = Array1::from(s.weights.clone());
    let means = Array2::from_shape_vec((k, d), s.means.clone())
        .map_err(|_| bad("means do not have K x D values"))?;
    let (covariances, t) = match s.covariance_type.as_str() {
        "full" => (
            Covariances::Full(
                Array3::from_shape_vec((k, d, d), s.covariances.clone())
                    .map_err(|_| bad("full covariances do not have K x D x D values"))?,
            ),
            CovarianceType::Full,
        ),
        "diag" => (
            Covariances::Diag(
                Array2::from_shape_vec((k, d), s.covariances.clone())
                    .map_err(|_| bad("diagonal covariances do not have K x D values"))?,
            ),
            CovarianceType::Diag,
        ),
        "spherical" => (
            Covariances::Spherical(Array1::from(s.covariances.clone())),
            CovarianceType::Spherical,
        ),
        _ => return Err(bad("covariance_type must be full, diag or spherical")),
    };
    Components::from_init(&weights, &means, &covariances, k, d, t)
}

/// A fitted mixture's parameters and fit diagnostics; `nu` empty for a Gaussian.
fn mixture_state<D: Density>(m: &Mixture<D>, student: bool, nu: Vec<f64>) -> MixtureState {
    let comps = &m.comps;
    let (covariance_type, covariances) = components_state(comps);
    let (k, d) = comps.means.dim();
    MixtureState {
        student,
        k,
        d,
        covariance_type,
        weights: comps.weights.to_vec(),
        means: comps.means.iter().copied().collect(),
        covariances,
        nu,
        converged: m.converged,
        n_iter: m.n_iter,
        lower_bound_history: m.lower_bound_history.clone(),
    }
}

/// A mixture with `density` and `comps` and the saved fit diagnostics of `s`.
fn restored<D: Density>(
    density: D,
    comps: Components,
    device: Device,
    s: &MixtureState,
) -> Mixture<D> {
    Mixture {
        density,
        device,
        comps,
        converged: s.converged,
        n_iter: s.n_iter,
        lower_bound_history: s.lower_bound_history.clone(),
    }
}

impl PseudoLabeler {
    /// A snapshot of the bank and the current fit.
    pub fn state(&self) -> LabelerState {
        let model = self.model.as_ref().map(|m| match m {
            FittedMixture::Gaussian(g) => mixture_state(g, false, Vec::new()),
            FittedMixture::StudentT(t) => mixture_state(t, true, t.nu().to_vec()),
        });
        LabelerState {
            bank: self.bank.iter().cloned().collect(),
            dim: self.dim,
            model,
            epoch_fitted: self.epoch_fitted,
            warned_clip: self.warned_clip,
            cold_fits: self.cold_fits,
        }
    }

    /// Replace the bank and fit with a saved [`LabelerState`]. The state must match this
    /// labeler's configuration (mixture kind, dimension of the bank rows).
    pub fn restore(&mut self, state: LabelerState) -> Result<()> {
        if let Some(d) = state.dim {
            if state.bank.iter().any(|r| r.len() != d) {
                return Err(invalid(
                    "labeler state",
                    "bank rows differ from its dimension",
                ));
            }
        }
        let model = match &state.model {
            None => None,
            Some(s) => {
                let comps = components_from(s)?;
                let device = self.cfg.device;
                let student_nu = match self.cfg.kind {
                    MixtureKind::Gaussian => None,
                    MixtureKind::StudentT { nu } => Some(nu),
                    MixtureKind::StudentTOnePass { nu } => Some(NuPolicy::Fixed(nu)),
                };
                Some(match (s.student, student_nu) {
                    (true, Some(policy)) => {
                        let nu = Array1::from(s.nu.clone());
                        FittedMixture::StudentT(restored(StudentT { nu, policy }, comps, device, s))
                    }
                    (false, None) => FittedMixture::Gaussian(restored(Gaussian, comps, device, s)),
                    _ => return Err(invalid(
                        "labeler state",
                        "saved mixture kind differs from this labeler's (Gaussian vs Student-t)",
                    )),
                })
            }
        };
        self.bank = state.bank.into_iter().collect();
        self.dim = state.dim;
        self.model = model;
        self.epoch_fitted = state.epoch_fitted;
        self.warned_clip = state.warned_clip;
        self.cold_fits = state.cold_fits;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::student::NuPolicy;
    use crate::{PseudoLabelConfig, PseudoLabelSource};
    use rand::{Rng, SeedableRng};

    fn batch(rng: &mut rand_chacha::ChaCha8Rng, n: usize, d: usize) -> Array2<f32> {
        Array2::from_shape_fn((n, d), |(i, _)| {
            (i % 3) as f32 + rng.gen_range(-0.1f32..0.1)
        })
    }

    #[test]
    fn a_restored_labeler_continues_exactly_like_the_original() {
        for kind in [
            MixtureKind::Gaussian,
            MixtureKind::StudentT {
                nu: NuPolicy::Fixed(6.0),
            },
        ] {
            let cfg = PseudoLabelConfig {
                source: PseudoLabelSource::MemoryBank { capacity: 48 },
                k: 3,
                kind,
                max_iter: 10,
                ..PseudoLabelConfig::default()
            };
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
            let mut a = PseudoLabeler::new(cfg.clone()).unwrap();
            for _ in 0..3 {
                a.assign(batch(&mut rng, 16, 4).view()).unwrap();
            }
            let json = serde_json::to_string(&a.state()).unwrap();
            let mut b = PseudoLabeler::new(cfg).unwrap();
            b.restore(serde_json::from_str(&json).unwrap()).unwrap();
            assert_eq!(a.state(), b.state());
            for _ in 0..3 {
                let x = batch(&mut rng, 16, 4);
                assert_eq!(a.assign(x.view()).unwrap(), b.assign(x.view()).unwrap());
                assert_eq!(a.state(), b.state(), "fits diverged after restore");
            }
        }
    }

    #[test]
    fn a_state_of_the_other_mixture_kind_is_rejected() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let cfg = PseudoLabelConfig {
            k: 2,
            max_iter: 5,
            kind: MixtureKind::Gaussian,
            ..PseudoLabelConfig::default()
        };
        let mut a = PseudoLabeler::new(cfg.clone()).unwrap();
        a.assign(batch(&mut rng, 12, 3).view()).unwrap();
        let mut b = PseudoLabeler::new(PseudoLabelConfig {
            kind: MixtureKind::default(),
            ..cfg
        })
        .unwrap();
        let err = b.restore(a.state()).unwrap_err().to_string();
        assert!(err.contains("kind"), "{err}");
    }
}
