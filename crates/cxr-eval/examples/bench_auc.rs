//! AUC + 1,000-resample bootstrap for 40 classes x 50,000 rows with cxr-eval against a
//! scikit-learn loop (`scripts/goldens/cxr-eval/bench_auc_sklearn.py`) on the same machine in
//! the same run. The sklearn loop runs `--sklearn-resamples` resamples and is extrapolated
//! linearly to `--resamples`. Never part of the test suite.
//!
//! `cargo xtask bench auc [FLAGS]`, i.e. `cargo run -p cxr-eval --example bench_auc -- [FLAGS]`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use cxr_eval::{evaluate_grouped, BootstrapConfig, ClassGroup, EvalOptions};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Parser, Debug)]
/// AUC + bootstrap vs a scikit-learn loop (`cargo xtask bench auc` runs this example).
#[command(name = "bench_auc")]
struct Args {
    #[arg(long, default_value_t = 40)]
    classes: usize,
    #[arg(long, default_value_t = 50_000)]
    samples: usize,
    #[arg(long, default_value_t = 1000)]
    resamples: usize,
    /// Resamples the sklearn loop actually runs (then extrapolated).
    #[arg(long, default_value_t = 10)]
    sklearn_resamples: usize,
    /// Rayon threads for cxr-eval (the target machine has 2 cores).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Timed repetitions of the Rust side; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Python with scikit-learn.
    #[arg(long, env = "CXR_PYTHON", default_value = "python3")]
    python: PathBuf,
    /// Skip the sklearn side (Rust timing only).
    #[arg(long)]
    no_sklearn: bool,
    /// Patient-level bootstrap with this many consecutive rows per patient (0: image-level).
    #[arg(long, default_value_t = 0)]
    images_per_patient: usize,
}

/// Long-tailed synthetic data: prevalence from 30% down to 0.2% (log-spaced), scores a noisy
/// function of the label rounded to 3 decimals so that ties occur.
fn synth(n: usize, c: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut scores = Array2::<f32>::zeros((n, c));
    let mut labels = Array2::<f32>::zeros((n, c));
    for j in 0..c {
        let t = if c > 1 {
            j as f64 / (c - 1) as f64
        } else {
            0.0
        };
        let prevalence = 0.3 * (0.002f64 / 0.3).powf(t);
        let shift = 0.3 + 0.5 * rng.gen::<f64>();
        for i in 0..n {
            let y = rng.gen_bool(prevalence);
            let noise: f64 = (0..4).map(|_| rng.gen::<f64>()).sum::<f64>() - 2.0;
            let s = noise + if y { shift } else { 0.0 };
            scores[[i, j]] = ((s * 1000.0).round() / 1000.0) as f32;
            labels[[i, j]] = if y { 1.0 } else { 0.0 };
        }
    }
    (scores, labels)
}

fn write_csv(path: &std::path::Path, m: &Array2<f32>) -> anyhow::Result<()> {
    let mut s = String::with_capacity(m.len() * 8);
    let header: Vec<String> = (0..m.ncols()).map(|j| format!("class{j}")).collect();
    s.push_str(&header.join(","));
    s.push('\n');
    for row in m.rows() {
        for (k, v) in row.iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            let _ = write!(s, "{v}");
        }
        s.push('\n');
    }
    std::fs::File::create(path)?.write_all(s.as_bytes())?;
    Ok(())
}

/// CPU seconds (user + system, all threads) this process has used, from `/proc/self/stat`
/// (Linux; clock ticks of 1/100 s). Reported next to wall time because the benchmark machine
/// is often shared: wall time then overstates what two idle cores would take.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.repeats == 0 || args.threads == 0 || args.sklearn_resamples == 0 {
        bail!("--repeats, --threads and --sklearn-resamples must be at least 1");
    }
    let (scores, labels) = synth(args.samples, args.classes, args.seed);
    let names: Vec<String> = (0..args.classes).map(|j| format!("class{j}")).collect();
    let groups = vec![ClassGroup::Base; args.classes];
    let opts = EvalOptions {
        bootstrap: Some(BootstrapConfig {
            resamples: args.resamples,
            seed: args.seed,
            level: 0.95,
        }),
    };
    let patients: Option<Vec<u64>> = (args.images_per_patient > 0).then(|| {
        (0..args.samples)
            .map(|i| (i / args.images_per_patient) as u64)
            .collect()
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()?;
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    let mut results = None;
    for _ in 0..args.repeats {
        let c0 = cpu_seconds();
        let t = Instant::now();
        let r = pool.install(|| {
            evaluate_grouped(
                scores.view(),
                labels.view(),
                &names,
                &groups,
                &opts,
                patients.as_deref(),
            )
        })?;
        times.push(t.elapsed().as_secs_f64());
        if let (Some(a), Some(b)) = (c0, cpu_seconds()) {
            cpu.push(b - a);
        }
        results = Some(r);
    }
    cpu.sort_by(f64::total_cmp);
    let rust_cpu = cpu.get(cpu.len() / 2).copied();
    times.sort_by(f64::total_cmp);
    let rust_s = times[times.len() / 2];
    let results = results.context("no repetition ran")?;
    println!(
        "cxr-eval: {} classes x {} rows, AUC + {}-resample bootstrap on {} threads: median {:.3} s wall (runs: {:?}), {} CPU",
        args.classes,
        args.samples,
        args.resamples,
        args.threads,
        rust_s,
        times,
        rust_cpu.map_or_else(|| "n/a".to_string(), |c| format!("{c:.2} s"))
    );
    if args.no_sklearn {
        return Ok(());
    }

    let dir = std::env::temp_dir().join(format!("cxr-bench-auc-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (sp, lp) = (dir.join("scores.csv"), dir.join("labels.csv"));
    write_csv(&sp, &scores)?;
    write_csv(&lp, &labels)?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/goldens/cxr-eval/bench_auc_sklearn.py"
    );
    let py = &args.python;
    let out = Command::new(py)
        .arg(script)
        .args([
            "--scores",
            sp.to_str().unwrap_or_default(),
            "--labels",
            lp.to_str().unwrap_or_default(),
        ])
        .args([
            "--resamples",
            &args.sklearn_resamples.to_string(),
            "--seed",
            &args.seed.to_string(),
        ])
        .env("OMP_NUM_THREADS", args.threads.to_string())
        .output()
        .with_context(|| {
            format!(
                "running {} (set --python or CXR_PYTHON to a Python with scikit-learn)",
                py.display()
            )
        })?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        bail!(
            "sklearn benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing the sklearn script's JSON")?;
    let point_s = v["point_s"].as_f64().context("point_s")?;
    let per = v["per_resample_s"].as_f64().context("per_resample_s")?;
    let sk_s = point_s + per * args.resamples as f64;
    let sk_cpu = v["point_cpu_s"]
        .as_f64()
        .zip(v["per_resample_cpu_s"].as_f64())
        .map(|(p, r)| p + r * args.resamples as f64);
    let sk_aucs: Vec<f64> = v["aucs"]
        .as_array()
        .context("aucs")?
        .iter()
        .filter_map(|x| x.as_f64())
        .collect();
    let max_diff = results
        .classes
        .iter()
        .zip(&sk_aucs)
        .map(|(c, s)| c.auc.map_or(f64::INFINITY, |a| (a - s).abs()))
        .fold(0.0f64, f64::max);
    println!(
        "scikit-learn {}: point AUCs {:.3} s + {:.4} s/resample x {} = {:.1} s (measured {} resamples, extrapolated)",
        v["sklearn"].as_str().unwrap_or("?"),
        point_s,
        per,
        args.resamples,
        sk_s,
        args.sklearn_resamples
    );
    println!("max |AUC(cxr-eval) - AUC(sklearn)| over classes: {max_diff:.2e}");
    println!("speed-up (wall): {:.0}x", sk_s / rust_s);
    let cpu_cells = match (rust_cpu, sk_cpu) {
        (Some(r), Some(s)) => {
            println!("speed-up (CPU time): {:.0}x", s / r);
            format!("{r:.2} s | {s:.0} s | {:.0}x", s / r)
        }
        _ => "n/a | n/a | n/a".to_string(),
    };
    println!(
        "\n| workload | cxr-eval wall ({} threads) | sklearn wall | speed-up | cxr-eval CPU | sklearn CPU | speed-up |\n|---|---|---|---|---|---|---|\n| {} classes x {} rows, AUC + {} bootstrap resamples | {:.2} s | {:.0} s | {:.0}x | {} |",
        args.threads, args.classes, args.samples, args.resamples, rust_s, sk_s, sk_s / rust_s, cpu_cells
    );
    Ok(())
}
