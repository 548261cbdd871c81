//! Gaussian and Student-t mixture models fitted by EM, and the pseudo-label sources that the
//! CXR-CML trainer draws cluster labels from.
//!
//! - [`GaussianMixture`]: full, diagonal or spherical covariances; k-means, k-means++, random
//!   or given initialisation; best of `n_init`; mirrors scikit-learn's `GaussianMixture`.
//! - [`StudentMixture`]: a Student-t mixture refined from a fitted Gaussian mixture ("GMM
//!   refined by a Student-t distribution"), `nu` fixed, shared or per component; mirrors the
//!   `studenttmixture` package, with McLachlan and Peel's update as an option.
//! - [`PseudoLabeler`]: per-batch, memory-bank or epoch-level fits for training.
//!
//! Both mixtures are a [`Mixture`] (weights, components, fit diagnostics, `predict`, `score`,
//! `bic`, ...) over a component [`Density`]; only the log density and the EM differ.
//!
//! Numerics: log-sum-exp responsibilities; Cholesky precision factors (faer, pure Rust);
//! empty components are re-seeded with a warning; NaN/inf input is an error. The E- and
//! M-steps are parallel over samples (rayon). This crate does no I/O and knows nothing about
//! the models whose embeddings it clusters.
//!
//! Determinism: on the CPU every fit, prediction and pseudo-label is bit-exact for a given
//! input, seed and machine, whatever the number of rayon threads or how work is stolen. The
//! E-step computes each sample's row on its own; the M-step's sums over samples are split
//! into fixed groups of row chunks (a function of `N` only), each summed sequentially, and the
//! group sums are added in group order; no float is summed by a rayon `reduce`/`sum`. Results
//! may differ in the last bits between CPUs with different SIMD widths (faer picks its kernels
//! at run time) and between the CPU and the CUDA device.
//!
//! Modules, each using only those listed before it: `linalg`, `error`; `data` (input checks);
//! `init` (initial responsibilities); `components` (covariances, precision factors, distance
//! kernel, M-step); `pruned` (the pruned full-covariance E-step); `cuda` (feature `cuda`);
//! `estep` ([`Device`] dispatch, distances to log responsibilities); `mixture` (the shared
//! fitted-model core); `gaussian`; `student`; `pseudo`.

mod components;
#[cfg(feature = "cuda")]
mod cuda;
mod data;
mod error;
mod estep;
mod gaussian;
mod init;
mod linalg;
mod mixture;
mod pruned;
mod pseudo;
#[cfg(test)]
mod reference;
mod student;

pub use components::{CovarianceType, Covariances};
pub use error::{MixtureError, Result};
pub use estep::Device;
pub use gaussian::{Gaussian, GaussianMixture, GmmParams, InitMethod};
pub use mixture::{Density, Mixture};
pub use pseudo::{
    ComponentRule, FittedMixture, LabelerState, MixtureKind, MixtureState, PseudoLabelConfig,
    PseudoLabelSource, PseudoLabeler, EPOCH_BOOTSTRAP_CAPACITY,
};
pub use student::{NuPolicy, ScaleUpdate, StudentMixture, StudentParams, StudentT};
