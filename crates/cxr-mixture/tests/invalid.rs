//! One test per invalid parameter (each rejected before any work, with a message naming it),
//! and invalid data.

use cxr_mixture::{
    CovarianceType, Covariances, GaussianMixture, InitMethod, MixtureError, NuPolicy,
    PseudoLabelConfig, PseudoLabeler, StudentMixture,
};
use ndarray::{array, Array1, Array2, Array3};

fn data() -> Array2<f64> {
    Array2::from_shape_fn((20, 2), |(i, j)| (i * 7 + j * 3) as f64 % 5.0)
}

fn assert_param(r: Result<impl std::fmt::Debug, MixtureError>, name: &str) {
    match r {
        Err(MixtureError::InvalidParam { name: n, reason }) => {
            assert_eq!(n, name, "{reason}");
            assert!(!reason.is_empty());
        }
        other => panic!("expected InvalidParam({name}), got {other:?}"),
    }
}

#[test]
fn k_zero() {
    assert_param(GaussianMixture::params(0).fit(data().view()), "k");
    assert_param(StudentMixture::params(0).fit(data().view()), "k");
}

#[test]
fn negative_reg_covar() {
    assert_param(
        GaussianMixture::params(2)
            .reg_covar(-1e-6)
            .fit(data().view()),
        "reg_covar",
    );
}

#[test]
fn nan_reg_covar() {
    assert_param(
        StudentMixture::params(2)
            .reg_covar(f64::NAN)
            .fit(data().view()),
        "reg_covar",
    );
}

#[test]
fn negative_tol() {
    assert_param(
        GaussianMixture::params(2).tol(-1.0).fit(data().view()),
        "tol",
    );
    assert_param(
        StudentMixture::params(2).tol(-1.0).fit(data().view()),
        "tol",
    );
}

#[test]
fn zero_max_iter() {
    assert_param(
        GaussianMixture::params(2).max_iter(0).fit(data().view()),
        "max_iter",
    );
    assert_param(
        StudentMixture::params(2).max_iter(0).fit(data().view()),
        "max_iter",
    );
}

#[test]
fn zero_n_init() {
    assert_param(
        GaussianMixture::params(2).n_init(0).fit(data().view()),
        "n_init",
    );
}

#[test]
fn non_positive_fixed_nu() {
    assert_param(
        StudentMixture::params(2)
            .nu(NuPolicy::Fixed(0.0))
            .fit(data().view()),
        "nu",
    );
    assert_param(
        StudentMixture::params(2)
            .nu(NuPolicy::Fixed(f64::INFINITY))
            .fit(data().view()),
        "nu",
    );
}

#[test]
fn one_pass_nu_must_be_positive_and_finite() {
    let gmm = GaussianMixture::params(2).fit(data().view()).unwrap();
    for nu in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_param(StudentMixture::from_gaussian(&gmm, nu), "nu");
    }
    assert!(StudentMixture::from_gaussian(&gmm, 8.0).is_ok());
}

#[test]
fn non_positive_nu_init() {
    assert_param(
        StudentMixture::params(2)
            .nu(NuPolicy::Shared)
            .nu_init(-3.0)
            .fit(data().view()),
        "nu_init",
    );
}

#[test]
fn inverted_nu_bounds() {
    assert_param(
        StudentMixture::params(2)
            .nu_bounds(10.0, 2.0)
            .fit(data().view()),
        "nu_bounds",
    );
}

#[test]
fn mismatched_gmm_params() {
    let p = StudentMixture::params(2).gmm_params(GaussianMixture::params(3));
    assert_param(p.fit(data().view()), "gmm_params");
}

#[test]
fn fit_from_a_gmm_with_another_k() {
    let g = GaussianMixture::params(3).fit(data().view()).unwrap();
    assert_param(StudentMixture::params(2).fit_from(&g, data().view()), "k");
}

#[test]
fn fit_from_a_gmm_with_another_covariance_type() {
    let g = GaussianMixture::params(2)
        .covariance_type(CovarianceType::Diag)
        .fit(data().view())
        .unwrap();
    assert_param(
        StudentMixture::params(2).fit_from(&g, data().view()),
        "covariance_type",
    );
}

#[test]
fn pseudo_label_k_zero() {
    let e = PseudoLabeler::new(PseudoLabelConfig {
        k: 0,
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(e, MixtureError::InvalidParam { name: "k", .. }),
        "{e}"
    );
}

#[test]
fn pseudo_label_bad_nu() {
    let cfg = PseudoLabelConfig {
        kind: cxr_mixture::MixtureKind::StudentT {
            nu: NuPolicy::Fixed(-1.0),
        },
        ..Default::default()
    };
    assert!(matches!(
        PseudoLabeler::new(cfg),
        Err(MixtureError::InvalidParam { name: "nu", .. })
    ));
}

#[test]
fn init_params_with_wrong_shapes() {
    let bad = InitMethod::Params {
        weights: array![0.5, 0.5],
        means: Array2::zeros((2, 3)),
        covariances: Covariances::Full(Array3::from_shape_fn((2, 2, 2), |(_, i, j)| {
            f64::from(u8::from(i == j))
        })),
    };
    let r = GaussianMixture::params(2)
        .init_method(bad)
        .fit(data().view());
    assert!(matches!(r, Err(MixtureError::InvalidInit(_))), "{r:?}");
}

#[test]
fn init_weights_not_summing_to_one() {
    let bad = InitMethod::Params {
        weights: array![0.5, 0.7],
        means: Array2::zeros((2, 2)),
        covariances: Covariances::Diag(Array2::ones((2, 2))),
    };
    let r = GaussianMixture::params(2)
        .covariance_type(CovarianceType::Diag)
        .init_method(bad)
        .fit(data().view());
    assert!(matches!(r, Err(MixtureError::InvalidInit(m)) if m.contains("sum")));
}

#[test]
fn init_covariance_not_positive_definite() {
    let bad = InitMethod::Params {
        weights: array![0.5, 0.5],
        means: Array2::zeros((2, 2)),
        covariances: Covariances::Spherical(Array1::from(vec![1.0, -1.0])),
    };
    let r = GaussianMixture::params(2)
        .covariance_type(CovarianceType::Spherical)
        .init_method(bad)
        .fit(data().view());
    assert!(matches!(r, Err(MixtureError::InvalidInit(_))), "{r:?}");
}

#[test]
fn nan_and_inf_input() {
    let mut x = data();
    x[[4, 1]] = f64::NAN;
    assert!(matches!(
        GaussianMixture::params(2).fit(x.view()),
        Err(MixtureError::NonFinite { row: 4, col: 1 })
    ));
    x[[4, 1]] = f64::INFINITY;
    assert!(matches!(
        StudentMixture::params(2).fit(x.view()),
        Err(MixtureError::NonFinite { row: 4, col: 1 })
    ));
}

#[test]
fn empty_input() {
    let x = Array2::<f64>::zeros((0, 3));
    assert!(matches!(
        GaussianMixture::params(1).fit(x.view()),
        Err(MixtureError::EmptyInput { .. })
    ));
}

#[test]
fn predict_with_wrong_width() {
    let g = GaussianMixture::params(2).fit(data().view()).unwrap();
    let r = g.predict(Array2::<f64>::zeros((3, 5)).view());
    assert!(matches!(
        r,
        Err(MixtureError::DimensionMismatch {
            expected: 2,
            got: 5
        })
    ));
}

#[test]
fn messages_say_what_to_do() {
    let e = GaussianMixture::params(2)
        .reg_covar(-1.0)
        .fit(data().view())
        .unwrap_err()
        .to_string();
    assert!(e.contains("reg_covar") && e.contains(">= 0"), "{e}");
}
