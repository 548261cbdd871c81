//! Student-t mixture behaviour (parity with studenttmixture is in `parity.rs`).

mod common;

use cxr_mixture::{CovarianceType, GaussianMixture, NuPolicy, ScaleUpdate, StudentMixture};

#[test]
fn refines_a_gmm_and_keeps_labels_on_clean_blobs() {
    let (x, truth) = common::blobs(3, 60, 3, 5);
    for cov in [CovarianceType::Full, CovarianceType::Diag] {
        for upd in [
            ScaleUpdate::StudentTMixturePackage,
            ScaleUpdate::McLachlanPeel,
        ] {
            for nu in [
                NuPolicy::Fixed(6.0),
                NuPolicy::Shared,
                NuPolicy::PerComponent,
            ] {
                let p = StudentMixture::params(3)
                    .covariance_type(cov)
                    .scale_update(upd)
                    .nu(nu);
                let gmm = GaussianMixture::params(3)
                    .covariance_type(cov)
                    .fit(x.view())
                    .unwrap();
                let t = p.fit_from(&gmm, x.view()).unwrap();
                let labels = t.predict(x.view()).unwrap().to_vec();
                assert!(
                    common::rand_index(&labels, &truth) > 0.99,
                    "{cov:?} {upd:?} {nu:?}"
                );
                let h = t.lower_bound_history();
                assert!(
                    h.windows(2).all(|w| w[1] >= w[0] - 1e-7),
                    "{cov:?} {upd:?} {nu:?}: {h:?}"
                );
                assert!(t.nu().iter().all(|&v| (1.0..=1000.0).contains(&v)));
                let u = t.latent_weights(x.view()).unwrap();
                assert!(u.iter().all(|&v| v > 0.0 && v.is_finite()));
            }
        }
    }
}
