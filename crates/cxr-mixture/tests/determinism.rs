//! Mixture fits are bit-identical whatever the number of rayon threads: the M-step's sums
//! are reduced in a fixed order (see the crate docs).

mod common;

use cxr_mixture::{CovarianceType, GaussianMixture, NuPolicy, StudentMixture};
use ndarray::Array2;

/// Every fitted number of a Gaussian fit and of its Student-t refinement, as bits.
fn fit_bits(x: &Array2<f64>, cov: CovarianceType) -> Vec<u64> {
    let gmm = GaussianMixture::params(5)
        .covariance_type(cov)
        .max_iter(8)
        .fit(x.view())
        .unwrap();
    let t = StudentMixture::params(5)
        .covariance_type(cov)
        .nu(NuPolicy::PerComponent)
        .max_iter(5)
        .fit_from(&gmm, x.view())
        .unwrap();
    let mut out: Vec<f64> = Vec::new();
    for m in [gmm.weights(), t.weights(), t.nu()] {
        out.extend(m.iter());
    }
    for m in [gmm.means(), t.means()] {
        out.extend(m.iter());
    }
    out.extend(gmm.lower_bound_history());
    out.extend(t.lower_bound_history());
    out.extend(t.predict_proba(x.view()).unwrap().iter());
    out.into_iter().map(f64::to_bits).collect()
}

#[test]
fn a_fit_is_bit_identical_on_1_2_and_4_threads() -> Result<(), rayon::ThreadPoolBuildError> {
    // 6,000 rows: 24 row chunks, so the M-step's reduction really is split.
    let (x, _) = common::blobs(5, 1_200, 6, 11);
    for cov in [CovarianceType::Full, CovarianceType::Diag] {
        let runs: Vec<Vec<u64>> = [1, 2, 4, 4]
            .into_iter()
            .map(|n| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map(|pool| pool.install(|| fit_bits(&x, cov)))
            })
            .collect::<Result<_, _>>()?;
        for (i, r) in runs.iter().enumerate().skip(1) {
            assert!(r == &runs[0], "{cov:?}: run {i} differs from 1 thread");
        }
    }
    Ok(())
}
