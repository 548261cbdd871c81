//! `cargo xtask cluster`: fit a Gaussian or Student-t mixture to an `.npy` matrix and write the
//! fit as JSON. A thin edge around `cxr-mixture` (which does no I/O); the `.npy` reader
//! handles little-endian float32/float64 in C or Fortran order, which is what numpy writes.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cxr_mixture::{
    CovarianceType, Covariances, GaussianMixture, NuPolicy, ScaleUpdate, StudentMixture,
};
use ndarray::{Array2, ShapeBuilder};
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

/// Read a 2-d (or 1-d, as one column) little-endian float32/float64 `.npy` file as f64.
pub fn read_npy(path: &Path) -> Result<Array2<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse_npy(&bytes).with_context(|| format!("parsing {} as .npy", path.display()))
}

fn parse_npy(b: &[u8]) -> Result<Array2<f64>> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        bail!("not an .npy file (bad magic)");
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 => {
            if b.len() < 12 {
                bail!("truncated header");
            }
            (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
        }
        v => bail!("unsupported .npy version {v}"),
    };
    let header = std::str::from_utf8(b.get(start..start + hlen).context("truncated header")?)?;
    let field = |key: &str| -> Result<&str> {
        let i = header
            .find(&format!("'{key}'"))
            .with_context(|| format!("header lacks '{key}'"))?;
        Ok(header[i + key.len() + 2..]
            .trim_start()
            .trim_start_matches(':')
            .trim_start())
    };
    let descr = field("descr")?;
    let width = if descr.starts_with("'<f8'") || descr.starts_with("'float64'") {
        8
    } else if descr.starts_with("'<f4'") {
        4
    } else {
        bail!(
            "dtype {} unsupported: save float32 or float64 (little-endian)",
            &descr[..descr.find(',').unwrap_or(descr.len())]
        );
    };
    let fortran = field("fortran_order")?.starts_with("True");
    let shape_s = field("shape")?;
    let inner =
        &shape_s[shape_s.find('(').context("shape")? + 1..shape_s.find(')').context("shape")?];
    let dims: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<_, _>>()?;
    let (n, d) = match dims.as_slice() {
        [n] => (*n, 1),
        [n, d] => (*n, *d),
        other => bail!("expected a 1-d or 2-d array, got shape {other:?}"),
    };
    let data = &b[start + hlen..];
    if data.len() < n * d * width {
        bail!(
            "file holds {} data bytes, shape {:?} needs {}",
            data.len(),
            (n, d),
            n * d * width
        );
    }
    let values: Vec<f64> = if width == 8 {
        data.chunks_exact(8)
            .take(n * d)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    } else {
        data.chunks_exact(4)
            .take(n * d)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
            .collect()
    };
    let a = if fortran {
        Array2::from_shape_vec((n, d).f(), values)?
            .as_standard_layout()
            .to_owned()
    } else {
        Array2::from_shape_vec((n, d), values)?
    };
    Ok(a)
}

/// Write a float64 C-order `.npy` (for the tests).
#[cfg(test)]
fn write_npy_f64(path: &Path, a: &Array2<f64>) -> Result<()> {
    let mut header = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}), }}",
        a.nrows(),
        a.ncols()
    );
    let pad = 64 - (10 + header.len() + 1) % 64;
    header.push_str(&" ".repeat(pad % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in a.as_standard_layout().iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
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
        write_npy_f64(&p, &x).unwrap();
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
    fn reads_float32_fortran_order() {
        // numpy.asfortranarray(np.array([[1, 2, 3], [4, 5, 6]], dtype='<f4')) saved by np.save.
        let header = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
        let mut h = header.to_string();
        h.push_str(&" ".repeat(64 - (10 + h.len() + 1) % 64));
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        for v in [1f32, 4., 2., 5., 3., 6.] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let a = parse_npy(&b).unwrap();
        assert_eq!(a, ndarray::array![[1., 2., 3.], [4., 5., 6.]]);
    }

    #[test]
    fn rejects_integer_dtype() {
        let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1), }\n";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(&[0; 8]);
        let e = parse_npy(&b).unwrap_err().to_string();
        assert!(e.contains("float32 or float64"), "{e}");
    }
}
