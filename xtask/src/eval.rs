//! `cargo xtask eval`: zero-shot evaluation of a finished run from a checkpoint, with bootstrap
//! CIs, scores/labels CSVs, embeddings (.npy) and figures, into `<run>/eval/<ckpt>-<split>/`.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A method's run folder (holding config.toml, split.json and checkpoints/).
    #[arg(long)]
    run: PathBuf,
    /// `best` (by validation mean AUC), `last`, or a checkpoint folder.
    #[arg(long, default_value = "best")]
    checkpoint: String,
    /// Which part of the run's split: test, val or train.
    #[arg(long, default_value = "test")]
    split: String,
    /// Score every image of this label CSV instead (same data root), e.g. a test file with
    /// classes never seen in training (CXR-LT task 3): each class is scored from its prompts.
    #[arg(long, value_name = "CSV")]
    labels: Option<PathBuf>,
    /// Skip the figures (ROC, long-tail AUC, t-SNE).
    #[arg(long)]
    no_figures: bool,
    /// Evaluate on `cpu`, `cuda` or `cuda:N` (default: the run's `loop.device`).
    #[arg(long)]
    device: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let ev = cxr_train::run_eval::evaluate_run(
        &args.run,
        &args.checkpoint,
        &args.split,
        !args.no_figures,
        args.labels.as_deref(),
        args.device.as_deref(),
    )?;
    let name = args
        .run
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    println!(
        "{}",
        cxr_eval::render_markdown_table(&[(name.as_str(), &ev.results)])
    );
    println!("Written to {} (results.json, report.md, scores.csv, labels.csv, image_embeddings.npy, figures)", ev.dir.display());
    Ok(())
}
