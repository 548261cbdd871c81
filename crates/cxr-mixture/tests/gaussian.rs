//! Gaussian mixture behaviour on synthetic data (parity with scikit-learn is in `parity.rs`).

mod common;

use cxr_mixture::{CovarianceType, GaussianMixture, InitMethod};

fn recovers_blobs(cov: CovarianceType, init: InitMethod) {
    let (x, truth) = common::blobs(3, 60, 4, 1);
    let gmm = GaussianMixture::params(3)
        .covariance_type(cov)
        .init_method(init)
        .n_init(2)
        .fit(x.view())
        .unwrap();
    let labels = gmm.predict(x.view()).unwrap().to_vec();
    assert!(common::rand_index(&labels, &truth) > 0.99, "{cov:?}");
    assert!(gmm.converged());
    let h = gmm.lower_bound_history();
    assert_eq!(h.len(), gmm.n_iter());
    // EM never decreases the likelihood (up to rounding).
    assert!(h.windows(2).all(|w| w[1] >= w[0] - 1e-9), "{h:?}");
    let p = gmm.predict_proba(x.view()).unwrap();
    for row in p.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-12);
    }
    assert!((gmm.weights().sum() - 1.0).abs() < 1e-12);
    let s = gmm.score_samples(x.view()).unwrap();
    assert!(s.iter().all(|v| v.is_finite()));
    assert!(gmm.bic(x.view()).unwrap().is_finite());
}

#[test]
fn full_kmeans_recovers_blobs() {
    recovers_blobs(CovarianceType::Full, InitMethod::KMeans);
}

#[test]
fn diag_kmeanspp_recovers_blobs() {
    recovers_blobs(CovarianceType::Diag, InitMethod::KMeansPlusPlus);
}

#[test]
fn spherical_random_from_data_recovers_blobs() {
    recovers_blobs(CovarianceType::Spherical, InitMethod::KMeans);
}

#[test]
fn bic_prefers_the_true_k() {
    let (x, _) = common::blobs(3, 60, 2, 2);
    let bic = |k| {
        GaussianMixture::params(k)
            .covariance_type(CovarianceType::Diag)
            .n_init(3)
            .fit(x.view())
            .unwrap()
            .bic(x.view())
            .unwrap()
    };
    let b = [bic(1), bic(2), bic(3), bic(5)];
    let best = b
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    assert_eq!(best, 2, "{b:?}");
}

#[test]
fn same_seed_same_fit() {
    let (x, _) = common::blobs(3, 40, 3, 3);
    let p = GaussianMixture::params(3)
        .init_method(InitMethod::Random)
        .seed(7);
    let a = p.fit(x.view()).unwrap();
    let b = p.fit(x.view()).unwrap();
    assert_eq!(a.means(), b.means());
    assert_eq!(a.lower_bound_history(), b.lower_bound_history());
}
