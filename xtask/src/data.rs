//! `cargo xtask data summary|cache|preprocess|bench`: inspect label files, build the image
//! cache, dump one preprocessed tensor, and benchmark ingest against pandas / Pillow.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use cxr_data::cache::{CacheOptions, ImageCache};
use cxr_data::image::{Preprocess, PreprocessMode};
use cxr_data::{load_table, Dataset, Summary, ViewFilter};

/// Dataset tools.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Rows, patients, studies, views and per-class positive / negative / uncertain counts.
    Summary(SummaryArgs),
    /// Decode and preprocess every image once into a resumable u8 cache.
    Cache(CacheArgs),
    /// Write one image's preprocessed float32 tensor (3 x S x S) as .npy.
    Preprocess(PreprocessArgs),
    /// Time CSV ingest and JPEG decode + CheXzero preprocessing against pandas / Pillow.
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct Source {
    /// mimic, cxr-lt, chexpert or nih.
    #[arg(long)]
    pub dataset: Dataset,
    /// Data root; image paths in the label file are relative to it.
    #[arg(long)]
    pub root: PathBuf,
    /// Label file (default: the dataset's usual file name under --root, or its .gz).
    #[arg(long)]
    pub labels: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub source: Source,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    #[command(flatten)]
    pub source: Source,
    /// Cache folder (resumed if it already holds part of this cache).
    #[arg(long)]
    pub cache_dir: PathBuf,
    #[arg(long, value_enum, default_value_t = Mode::Chexzero)]
    pub mode: Mode,
    /// Output side length.
    #[arg(long, default_value_t = 224)]
    pub size: u32,
    /// Views to keep: `frontal` (PA, AP), `all`, or a comma list such as `PA,AP,LL`.
    #[arg(long, default_value = "frontal")]
    pub views: String,
    /// Fail on the first missing or corrupt image instead of skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Where to list skipped images (`skipped.tsv`; default: the cache folder).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct PreprocessArgs {
    #[arg(long)]
    pub image: PathBuf,
    #[arg(long, value_enum, default_value_t = Mode::Chexzero)]
    pub mode: Mode,
    #[arg(long, default_value_t = 224)]
    pub size: u32,
    /// Output .npy (float32, shape 3 x size x size, normalised as the mode prescribes).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    Chexzero,
    Clip,
}

impl From<Mode> for PreprocessMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Chexzero => PreprocessMode::CheXzero,
            Mode::Clip => PreprocessMode::Clip,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Rows of the synthetic CXR-LT label file (46 columns).
    #[arg(long, default_value_t = 250_000)]
    pub rows: usize,
    /// Number of 2500 x 3000 grayscale JPEGs to decode (about 1.5 MB each, like MIMIC-CXR-JPG).
    #[arg(long, default_value_t = 12)]
    pub images: usize,
    /// Scratch folder for the generated inputs.
    #[arg(long, default_value = "target/bench-data")]
    pub work: PathBuf,
    /// Timed passes per benchmark, on both sides; the best one counts (the machine is shared,
    /// so the fastest pass is the least disturbed one).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Python with pandas and Pillow for the reference timings (skipped if it fails).
    #[arg(long, default_value = "python3")]
    pub python: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Summary(a) => summary(a),
        Command::Cache(a) => cache(a),
        Command::Preprocess(a) => preprocess(a),
        Command::Bench(a) => bench(a),
    }
}

fn summary(a: SummaryArgs) -> anyhow::Result<()> {
    let t = load_table(a.source.dataset, &a.source.root, a.source.labels.as_deref())?;
    let s = Summary::of(&t);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!(
        "rows {}  patients {}  studies {}",
        s.rows, s.patients, s.studies
    );
    let views: Vec<String> = s
        .views
        .iter()
        .map(|(v, n)| format!("{}: {n}", if v.is_empty() { "(none)" } else { v }))
        .collect();
    println!("views  {}", views.join(", "));
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9}",
        "class", "positive", "negative", "uncertain", "missing"
    );
    for c in &s.classes {
        println!(
            "{:<28} {:>9} {:>9} {:>9} {:>9}",
            c.name, c.positive, c.negative, c.uncertain, c.missing
        );
    }
    if !s.unknown_classes.is_empty() {
        println!(
            "classes outside the CXR-LT vocabulary: {}",
            s.unknown_classes.join(", ")
        );
    }
    Ok(())
}

fn view_filter(spec: &str) -> ViewFilter {
    match spec.to_ascii_lowercase().as_str() {
        "frontal" => ViewFilter::frontal(),
        "all" => ViewFilter::all(),
        _ => {
            let v: Vec<&str> = spec
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            ViewFilter::only(&v)
        }
    }
}

fn cache(a: CacheArgs) -> anyhow::Result<()> {
    let mut t = load_table(a.source.dataset, &a.source.root, a.source.labels.as_deref())?;
    let removed = t.filter_views(&view_filter(&a.views));
    println!(
        "{} images after the view filter ({removed} removed)",
        t.len()
    );
    let p = Preprocess {
        mode: a.mode.into(),
        size: a.size,
    };
    let start = Instant::now();
    let c = ImageCache::build_with(
        &a.source.root,
        &t.records,
        &p,
        &a.cache_dir,
        CacheOptions {
            progress: true,
            strict: a.strict,
            shard_size: 0,
        },
    )?;
    let list = a
        .run_dir
        .as_deref()
        .unwrap_or(&a.cache_dir)
        .join("skipped.tsv");
    if let Some(dir) = list.parent() {
        std::fs::create_dir_all(dir)?;
    }
    c.write_skipped(&list)?;
    println!(
        "cached {} images in {:.1}s; {} skipped (listed in {})",
        c.len() - c.skipped().len(),
        start.elapsed().as_secs_f64(),
        c.skipped().len(),
        list.display()
    );
    Ok(())
}

fn preprocess(a: PreprocessArgs) -> anyhow::Result<()> {
    let img = cxr_data::image::load_gray(&a.image)?;
    let p = Preprocess {
        mode: a.mode.into(),
        size: a.size,
    };
    let x = cxr_data::image::normalise(&cxr_data::image::preprocess_u8(&img, &p), p.mode);
    let s = a.size as usize;
    cxr_data::npy::write_f32(&a.out, &[3, s, s], &x)?;
    println!("wrote {} (3 x {s} x {s}, {:?})", a.out.display(), p.mode);
    Ok(())
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

/// xorshift64*: enough randomness for benchmark inputs without another dependency.
struct Xs(u64);
impl Xs {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn write_bench_csv(path: &Path, rows: usize) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let mut rng = Xs(0x9e37_79b9_7f4a_7c15);
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
            rng.u32(),
            rng.u32(),
            rng.u32(),
            rng.u32(),
            rng.u32()
        );
        let (v, m) = views[(rng.next() % views.len() as u64) as usize];
        let sub = subject.to_string();
        let _ = write!(
            s,
            "{dicom},{subject},s{study},{v},{m},files/p{}/p{subject}/s{study}/{dicom}.jpg",
            &sub[..2]
        );
        for c in &classes {
            let p = (c.train_count as f64 / 258_871.0).min(0.5);
            s.push_str(if rng.unit() < p { ",1" } else { ",0" });
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
            let mut rng = Xs(i as u64 * 0x9e37_79b9 + 1);
            let mut px = Vec::with_capacity((w * h) as usize);
            for y in 0..h {
                for x in 0..w {
                    let base = 60.0
                        + 120.0
                            * ((x as f32 / w as f32 * 6.0).sin()
                                * (y as f32 / h as f32 * 4.0).cos())
                            .abs();
                    let noise = (rng.unit() as f32 - 0.5) * 8.0;
                    px.push((base + noise).clamp(0.0, 255.0) as u8);
                }
            }
            std::fs::write(&p, cxr_data::image::encode_jpeg_gray(&px, w, h, 95)?)?;
        }
        paths.push(p);
    }
    Ok(paths)
}

fn bench(a: BenchArgs) -> anyhow::Result<()> {
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
        .join("../scripts/goldens/cxr-data/bench_reference.py");
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
            eprintln!("cannot run {}: {e}", a.python);
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
