//! `cargo xtask eval`: zero-shot evaluation with bootstrap CIs, scores/labels CSVs (first
//! column `id`), embeddings (.npy) and figures.
//!
//! Two forms: `--run R` evaluates a finished run from a checkpoint, into
//! `<run>/eval/<ckpt>-<split>/`; `--weights W` evaluates any CLIP weights the tool loads on
//! every image of a label file (`--dataset`, `--data-root`, `--labels`), into `--out`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use cxr_train::config::{Preprocessing, Views};

use crate::train::{parse_dataset, parse_spelling, parse_views};

#[derive(clap::Args)]
pub struct Args {
    /// A method's run folder (holding config.toml, split.json and checkpoints/).
    #[arg(long, conflicts_with = "weights", required_unless_present = "weights")]
    run: Option<PathBuf>,
    /// With --run: `best` (by validation mean AUC), `last`, or a checkpoint folder.
    #[arg(long, default_value = "best")]
    checkpoint: String,
    /// With --run: which part of the run's split: test, val or train.
    #[arg(long, default_value = "test")]
    split: String,
    /// Score every image of this label CSV instead (with --run: the run's data root), e.g. a
    /// test file with classes never seen in training (CXR-LT task 3): each class is scored
    /// from its prompts. With --weights: the label file (default: the dataset's usual file).
    #[arg(long, value_name = "CSV")]
    labels: Option<PathBuf>,
    /// Evaluate these CLIP weights without a run: a Hugging Face folder (config.json +
    /// model.safetensors), a hub id in the local cache, an OpenAI/CheXzero .pt, or one of our
    /// checkpoint folders (`<run>/<method>/checkpoints/best`). Every image is scored.
    #[arg(long)]
    weights: Option<String>,
    /// With --weights: label format, cxr-lt (default), mimic, chexpert or nih.
    #[arg(long, value_parser = parse_dataset, requires = "weights")]
    dataset: Option<cxr_data::Dataset>,
    /// With --weights: the data root image paths are relative to (default: the synthetic
    /// demo dataset).
    #[arg(long, requires = "weights")]
    data_root: Option<PathBuf>,
    /// With --weights: image preprocessing, chexzero (default) or clip; the side is the
    /// weights' input size.
    #[arg(long, value_name = "chexzero|clip", value_parser = parse_preprocess, requires = "weights")]
    preprocess: Option<Preprocessing>,
    /// With --weights: frontal (PA/AP only) or all views (default: every image).
    #[arg(long, value_name = "frontal|all", value_parser = parse_views, requires = "weights")]
    views: Option<Views>,
    /// With --weights: a prompt file (TOML if it ends in .toml, else JSON): `pairs` of
    /// positive / negative templates with one `{}` each, optional `aliases` per class
    /// (lowercase name -> other names) and `case`. Default: CheXzero's "{}" / "no {}".
    #[arg(long, value_name = "FILE", requires = "weights")]
    prompts: Option<PathBuf>,
    /// With --weights: the output folder.
    #[arg(long, requires = "weights")]
    out: Option<PathBuf>,
    /// With --weights: bootstrap resamples for the 95% CIs (0: none).
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Skip the figures (ROC, long-tail AUC, t-SNE).
    #[arg(long)]
    no_figures: bool,
    /// Evaluate on `cpu`, `cuda` or `cuda:N` (default: the run's `loop.device`; with
    /// --weights: cpu).
    #[arg(long)]
    device: Option<String>,
}

fn parse_preprocess(s: &str) -> Result<Preprocessing, String> {
    parse_spelling(s, Preprocessing::ALL, Preprocessing::as_str)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (name, ev) = match (&args.run, &args.weights) {
        (Some(run), _) => {
            let weights_only = [
                (args.dataset.is_some(), "--dataset"),
                (args.data_root.is_some(), "--data-root"),
                (args.preprocess.is_some(), "--preprocess"),
                (args.views.is_some(), "--views"),
                (args.prompts.is_some(), "--prompts"),
                (args.out.is_some(), "--out"),
            ];
            if let Some((_, flag)) = weights_only.iter().find(|(set, _)| *set) {
                bail!("{flag} goes with --weights; a run's evaluation uses the run's config");
            }
            let ev = cxr_train::run_eval::evaluate_run(
                run,
                &args.checkpoint,
                &args.split,
                !args.no_figures,
                args.labels.as_deref(),
                args.device.as_deref(),
            )?;
            let name = run
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, ev)
        }
        (None, Some(weights)) => {
            let Some(out) = args.out.clone() else {
                bail!("--weights needs --out DIR (the folder the results are written to)");
            };
            let prompts = args
                .prompts
                .as_deref()
                .map(cxr_train::run_eval::read_prompts)
                .transpose()?;
            let opts = cxr_train::run_eval::WeightsEval {
                weights: weights.clone(),
                dataset: args.dataset.unwrap_or(cxr_data::Dataset::CxrLt),
                root: args.data_root.clone(),
                labels: args.labels.clone(),
                preprocess: args.preprocess.unwrap_or(Preprocessing::CheXzero),
                views: args.views.unwrap_or(Views::All),
                prompts,
                out,
                figures: !args.no_figures,
                device: args.device.clone().unwrap_or_else(|| "cpu".into()),
                bootstrap: args.bootstrap,
            };
            let ev = cxr_train::run_eval::evaluate_weights(&opts)
                .with_context(|| format!("evaluating {weights}"))?;
            (weights.clone(), ev)
        }
        (None, None) => bail!("pass --run RUN or --weights WEIGHTS"),
    };
    println!(
        "{}",
        cxr_eval::render_markdown_table(&[(name.as_str(), &ev.results)])
    );
    println!("Written to {} (results.json, report.md, scores.csv, labels.csv, image_embeddings.npy, figures)", ev.dir.display());
    Ok(())
}
