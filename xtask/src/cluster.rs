//! `cargo xtask cluster`: fit a Gaussian or Student-t mixture to an `.npy` matrix and write the
//! fit as JSON. A thin edge around `cxr-mixture` (which does no I/O); the matrix is read by
//! `cxr_data::npy` (little-endian float16/32/64 in C or Fortran order, what numpy writes).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cxr_data::npy;
use cxr_mixture::{
    CovarianceType, Covariances, GaussianMixture, NuPolicy, ScaleUpdate, StudentMixture,
};
use ndarray::Array2;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    /// Gaussian mixture.
    Gmm,
    /// Gaussian mixture refined by a Student-t mixture.
    StudentT,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Cov {
    Full,
    Diag,
    Spherical,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Update {
    /// Divide the scale scatter by sum(resp * E[u]) (the studenttmixture package).
    Package,
    /// Divide by sum(resp) (McLachlan and Peel).
    MclachlanPeel,
}

/// Fit a mixture to the rows of a float32/float64 `.npy` matrix.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input matrix, N x D, float32 or float64 `.npy`.
    #[arg(long)]
    pub input: PathBuf,
    /// Number of components.
    #[arg(long)]
    pub k: usize,
    /// Mixture family.
    #[arg(long, value_enum, default_value_t = Model::Gmm)]
    pub model: Model,
    /// Covariance (scale) shape.
    #[arg(long, value_enum, default_value_t = Cov::Full)]
    pub cov: Cov,
    /// Student-t degrees of freedom: a number (fixed), `learn` (per component) or `shared`.
    #[arg(long, default_value = "6")]
    pub nu: String,
    /// Student-t scale M-step.
    #[arg(long, value_enum, default_value_t = Update::Package)]
    pub scale_update: Update,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Initialisations of the Gaussian fit (best lower bound kept).
    #[arg(long, default_value_t = 1)]
    pub n_init: usize,
    /// Maximum EM iterations (per model).
    #[arg(long, default_value_t = 100)]
    pub max_iter: usize,
    /// Convergence threshold on the mean log-likelihood.
    #[arg(long, default_value_t = 1e-3)]
    pub tol: f64,
    /// Added to covariance diagonals.
    #[arg(long, default_value_t = 1e-6)]
    pub reg_covar: f64,
    /// Output JSON (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let x = read_npy(&args.input)?;
    let v = fit_to_json(&args, &x)?;
    let text = serde_json::to_string_pretty(&v)?;
    match &args.out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}

fn parse_nu(s: &str) -> Result<NuPolicy> {
    Ok(match s {
        "learn" | "per-component" => NuPolicy::PerComponent,
        "shared" => NuPolicy::Shared,
        v => NuPolicy::Fixed(
            v.parse()
                .with_context(|| format!("--nu: `{v}` is not a number, `learn` or `shared`"))?,
        ),
    })
}

fn covs_json(c: &Covariances) -> Value {
    match c {
        Covariances::Full(a) => json!(a
            .outer_iter()
            .map(|m| rows(&m.to_owned()))
            .collect::<Vec<_>>()),
        Covariances::Diag(a) => json!(rows(a)),
        Covariances::Spherical(a) => json!(a.to_vec()),
    }
}

fn rows(a: &Array2<f64>) -> Vec<Vec<f64>> {
    a.outer_iter().map(|r| r.to_vec()).collect()
}

/// Fit as the flags say and describe the result (mean log-likelihood history as
/// scikit-learn's `score`, per sample).
pub fn fit_to_json(args: &Args, x: &Array2<f64>) -> Result<Value> {
    let cov = match args.cov {
        Cov::Full => CovarianceType::Full,
        Cov::Diag => CovarianceType::Diag,
        Cov::Spherical => CovarianceType::Spherical,
    };
    let gp = GaussianMixture::params(args.k)
        .covariance_type(cov)
        .reg_covar(args.reg_covar)
        .tol(args.tol)
        .max_iter(args.max_iter)
        .n_init(args.n_init)
        .seed(args.seed);
    let gmm = gp.fit(x.view())?;
    let base = json!({
        "n_samples": x.nrows(),
        "n_features": x.ncols(),
        "k": args.k,
        "covariance_type": format!("{cov:?}").to_lowercase(),
    });
    let mut out = match args.model {
        Model::Gmm => json!({
            "model": "gmm",
            "weights": gmm.weights().to_vec(),
            "means": rows(gmm.means()),
            "covariances": covs_json(gmm.covariances()),
            "nu": Value::Null,
            "log_likelihood_history": gmm.lower_bound_history(),
            "n_iter": gmm.n_iter(),
            "converged": gmm.converged(),
            "bic": gmm.bic(x.view())?,
            "labels": gmm.predict(x.view())?.to_vec(),
        }),
        Model::StudentT => {
            let sp = StudentMixture::params(args.k)
                .nu(parse_nu(&args.nu)?)
                .covariance_type(cov)
                .reg_covar(args.reg_covar)
                .tol(args.tol)
                .max_iter(args.max_iter)
                .scale_update(match args.scale_update {
                    Update::Package => ScaleUpdate::StudentTMixturePackage,
                    Update::MclachlanPeel => ScaleUpdate::McLachlanPeel,
                })
                .gmm_params(gp);
            let t = sp.fit_from(&gmm, x.view())?;
            json!({
                "model": "student-t",
                "weights": t.weights().to_vec(),
                "means": rows(t.means()),
                "covariances": covs_json(t.scales()),
                "nu": t.nu().to_vec(),
                "log_likelihood_history": t.lower_bound_history(),
                "n_iter": t.n_iter(),
                "converged": t.converged(),
                "gmm_n_iter": gmm.n_iter(),
                "gmm_log_likelihood_history": gmm.lower_bound_history(),
                "bic": t.bic(x.view())?,
                "labels": t.predict(x.view())?.to_vec(),
            })
        }
    };
    if let (Value::Object(o), Value::Object(b)) = (&mut out, base) {
        o.extend(b);
    }
    Ok(out)
}

/// Read a 2-d (or 1-d, as one column) `.npy` matrix as f64.
pub fn read_npy(path: &Path) -> Result<Array2<f64>> {
    let (shape, values) = npy::read::<f64>(path)?;
    let (n, d) = match shape.as_slice() {
        [n] => (*n, 1),
        [n, d] => (*n, *d),
        other => bail!(
            "{}: expected a 1-d or 2-d array, got shape {other:?}",
            path.display()
        ),
    };
    Ok(Array2::from_shape_vec((n, d), values)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(input: PathBuf, model: Model, cov: Cov) -> Args {
        Args {
            input,
            k: 2,
            model,
            cov,
            nu: "learn".into(),
            scale_update: Update::Package,
            seed: 1,
            n_init: 1,
            max_iter: 50,
            tol: 1e-4,
            reg_covar: 1e-6,
            out: None,
        }
    }

    #[test]
    fn npy_round_trip_and_fit() {
        let x = Array2::from_shape_fn((40, 3), |(i, j)| {
            if i < 20 {
                (i + j) as f64 * 0.01
            } else {
                5.0 + (i * j) as f64 * 0.01
            }
        });
        let dir = std::env::temp_dir().join(format!("xtask-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.npy");
        npy::write(&p, &[40, 3], x.as_slice().unwrap()).unwrap();
        assert_eq!(read_npy(&p).unwrap(), x);
        for (model, cov) in [(Model::Gmm, Cov::Full), (Model::StudentT, Cov::Diag)] {
            let v = fit_to_json(&args(p.clone(), model, cov), &x).unwrap();
            let labels: Vec<u64> = v["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_u64().unwrap())
                .collect();
            assert_eq!(labels.len(), 40);
            assert!(
                labels[..20].iter().all(|&l| l == labels[0])
                    && labels[20..].iter().all(|&l| l != labels[0])
            );
            assert!(
                v["log_likelihood_history"].as_array().unwrap().len() as u64
                    == v["n_iter"].as_u64().unwrap()
            );
            assert_eq!(v["nu"].is_null(), model == Model::Gmm);
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn one_dimensional_input_is_one_column_and_3d_is_refused() {
        let dir = std::env::temp_dir().join(format!("xtask-cluster-1d-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("v.npy");
        npy::write(&p, &[3], &[1f32, 2., 3.]).unwrap();
        assert_eq!(read_npy(&p).unwrap(), ndarray::array![[1.], [2.], [3.]]);
        npy::write(&p, &[1, 1, 2], &[1f64, 2.]).unwrap();
        let e = read_npy(&p).unwrap_err().to_string();
        assert!(e.contains("v.npy") && e.contains("1-d or 2-d"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
