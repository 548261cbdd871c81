//! `cargo xtask synth`: write the synthetic MIMIC-CXR-JPG / CXR-LT 2024 dataset.

use std::path::PathBuf;

use anyhow::Context;

/// Generate a synthetic dataset in the real formats (same seed, same bytes).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output folder (created; existing files are overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of patients (each has 1-4 studies of 1-3 images).
    #[arg(long, default_value_t = 400)]
    pub patients: usize,
    /// RNG seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Side of the square JPEGs in pixels.
    #[arg(long, default_value_t = 128)]
    pub image_size: u32,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = cxr_data::synth::SynthConfig {
        patients: args.patients,
        seed: args.seed,
        image_size: args.image_size,
        ..Default::default()
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
