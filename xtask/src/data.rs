//! `cargo xtask data summary|cache|preprocess|bench`: inspect label files, build the image
//! cache, dump one preprocessed tensor, and benchmark ingest against pandas / Pillow (the last
//! runs cxr-data's `bench_ingest` example).

use std::path::PathBuf;
use std::time::Instant;

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
    /// Time CSV ingest and JPEG decode + CheXzero preprocessing against pandas / Pillow
    /// (cxr-data's `bench_ingest` example; `--help` shows its flags).
    #[command(disable_help_flag = true)]
    Bench(crate::bench::ExampleArgs),
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

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Summary(a) => summary(a),
        Command::Cache(a) => cache(a),
        Command::Preprocess(a) => preprocess(a),
        Command::Bench(a) => crate::bench::run_example("cxr-data", "bench_ingest", a),
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
