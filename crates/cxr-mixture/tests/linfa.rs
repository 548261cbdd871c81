//! Cross-check against linfa-clustering 0.8.1's full-covariance `GaussianMixtureModel` (an
//! independent Rust implementation): on well-separated blobs both converge to the same
//! optimum, so the means, weights and covariances agree after matching components.

mod common;

use cxr_mixture::{CovarianceType, Covariances, GaussianMixture};
use linfa::prelude::*;
use linfa_clustering::GaussianMixtureModel;
use rand::SeedableRng;

#[test]
fn full_covariance_fit_agrees_with_linfa() {
    let (x, _) = common::blobs(3, 80, 3, 21);
    let ours = GaussianMixture::params(3)
        .covariance_type(CovarianceType::Full)
        .tol(1e-10)
        .max_iter(500)
        .fit(x.view())
        .unwrap();
    let ds = DatasetBase::from(x.clone());
    let theirs = GaussianMixtureModel::params(3)
        .tolerance(1e-10)
        .max_n_iterations(500)
        .reg_covariance(1e-6)
        .with_rng(rand_xoshiro_free_rng())
        .fit(&ds)
        .expect("linfa fit");
    let Covariances::Full(our_cov) = ours.covariances() else {
        unreachable!()
    };
    for (j, their_mean) in theirs.means().outer_iter().enumerate() {
        // Match by nearest mean.
        let i = (0..3)
            .min_by(|&a, &b| {
                let da = (&ours.means().row(a) - &their_mean).mapv(|v| v * v).sum();
                let db = (&ours.means().row(b) - &their_mean).mapv(|v| v * v).sum();
                da.total_cmp(&db)
            })
            .unwrap();
        for (a, b) in ours.means().row(i).iter().zip(their_mean) {
            assert!((a - b).abs() < 1e-6 * b.abs().max(1.0), "mean {a} vs {b}");
        }
        assert!((ours.weights()[i] - theirs.weights()[j]).abs() < 1e-6);
        let tc = theirs.covariances().index_axis(ndarray::Axis(0), j);
        let oc = our_cov.index_axis(ndarray::Axis(0), i);
        for (a, b) in oc.iter().zip(tc) {
            assert!((a - b).abs() < 1e-5 * b.abs().max(0.1), "cov {a} vs {b}");
        }
    }
}

fn rand_xoshiro_free_rng() -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(5)
}
