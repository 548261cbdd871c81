//! `cargo xtask ablation`: the paper's ablation grid (baseline, + meta labels, CXR-CML with
//! nu in {1, 6, Gaussian} at batch 32, and batch 8 / 16 / 64) on one dataset and split.

use std::path::PathBuf;

use crate::train::{resolve_config, utc_stamp, ConfigArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Output folder (default: runs/ablation-<preset>-<UTC time>); finished variants are reused.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = resolve_config(&args.config)?;
    crate::train::require_weights(&args.config, &cfg)?;
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("ablation-{}-{}", args.config.preset, utc_stamp()))
    });
    if cfg.seeds > 1 {
        let s = cxr_train::seeds::run_ablation(&cfg, &out)?;
        println!("{}", cxr_train::seeds::table(&s));
        println!(
            "Run folder: {} (seeds.json, report.md, seed-<i>/ each with ablation.json, runs/)",
            out.display()
        );
        return Ok(());
    }
    let rows = cxr_train::ablation::run_ablation(&cfg, &out)?;
    println!("{}", cxr_train::ablation::render(&rows));
    println!(
        "Run folder: {} (ablation.json, ablation.md, runs/)",
        out.display()
    );
    Ok(())
}
