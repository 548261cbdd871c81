//! Per-EM-iteration timing for `scripts/goldens/cxr-mixture/bench.py`, which runs the Python
//! references on the same data in the same run and writes the comparison table.
//!
//! `cargo run -p cxr-mixture --example bench_em -- X.f64 N D K full|diag gmm|student ITERS`
//! reads `N x D` little-endian f64 values, starts from the same parameters as the Python side
//! (means = the first K rows, every covariance = the data's (diagonal) covariance, uniform
//! weights), runs exactly ITERS iterations (tol = 0) and prints one JSON line.
//! `... X.f64 N D K diag bank ITERS` times warm-started memory-bank steps of a
//! `PseudoLabeler` instead (batches of 32, bank of N).

use std::time::Instant;

use cxr_mixture::{
    CovarianceType, Covariances, GaussianMixture, InitMethod, MixtureKind, NuPolicy,
    PseudoLabelConfig, PseudoLabelSource, PseudoLabeler, StudentMixture,
};
use ndarray::{s, Array1, Array2, Array3, Axis};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 8 {
        eprintln!("usage: bench_em X.f64 N D K full|diag gmm|student|bank ITERS");
        std::process::exit(2);
    }
    let (n, d, k): (usize, usize, usize) = (
        a[2].parse().unwrap(),
        a[3].parse().unwrap(),
        a[4].parse().unwrap(),
    );
    let iters: usize = a[7].parse().unwrap();
    let bytes = std::fs::read(&a[1]).expect("read data");
    let vals: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let x = Array2::from_shape_vec((n, d), vals).expect("N x D values");
    let cov_type = if a[5] == "full" {
        CovarianceType::Full
    } else {
        CovarianceType::Diag
    };

    if a[6] == "bank" {
        let xf = x.mapv(|v| v as f32);
        let mut pl = PseudoLabeler::new(PseudoLabelConfig {
            source: PseudoLabelSource::MemoryBank { capacity: n },
            k,
            kind: MixtureKind::StudentT {
                nu: NuPolicy::Fixed(6.0),
            },
            covariance: cov_type,
            ..Default::default()
        })
        .unwrap();
        // Fill the bank (cold fit), then time warm-started steps of 32.
        pl.assign(xf.view()).unwrap();
        let t = Instant::now();
        for i in 0..iters {
            let b = (i * 32) % (n - 32);
            pl.assign(xf.slice(s![b..b + 32, ..])).unwrap();
        }
        let per = t.elapsed().as_secs_f64() / iters as f64;
        println!("{{\"mode\":\"bank\",\"seconds_per_step\":{per}}}");
        return;
    }

    let means = x.slice(s![..k, ..]).to_owned();
    let mean = x.mean_axis(Axis(0)).unwrap();
    let xc = &x - &mean;
    let cov = xc.t().dot(&xc) / n as f64;
    let covariances = match cov_type {
        CovarianceType::Full => {
            Covariances::Full(Array3::from_shape_fn((k, d, d), |(_, i, j)| cov[[i, j]]))
        }
        _ => Covariances::Diag(Array2::from_shape_fn((k, d), |(_, j)| cov[[j, j]])),
    };
    let weights = Array1::from_elem(k, 1.0 / k as f64);
    let t = Instant::now();
    let (hist, what) = if a[6] == "student" {
        let g = GaussianMixture::from_parts(weights, means, covariances).unwrap();
        let m = StudentMixture::params(k)
            .covariance_type(cov_type)
            .tol(0.0)
            .max_iter(iters)
            .fit_from(&g, x.view())
            .unwrap();
        (m.lower_bound_history().to_vec(), "student")
    } else {
        let m = GaussianMixture::params(k)
            .covariance_type(cov_type)
            .tol(0.0)
            .max_iter(iters)
            .init_method(InitMethod::Params {
                weights,
                means,
                covariances,
            })
            .fit(x.view())
            .unwrap();
        (m.lower_bound_history().to_vec(), "gmm")
    };
    let per = t.elapsed().as_secs_f64() / iters as f64;
    println!(
        "{{\"mode\":\"{what}\",\"seconds_per_iter\":{per},\"lower_bounds\":{:?}}}",
        hist
    );
}
