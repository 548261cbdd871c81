//! Degenerate inputs give finite, documented results: N < K (components duplicate others),
//! D > N (rank-deficient scatter, kept positive definite by reg_covar), duplicated points,
//! and reg_covar = 0 on a singular covariance (an error that says to raise reg_covar).

use cxr_mixture::{CovarianceType, GaussianMixture, InitMethod, MixtureError, StudentMixture};
use ndarray::Array2;

fn all_finite(g: &GaussianMixture, x: &Array2<f64>) {
    assert!(g.weights().iter().all(|v| v.is_finite() && *v >= 0.0));
    assert!((g.weights().sum() - 1.0).abs() < 1e-9);
    assert!(g.means().iter().all(|v| v.is_finite()));
    assert!(g
        .score_samples(x.view())
        .unwrap()
        .iter()
        .all(|v| v.is_finite()));
    assert!(g
        .predict_proba(x.view())
        .unwrap()
        .iter()
        .all(|v| v.is_finite()));
}

fn small(n: usize, d: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, d), |(i, j)| ((i * 31 + j * 17) % 11) as f64 / 3.0)
}

#[test]
fn fewer_samples_than_components() {
    let x = small(5, 3);
    for cov in [
        CovarianceType::Full,
        CovarianceType::Diag,
        CovarianceType::Spherical,
    ] {
        for init in [
            InitMethod::KMeans,
            InitMethod::KMeansPlusPlus,
            InitMethod::Random,
            InitMethod::RandomFromData,
        ] {
            let g = GaussianMixture::params(8)
                .covariance_type(cov)
                .init_method(init.clone())
                .fit(x.view())
                .unwrap();
            assert_eq!(g.n_components(), 8);
            all_finite(&g, &x);
        }
    }
}

#[test]
fn more_dimensions_than_samples() {
    let x = small(12, 40);
    for cov in [CovarianceType::Full, CovarianceType::Diag] {
        let g = GaussianMixture::params(3)
            .covariance_type(cov)
            .fit(x.view())
            .unwrap();
        all_finite(&g, &x);
        let t = StudentMixture::params(3)
            .covariance_type(cov)
            .fit(x.view())
            .unwrap();
        assert!(t
            .score_samples(x.view())
            .unwrap()
            .iter()
            .all(|v| v.is_finite()));
    }
}

#[test]
fn all_points_identical() {
    let x = Array2::from_elem((30, 4), 2.5);
    for cov in [
        CovarianceType::Full,
        CovarianceType::Diag,
        CovarianceType::Spherical,
    ] {
        let g = GaussianMixture::params(3)
            .covariance_type(cov)
            .fit(x.view())
            .unwrap();
        all_finite(&g, &x);
        // Every component sits on the point with covariance reg_covar.
        assert!(g.means().iter().all(|&m| (m - 2.5).abs() < 1e-9));
        let diag = g.covariances().diagonals(4);
        assert!(diag.iter().all(|&v| (v - 1e-6).abs() < 1e-12), "{diag:?}");
    }
}

#[test]
fn duplicated_points_among_others() {
    let mut x = small(40, 3);
    for i in 0..20 {
        x.row_mut(i).fill(1.0);
    }
    let g = GaussianMixture::params(4).fit(x.view()).unwrap();
    all_finite(&g, &x);
}

#[test]
fn zero_reg_covar_on_a_singular_covariance_says_raise_it() {
    let x = Array2::from_elem((10, 2), 1.0);
    let e = GaussianMixture::params(1)
        .reg_covar(0.0)
        .fit(x.view())
        .unwrap_err();
    assert!(matches!(
        e,
        MixtureError::NotPositiveDefinite { component: 0 }
    ));
    assert!(e.to_string().contains("raise reg_covar"));
}

#[test]
fn an_empty_component_is_reseeded() {
    // Two far-apart groups; start one component at a far-away point that owns no sample.
    let mut x = small(40, 2);
    for i in 20..40 {
        x[[i, 0]] += 50.0;
    }
    let init = InitMethod::Params {
        weights: ndarray::array![0.4, 0.4, 0.2],
        means: ndarray::array![[1.0, 1.0], [51.0, 1.0], [1e4, 1e4]],
        covariances: cxr_mixture::Covariances::Diag(Array2::ones((3, 2))),
    };
    let g = GaussianMixture::params(3)
        .covariance_type(CovarianceType::Diag)
        .init_method(init)
        .fit(x.view())
        .unwrap();
    all_finite(&g, &x);
    // The stranded component moved onto the data.
    assert!(
        g.means().row(2).iter().all(|&m| m.abs() < 100.0),
        "{:?}",
        g.means()
    );
}
