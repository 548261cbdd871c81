//! Parity with independent references, from the same initial parameters.
//!
//! Fixtures: `tests/fixtures/sklearn_gmm.json` (scikit-learn 1.9.1 GaussianMixture) and
//! `tests/fixtures/studenttmixture.json` (studenttmixture 1.11 EMStudentMixture), made by
//! `scripts/goldens/cxr-mixture/make_goldens.py` (see its header for how each run is set up);
//! `tests/fixtures/student_one_pass.json` (scipy 1.17.1 `multivariate_t` on a scikit-learn fit),
//! made by `scripts/goldens/cxr-mixture/one_pass.py`.

use cxr_mixture::{
    CovarianceType, Covariances, Device, GaussianMixture, InitMethod, NuPolicy, Result,
    ScaleUpdate, StudentMixture,
};
use ndarray::{Array1, Array2, Array3, ArrayD, IxDyn};
use serde_json::Value;

/// Expand `fn case(dev: Device) -> Result<()>` into a CPU test and, with the `cuda` feature, a
/// CUDA test (candle's `test_device!`).
macro_rules! test_device {
    ($case:ident, $cpu:ident, $cuda:ident) => {
        #[test]
        fn $cpu() -> Result<()> {
            $case(Device::Cpu)
        }
        #[cfg(feature = "cuda")]
        #[test]
        fn $cuda() -> Result<()> {
            $case(Device::Cuda(0))
        }
    };
}

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Any nested JSON array of numbers as an n-d array.
fn arr(v: &Value) -> ArrayD<f64> {
    fn walk(v: &Value, shape: &mut Vec<usize>, out: &mut Vec<f64>, depth: usize) {
        match v {
            Value::Array(a) => {
                if shape.len() == depth {
                    shape.push(a.len());
                }
                a.iter().for_each(|e| walk(e, shape, out, depth + 1));
            }
            other => out.push(other.as_f64().unwrap()),
        }
    }
    let (mut shape, mut out) = (Vec::new(), Vec::new());
    walk(v, &mut shape, &mut out, 0);
    ArrayD::from_shape_vec(IxDyn(&shape), out).unwrap()
}

fn a1(v: &Value) -> Array1<f64> {
    arr(v).into_dimensionality().unwrap()
}
fn a2(v: &Value) -> Array2<f64> {
    arr(v).into_dimensionality().unwrap()
}
fn a3(v: &Value) -> Array3<f64> {
    arr(v).into_dimensionality().unwrap()
}

/// Every entry within `rel` of the reference, relative to the larger of its own magnitude and
/// a tenth of the array's largest (so near-zero off-diagonals are judged on the array's scale).
fn assert_close(got: &ArrayD<f64>, want: &ArrayD<f64>, rel: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut worst = 0.0f64;
    for (g, w) in got.iter().zip(want) {
        let err = (g - w).abs() / w.abs().max(0.1 * scale).max(f64::MIN_POSITIVE);
        worst = worst.max(err);
    }
    if std::env::var_os("PARITY_VERBOSE").is_some() {
        eprintln!("{what}: worst relative error {worst:e}");
    }
    assert!(
        worst <= rel,
        "{what}: worst relative error {worst:e} > {rel:e}"
    );
}

fn covs_of(t: CovarianceType, v: &Value) -> Covariances {
    match t {
        CovarianceType::Full => Covariances::Full(a3(v)),
        CovarianceType::Diag => Covariances::Diag(a2(v)),
        CovarianceType::Spherical => Covariances::Spherical(a1(v)),
    }
}

fn covs_dyn(c: &Covariances) -> ArrayD<f64> {
    match c {
        Covariances::Full(a) => a.clone().into_dyn(),
        Covariances::Diag(a) => a.clone().into_dyn(),
        Covariances::Spherical(a) => a.clone().into_dyn(),
    }
}

fn sklearn_case(dev: Device, t: CovarianceType, name: &str) -> Result<()> {
    let g = load("sklearn_gmm.json");
    let x = a2(&g["x"]);
    let f = g["fits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["covariance_type"] == name)
        .unwrap();
    let k = f["k"].as_u64().unwrap() as usize;
    let init = InitMethod::Params {
        weights: a1(&f["init"]["weights"]),
        means: a2(&f["init"]["means"]),
        covariances: covs_of(t, &f["init"]["covariances"]),
    };
    let gmm = GaussianMixture::params(k)
        .covariance_type(t)
        .reg_covar(f["reg_covar"].as_f64().unwrap())
        .tol(0.0)
        .max_iter(f["max_iter"].as_u64().unwrap() as usize)
        .init_method(init)
        .device(dev)
        .fit(x.view())?;
    let rel = 1e-6;
    assert_eq!(gmm.n_iter() as u64, f["n_iter"].as_u64().unwrap());
    let hist = Array1::from(gmm.lower_bound_history().to_vec()).into_dyn();
    assert_close(
        &hist,
        &arr(&f["lower_bounds"]),
        rel,
        "per-iteration mean log-likelihood",
    );
    assert_close(
        &gmm.weights().clone().into_dyn(),
        &arr(&f["weights"]),
        rel,
        "weights",
    );
    assert_close(
        &gmm.means().clone().into_dyn(),
        &arr(&f["means"]),
        rel,
        "means",
    );
    assert_close(
        &covs_dyn(gmm.covariances()),
        &arr(&f["covariances"]),
        rel,
        "covariances",
    );
    let ss = gmm.score_samples(x.view()).unwrap().into_dyn();
    assert_close(&ss, &arr(&f["score_samples"]), rel, "score_samples");
    let want_labels: Vec<usize> = f["predict"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(gmm.predict(x.view()).unwrap().to_vec(), want_labels);
    let bic = gmm.bic(x.view()).unwrap();
    let want_bic = f["bic"].as_f64().unwrap();
    assert!(
        (bic - want_bic).abs() <= rel * want_bic.abs(),
        "bic {bic} vs {want_bic}"
    );
    Ok(())
}

fn sklearn_full(dev: Device) -> Result<()> {
    sklearn_case(dev, CovarianceType::Full, "full")
}
test_device!(sklearn_full, sklearn_full_cpu, sklearn_full_cuda);

fn sklearn_diag(dev: Device) -> Result<()> {
    sklearn_case(dev, CovarianceType::Diag, "diag")
}
test_device!(sklearn_diag, sklearn_diag_cpu, sklearn_diag_cuda);

fn sklearn_spherical(dev: Device) -> Result<()> {
    sklearn_case(dev, CovarianceType::Spherical, "spherical")
}
test_device!(
    sklearn_spherical,
    sklearn_spherical_cpu,
    sklearn_spherical_cuda
);

fn student_case(dev: Device, run: &str, update: ScaleUpdate, rel: f64) -> Result<()> {
    let g = load("studenttmixture.json");
    let x = a2(&g["x"]);
    let k = g["k"].as_u64().unwrap() as usize;
    let r = &g["runs"][run];
    let gmm = GaussianMixture::from_parts(
        a1(&g["init"]["weights"]),
        a2(&g["init"]["means"]),
        Covariances::Full(a3(&g["init"]["scales"])),
    )
    .unwrap();
    let steps = r["lower_bounds"].as_array().unwrap().len();
    let exact_steps = update == ScaleUpdate::StudentTMixturePackage;
    let nu = if r["fixed_df"].as_bool().unwrap() {
        NuPolicy::Fixed(6.0)
    } else {
        NuPolicy::PerComponent
    };
    let p = StudentMixture::params(k)
        .nu(nu)
        .nu_init(r["df_init"].as_f64().unwrap())
        .reg_covar(r["reg_covar"].as_f64().unwrap())
        .scale_update(update)
        .tol(if exact_steps {
            r["tol"].as_f64().unwrap()
        } else {
            1e-14
        })
        .max_iter(if exact_steps { steps } else { 20_000 })
        .device(dev);
    let t = p.fit_from(&gmm, x.view())?;
    if exact_steps {
        let hist = Array1::from(t.lower_bound_history().to_vec()).into_dyn();
        assert_close(
            &hist,
            &arr(&r["lower_bounds"]),
            rel,
            "per-iteration mean log-likelihood",
        );
    } else {
        assert!(t.converged());
    }
    assert_close(
        &t.weights().clone().into_dyn(),
        &arr(&r["weights"]),
        rel,
        "weights",
    );
    assert_close(
        &t.means().clone().into_dyn(),
        &arr(&r["means"]),
        rel,
        "locations",
    );
    assert_close(&covs_dyn(t.scales()), &arr(&r["scales"]), rel, "scales");
    assert_close(&t.nu().clone().into_dyn(), &arr(&r["df"]), rel, "nu");
    Ok(())
}

fn studenttmixture_fixed_nu_step_by_step(dev: Device) -> Result<()> {
    student_case(
        dev,
        "fixed_steps",
        ScaleUpdate::StudentTMixturePackage,
        1e-5,
    )
}
test_device!(
    studenttmixture_fixed_nu_step_by_step,
    student_fixed_steps_cpu,
    student_fixed_steps_cuda
);

fn studenttmixture_learned_nu_step_by_step(dev: Device) -> Result<()> {
    student_case(
        dev,
        "learned_steps",
        ScaleUpdate::StudentTMixturePackage,
        1e-5,
    )
}
test_device!(
    studenttmixture_learned_nu_step_by_step,
    student_learned_steps_cpu,
    student_learned_steps_cuda
);

fn mclachlan_peel_reaches_the_package_optimum_fixed_nu(dev: Device) -> Result<()> {
    student_case(dev, "fixed_optimum", ScaleUpdate::McLachlanPeel, 1e-5)
}
test_device!(
    mclachlan_peel_reaches_the_package_optimum_fixed_nu,
    mclachlan_peel_fixed_cpu,
    mclachlan_peel_fixed_cuda
);

fn mclachlan_peel_reaches_the_package_optimum_learned_nu(dev: Device) -> Result<()> {
    student_case(dev, "learned_optimum", ScaleUpdate::McLachlanPeel, 1e-5)
}
test_device!(
    mclachlan_peel_reaches_the_package_optimum_learned_nu,
    mclachlan_peel_learned_cpu,
    mclachlan_peel_learned_cuda
);

/// The released code's single Student-t pass (nu = 8) with a scikit-learn GMM's parameters:
/// our densities and posteriors against scipy's `multivariate_t`.
fn one_pass_student_t_matches_scipy(dev: Device) -> Result<()> {
    let f = load("student_one_pass.json");
    let x = a2(&f["x"]);
    let gmm = GaussianMixture::from_parts(
        a1(&f["weights"]),
        a2(&f["means"]),
        Covariances::Full(a3(&f["covariances"])),
    )?
    .with_device(dev);
    let t = StudentMixture::from_gaussian(&gmm, f["nu"].as_f64().unwrap())?;
    assert_eq!(t.n_iter(), 0);
    assert_eq!(t.means(), gmm.means());
    let max_diff = |a: &Array2<f64>, b: &Array2<f64>| {
        a.iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f64::max)
    };
    let ll = t.score_samples(x.view())?;
    let want_ll = a1(&f["score_samples"]);
    let ll_diff = ll
        .iter()
        .zip(&want_ll)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max);
    assert!(ll_diff < 1e-9, "log-likelihood differs by {ll_diff}");
    let proba = t.predict_proba(x.view())?;
    let d = max_diff(&proba, &a2(&f["predict_proba"]));
    assert!(d < 1e-9, "posteriors differ by {d}");
    let want: Vec<usize> = a1(&f["predict"]).iter().map(|&v| v as usize).collect();
    assert_eq!(t.predict(x.view())?.to_vec(), want);
    // Not the Gaussian posteriors: the heavy tails move the outliers' probabilities.
    assert!(max_diff(&proba, &gmm.predict_proba(x.view())?) > 0.05);
    Ok(())
}
test_device!(
    one_pass_student_t_matches_scipy,
    one_pass_student_t_matches_scipy_cpu,
    one_pass_student_t_matches_scipy_cuda
);
