//! CSV ingest and JPEG decode + CheXzero preprocessing against pandas / Pillow
//! (`scripts/goldens/cxr-data/bench_reference.py`, run in a child process right after ours).
//! The inputs are generated here, deterministically: a CXR-LT-shaped label file and 2500 x 3000
//! grayscale JPEGs. Never part of the test suite; see docs/benchmarks.md.
//!
//! `cargo xtask data bench [FLAGS]`, i.e.
//! `cargo run --release -p cxr-data --example bench_ingest -- [FLAGS]` (benchmark in release:
//! the dev profile keeps debug assertions in polars).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use cxr_data::image::Preprocess;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Time CSV ingest and JPEG decode + CheXzero preprocessing against pandas / Pillow
/// (`cargo xtask data bench` runs this example).
#[derive(Debug, Parser)]
#[command(name = "bench_ingest")]
struct Args {
    /// Rows of the synthetic CXR-LT label file (46 columns).
    #[arg(long, default_value_t = 250_000)]
    rows: usize,
    /// Number of 2500 x 3000 grayscale JPEGs to decode (about 1.5 MB each, like MIMIC-CXR-JPG).
    #[arg(long, default_value_t = 12)]
    images: usize,
    /// Scratch folder for the generated inputs.
    #[arg(long, default_value = "target/bench-data")]
    work: PathBuf,
    /// Timed passes per benchmark, on both sides; the best one counts (the machine is shared,
    /// so the fastest pass is the least disturbed one).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Python with pandas and Pillow for the reference timings (skipped if it fails).
    #[arg(long, env = "CXR_PYTHON", default_value = "python3")]
    python: PathBuf,
}

/// Best of `n` timings of `f`, in seconds.
fn best_of(n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn write_bench_csv(path: &Path, rows: usize) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let mut rng = ChaCha8Rng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
    let classes = cxr_data::classes::CXR_LT_CLASSES;
    let mut s = String::with_capacity(rows * 200);
    s.push_str("dicom_id,subject_id,study_id,ViewPosition,ViewCodeSequence_CodeMeaning,fpath");
    for c in &classes {
        s.push(',');
        s.push_str(c.name);
    }
    s.push('\n');
    let views = [
        ("AP", "antero-posterior"),
        ("PA", "postero-anterior"),
        ("LATERAL", "lateral"),
        ("LL", "left lateral"),
        ("", ""),
    ];
    for i in 0..rows {
        let subject = 10_000_000 + (i as u64 / 6) * 13 % 10_000_000;
        let study = 50_000_000 + i as u64 / 2;
        let dicom = format!(
            "{:08x}-{:08x}-{:08x}-{:08x}-{:08x}",
            rng.gen::<u32>(),
            rng.gen::<u32>(),
            rng.gen::<u32>(),
            rng.gen::<u32>(),
            rng.gen::<u32>()
        );
        let (v, m) = views[rng.gen_range(0..views.len())];
        let sub = subject.to_string();
        let _ = write!(
            s,
            "{dicom},{subject},s{study},{v},{m},files/p{}/p{subject}/s{study}/{dicom}.jpg",
            &sub[..2]
        );
        for c in &classes {
            let p = (c.train_count as f64 / 258_871.0).min(0.5);
            s.push_str(if rng.gen::<f64>() < p { ",1" } else { ",0" });
        }
        s.push('\n');
    }
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}

fn write_bench_jpegs(dir: &Path, n: usize) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let (w, h) = (2500u32, 3000u32);
    let mut paths = Vec::new();
    for i in 0..n {
        let p = dir.join(format!("bench_{i:03}.jpg"));
        if !p.is_file() {
            let mut rng = ChaCha8Rng::seed_from_u64(i as u64 * 0x9e37_79b9 + 1);
            let mut px = Vec::with_capacity((w * h) as usize);
            for y in 0..h {
                for x in 0..w {
                    let base = 60.0
                        + 120.0
                            * ((x as f32 / w as f32 * 6.0).sin()
                                * (y as f32 / h as f32 * 4.0).cos())
                            .abs();
                    let noise = (rng.gen::<f64>() as f32 - 0.5) * 8.0;
                    px.push((base + noise).clamp(0.0, 255.0) as u8);
                }
            }
            std::fs::write(&p, cxr_data::image::encode_jpeg_gray(&px, w, h, 95)?)?;
        }
        paths.push(p);
    }
    Ok(paths)
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    std::fs::create_dir_all(&a.work)?;
    let csv = a.work.join(format!("cxr_lt_{}.csv", a.rows));
    if !csv.is_file() {
        println!("writing {} ({} x 46)", csv.display(), a.rows);
        write_bench_csv(&csv, a.rows)?;
    }
    let jpg_dir = a.work.join("jpegs");
    println!(
        "writing {} JPEGs of 2500 x 3000 into {}",
        a.images,
        jpg_dir.display()
    );
    let jpegs = write_bench_jpegs(&jpg_dir, a.images)?;

    // The fast parser (what `read_cxr_lt` uses for files like this one) and the general polars
    // reader it falls back to; both must give the same table.
    let mut n_rows = 0;
    let n = a.repeats.max(1);
    let csv_s = best_of(n, || {
        n_rows = cxr_data::read_cxr_lt(&csv)?.len();
        Ok(())
    })?;
    if n_rows != a.rows {
        bail!("read {n_rows} rows, expected {}", a.rows);
    }
    let polars_s = best_of(n, || {
        n_rows = cxr_data::read_cxr_lt_with_polars(&csv)?.len();
        Ok(())
    })?;
    if cxr_data::read_cxr_lt(&csv)? != cxr_data::read_cxr_lt_with_polars(&csv)? {
        bail!(
            "the fast CSV parser and the polars reader disagree on {}",
            csv.display()
        );
    }
    // Sequential calls on this thread: images per second per core.
    let p = Preprocess::chexzero(224);
    // Per image, the best of `n` (the Python reference does the same): short timed windows, so
    // a burst of other work on the shared machine spoils one of them, not the whole figure.
    let mut img_s = 0.0;
    for j in &jpegs {
        img_s += best_of(n, || {
            let img = cxr_data::image::load_gray(j)?;
            std::hint::black_box(cxr_data::image::preprocess_u8(&img, &p));
            Ok(())
        })?;
    }
    let rust_ips = jpegs.len() as f64 / img_s;

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/goldens/cxr-data/bench_reference.py");
    let py = std::process::Command::new(&a.python)
        .arg(&script)
        .arg("--csv")
        .arg(&csv)
        .arg("--images")
        .arg(&jpg_dir)
        .arg("--repeats")
        .arg(n.to_string())
        .output();
    let reference: Option<serde_json::Value> = match py {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).ok(),
        Ok(o) => {
            eprintln!(
                "python reference failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("cannot run {}: {e}", a.python.display());
            None
        }
    };
    println!("| benchmark | cxr-data | reference | ratio |");
    println!("|---|---|---|---|");
    match &reference {
        Some(r) => {
            let pd_s = r["pandas_read_s"].as_f64().unwrap_or(f64::NAN);
            let pil_ips = r["pillow_images_per_s"].as_f64().unwrap_or(f64::NAN);
            println!(
                "| CSV ingest {} x 46 (s, best of {n}) | {csv_s:.3} | pandas {} {pd_s:.3} | {:.1}x faster |",
                a.rows,
                r["pandas"].as_str().unwrap_or("?"),
                pd_s / csv_s
            );
            println!(
                "| CSV ingest through polars only (s, best of {n}) | {polars_s:.3} | pandas {} {pd_s:.3} | {:.1}x faster |",
                r["pandas"].as_str().unwrap_or("?"),
                pd_s / polars_s
            );
            println!(
                "| decode + CheXzero preprocess 2500x3000 JPEG (images/s, 1 core) | {rust_ips:.2} | Pillow {} {pil_ips:.2} | {:.2}x |",
                r["pillow"].as_str().unwrap_or("?"),
                rust_ips / pil_ips
            );
        }
        None => {
            println!(
                "| CSV ingest {} x 46 (s, best of {n}) | {csv_s:.3} | - | - |",
                a.rows
            );
            println!("| CSV ingest through polars only (s, best of {n}) | {polars_s:.3} | - | - |");
            println!("| decode + CheXzero preprocess 2500x3000 JPEG (images/s, 1 core) | {rust_ips:.2} | - | - |");
        }
    }
    Ok(())
}
