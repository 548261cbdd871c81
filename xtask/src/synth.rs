//! `cargo xtask synth`: write the synthetic MIMIC-CXR-JPG / CXR-LT 2024 dataset, or draw
//! synthetic images for the rows of a real CheXpert / NIH ChestX-ray14 label file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cxr_data::Dataset;

/// Generate a synthetic dataset in the real formats (same seed, same bytes).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output folder (created; existing files are overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Format: cxr-lt (labels and images of our own), or chexpert / nih (a sample of patients
    /// of a real label file, see --labels, with an image drawn per row).
    #[arg(long, default_value = "cxr-lt")]
    pub dataset: Dataset,
    /// chexpert / nih: the real label file (plain or .gz) to sample patients from [default:
    /// the torchxrayvision copy under crates/cxr-data/tests/fixtures/xrv/].
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Number of patients [default: 400 for cxr-lt (each has 1-4 studies of 1-3 images), 60
    /// for chexpert / nih (all rows of each are kept)].
    #[arg(long)]
    pub patients: Option<usize>,
    /// RNG seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Side of the square images in pixels.
    #[arg(long, default_value_t = 128)]
    pub image_size: u32,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.dataset {
        Dataset::CxrLt => {
            anyhow::ensure!(
                args.labels.is_none(),
                "--labels is for --dataset chexpert / nih: cxr-lt draws labels of its own"
            );
            cxr_lt(&args)
        }
        Dataset::CheXpert | Dataset::Nih => from_labels(&args),
        Dataset::Mimic => anyhow::bail!(
            "--dataset mimic: use --dataset cxr-lt, which also writes the MIMIC-CXR-JPG metadata \
             and split files"
        ),
    }
}

fn cxr_lt(args: &Args) -> anyhow::Result<()> {
    let defaults = cxr_data::synth::SynthConfig::default();
    let cfg = cxr_data::synth::SynthConfig {
        patients: args.patients.unwrap_or(defaults.patients),
        seed: args.seed,
        image_size: args.image_size,
        ..defaults
    };
    let t = std::time::Instant::now();
    let s = cxr_data::synth::generate(&args.out, &cfg)
        .with_context(|| format!("generating the synthetic dataset in {}", args.out.display()))?;
    println!(
        "wrote {} images ({} frontal), {} studies, {} patients to {} in {:.1}s",
        s.images,
        s.frontal_images,
        s.studies,
        s.patients,
        args.out.display(),
        t.elapsed().as_secs_f64()
    );
    println!("labels: {}", s.labels_csv.display());
    println!("{:<28} {:>8} {:>8}", "class", "images", "frontal");
    for (k, c) in cxr_data::classes::CXR_LT_CLASSES.iter().enumerate() {
        println!(
            "{:<28} {:>8} {:>8}",
            c.name, s.class_counts[k], s.frontal_class_counts[k]
        );
    }
    Ok(())
}

/// The committed copy of the dataset's real label file (a dev tool may look in the source tree).
fn fixture_labels(dataset: Dataset) -> anyhow::Result<PathBuf> {
    let name = match dataset {
        Dataset::CheXpert => "chexpert_train.csv.gz",
        _ => "Data_Entry_2017_v2020.csv.gz",
    };
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = xtask
        .parent()
        .unwrap_or(xtask)
        .join("crates/cxr-data/tests/fixtures/xrv")
        .join(name);
    anyhow::ensure!(
        p.is_file(),
        "no --labels given and the committed fixture {} is missing: pass the real label file \
         with --labels",
        p.display()
    );
    Ok(p)
}

fn from_labels(args: &Args) -> anyhow::Result<()> {
    let labels = match &args.labels {
        Some(p) => p.clone(),
        None => fixture_labels(args.dataset)?,
    };
    let defaults = cxr_data::synth::LabelledSynthConfig::default();
    let cfg = cxr_data::synth::LabelledSynthConfig {
        patients: args.patients.unwrap_or(defaults.patients),
        seed: args.seed,
        image_size: args.image_size,
    };
    let t = std::time::Instant::now();
    let s = cxr_data::synth::generate_from_labels(args.dataset, &labels, &args.out, &cfg)
        .with_context(|| {
            format!(
                "drawing images for {} in {}",
                labels.display(),
                args.out.display()
            )
        })?;
    println!(
        "wrote {} images of {} patients ({:?} rows of {}) to {} in {:.1}s",
        s.images,
        s.patients,
        args.dataset,
        labels.display(),
        args.out.display(),
        t.elapsed().as_secs_f64()
    );
    println!("labels: {}", s.labels_csv.display());
    println!("{:<28} {:>8}", "class", "images");
    for (name, n) in &s.class_counts {
        println!("{name:<28} {n:>8}");
    }
    Ok(())
}
