//! `cargo xtask synth`: write the synthetic MIMIC-CXR-JPG / CXR-LT 2024 dataset, or draw
//! synthetic images for the rows of a real CheXpert / NIH ChestX-ray14 label file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cxr_data::Dataset;

/// Generate a synthetic dataset in the real formats (same seed, same bytes).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output folder (created; existing files are overwritten).
    #[arg(long, required_unless_present = "contact_sheet")]
    pub out: Option<PathBuf>,
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
    /// Instead of a dataset, write a PNG contact sheet of one example per class (the chest of
    /// --seed drawn at --image-size with that class's sign alone, as JPEG, preprocessed like
    /// training to --input-size) above its difference from the same chest without the sign.
    #[arg(long, value_name = "PNG", conflicts_with_all = ["out", "labels", "patients"])]
    pub contact_sheet: Option<PathBuf>,
    /// Contact sheet: the model's input side the examples are preprocessed to (CheXzero
    /// pipeline; the demo's model.image_size is 64).
    #[arg(long, default_value_t = 64, requires = "contact_sheet")]
    pub input_size: u32,
    /// Contact sheet: each input pixel drawn as ZOOM x ZOOM sheet pixels (1 to 8).
    #[arg(long, default_value_t = 2, requires = "contact_sheet")]
    pub zoom: u32,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(png) = &args.contact_sheet {
        return contact_sheet(&args, png);
    }
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

fn contact_sheet(args: &Args, png: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.dataset == Dataset::CxrLt,
        "--contact-sheet draws the CXR-LT classes: drop --dataset {}",
        args.dataset
    );
    anyhow::ensure!(
        (8..=1024).contains(&args.input_size),
        "--input-size {} out of range 8..=1024 (the demo model's input is 64)",
        args.input_size
    );
    let pre = cxr_data::image::Preprocess::chexzero(args.input_size);
    let names =
        cxr_data::synth::write_contact_sheet(png, args.seed, args.image_size, &pre, args.zoom)
            .with_context(|| format!("writing the contact sheet {}", png.display()))?;
    println!(
        "wrote {} ({} classes drawn at {} px, seen at {} px; rows of 8 in this order, each tile \
         the example above its difference from Normal, x4):",
        png.display(),
        names.len(),
        args.image_size,
        args.input_size
    );
    for row in names.chunks(8) {
        println!("  {}", row.join(" | "));
    }
    Ok(())
}

fn out_dir(args: &Args) -> anyhow::Result<&Path> {
    args.out
        .as_deref()
        .context("--out is required: the folder to write the dataset to")
}

fn cxr_lt(args: &Args) -> anyhow::Result<()> {
    let out = out_dir(args)?;
    let defaults = cxr_data::synth::SynthConfig::default();
    let cfg = cxr_data::synth::SynthConfig {
        patients: args.patients.unwrap_or(defaults.patients),
        seed: args.seed,
        image_size: args.image_size,
        ..defaults
    };
    let t = std::time::Instant::now();
    let s = cxr_data::synth::generate(out, &cfg)
        .with_context(|| format!("generating the synthetic dataset in {}", out.display()))?;
    println!(
        "wrote {} images ({} frontal), {} studies, {} patients to {} in {:.1}s",
        s.images,
        s.frontal_images,
        s.studies,
        s.patients,
        out.display(),
        t.elapsed().as_secs_f64()
    );
    println!("labels: {}", s.labels_csv.display());
    // A set too small for a development or test image gets no task files, with a warning.
    match cxr_data::cxr_lt::synth::write_task_files(out, cfg.seed) {
        Err(e) => eprintln!("warning: no CXR-LT 2024 task files: {e}"),
        Ok(tasks) => println!(
            "CXR-LT 2024 task files (development {} images, test {}, gold standard {} / {}; \
         `cargo xtask eval --task 1|2|3 --data-root {}`): {}",
            tasks.development_images,
            tasks.test_images,
            tasks.gold_images.0,
            tasks.gold_images.1,
            out.display(),
            tasks
                .files
                .iter()
                .filter_map(|f| f.file_name())
                .map(|f| f.to_string_lossy())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
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
    let out = out_dir(args)?;
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
    let s = cxr_data::synth::generate_from_labels(args.dataset, &labels, out, &cfg).with_context(
        || {
            format!(
                "drawing images for {} in {}",
                labels.display(),
                out.display()
            )
        },
    )?;
    println!(
        "wrote {} images of {} patients ({:?} rows of {}) to {} in {:.1}s",
        s.images,
        s.patients,
        args.dataset,
        labels.display(),
        out.display(),
        t.elapsed().as_secs_f64()
    );
    println!("labels: {}", s.labels_csv.display());
    println!("{:<28} {:>8}", "class", "images");
    for (name, n) in &s.class_counts {
        println!("{name:<28} {n:>8}");
    }
    Ok(())
}
