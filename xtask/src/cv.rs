//! `cargo xtask cv`: K-fold cross-validation of one or more methods, grouped by patient.
//!
//! Folds are independent: `--fold I` runs one fold, so folds can fan out as an array job
//! (`scripts/slurm/cv-array.sh`); `--aggregate DIR` combines the finished folds into the
//! paper's Table 2 layout (mean ± std of Total / Base / Rare AUC).

use std::path::PathBuf;

use cxr_train::cv::{self, FoldScheme};
use cxr_train::Method;

use crate::train::{methods_or_all, resolve_config, utc_stamp, ConfigArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Method(s); repeat for several. Default: baseline, meta-labels and cxr-cml.
    #[arg(long = "method", value_name = "baseline|meta-labels|cxr-cml")]
    methods: Vec<Method>,
    /// Number of folds (the paper: 5).
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Run only fold I (0-based); the others are left for other jobs.
    #[arg(long, value_name = "I")]
    fold: Option<usize>,
    /// `patient` (grouped by patient, stratified; default) or `label-string` (the released
    /// code's StratifiedKFold over the label string, not patient-grouped; for parity runs).
    #[arg(long, default_value = "patient", value_parser = parse_scheme)]
    scheme: FoldScheme,
    /// Output folder (default: runs/cv-<preset>-<UTC time>). Finished folds are skipped.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only combine the finished folds under DIR and print the table (a --seeds N study: each
    /// seed's folds, then the seeds).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["fold", "out"])]
    aggregate: Option<PathBuf>,
}

fn parse_scheme(s: &str) -> Result<FoldScheme, String> {
    match s {
        "patient" => Ok(FoldScheme::Patient),
        "label-string" => Ok(FoldScheme::LabelString),
        other => Err(format!("unknown scheme `{other}`: patient or label-string")),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let summary = match &args.aggregate {
        Some(dir) => match cxr_train::seeds::read_summary(dir)? {
            // A `--seeds N` study: each seed's folds, then the seeds.
            Some(seeds) => return print_seeds(&cxr_train::seeds::aggregate_cv(dir, &seeds)?),
            None => cv::aggregate(dir)?,
        },
        None => {
            let cfg = resolve_config(&args.config)?;
            crate::train::require_weights(&args.config, &cfg)?;
            let out = args.out.clone().unwrap_or_else(|| {
                PathBuf::from("runs").join(format!("cv-{}-{}", args.config.preset, utc_stamp()))
            });
            let methods = methods_or_all(&args.methods, &cfg);
            if cfg.seeds > 1 {
                let s = cxr_train::seeds::run_cv(
                    &cfg,
                    &methods,
                    args.folds,
                    args.scheme,
                    args.fold,
                    &out,
                )?;
                println!(
                    "Run folder: {} (seeds.json, report.md, seed-<i>/)",
                    out.display()
                );
                return print_seeds(&s);
            }
            let s = cv::run_cv(&cfg, &methods, args.folds, args.scheme, args.fold, &out)?;
            println!("Run folder: {}", out.display());
            s
        }
    };
    println!(
        "\nZero-shot macro AUC, mean ± std over {} finished fold(s) {:?}:\n",
        summary.folds_found.len(),
        summary.folds_found
    );
    println!("{}", summary.table());
    Ok(())
}

/// The table across seeds of a `--seeds N` study (each seed: its mean over folds).
fn print_seeds(s: &cxr_train::seeds::SeedsSummary) -> anyhow::Result<()> {
    println!("\n{}", cxr_train::seeds::table(s));
    Ok(())
}
