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
    /// model.safetensors), a hub id (`owner/name[@revision]`: from the hub cache, downloaded
    /// into it if missing; honours HF_ENDPOINT, HF_HOME / HF_HUB_CACHE, HF_TOKEN and
    /// HF_HUB_OFFLINE=1 = cache only), an OpenAI/CheXzero .pt, or one of our checkpoint
    /// folders (`<run>/<method>/checkpoints/best`). Every image is scored.
    #[arg(long)]
    weights: Option<String>,
    /// With --weights: label format, cxr-lt (default), mimic, chexpert or nih.
    #[arg(long, value_parser = parse_dataset, requires = "weights")]
    dataset: Option<cxr_data::Dataset>,
    /// With --weights: the data root image paths are relative to (default: the synthetic
    /// demo dataset). With --task: the folder holding the CXR-LT 2024 files.
    #[arg(long)]
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
    /// With --weights: the output folder (with --task --run: default
    /// `<run>/eval/task<N>-<split>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The official CXR-LT 2024 evaluation: task 1 (the 40 classes), 2 (the gold-standard
    /// subset, 26 classes) or 3 (zero-shot, the 5 unseen classes), on the task's development or
    /// test file (--split development|test, default test) in --labels DIR (default:
    /// --data-root), read by column name; images under --data-root; with --weights W or --run
    /// R (its --checkpoint). Reports macro mAP (the challenge's
    /// ranking metric, scikit-learn's average_precision_score averaged over classes) beside
    /// macro AUC, with patient-level bootstrap CIs, and per-class AP and AUC.
    #[arg(long, value_name = "1|2|3", value_parser = parse_task)]
    task: Option<cxr_data::cxr_lt::CxrLtTask>,
    /// With --weights: bootstrap resamples for the 95% CIs (0: none).
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// With --weights: the image-embedding cache, keyed by the weight files' content, the
    /// preprocessing and input size and the image list, so scoring the same images again (other
    /// prompts, classes or label columns) embeds no image. Default: `$CXR_CACHE_DIR`, else
    /// `embedding-cache/` beside the --out folder.
    #[arg(long, value_name = "DIR", env = "CXR_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// With --weights: neither read nor write the image-embedding cache (wins over
    /// --cache-dir / CXR_CACHE_DIR).
    #[arg(long, requires = "weights")]
    no_cache: bool,
    /// With --weights: also write image_ids.txt (the rows of image_embeddings.npy, which holds
    /// L2-normalised image embeddings as scored), prompt_embeddings.npy (L2-normalised, one row
    /// per line of prompts.tsv) and prompts.tsv (class, polarity, text), to re-score in numpy
    /// (scripts/examples/rescore_from_embeddings.py).
    #[arg(long, requires = "weights")]
    save_embeddings: bool,
    /// Skip the figures (ROC, long-tail AUC, t-SNE).
    #[arg(long)]
    no_figures: bool,
    /// Evaluate on `cpu`, `cuda` or `cuda:N` (default: the run's `loop.device`; with
    /// --weights: cpu).
    #[arg(long)]
    device: Option<String>,
    /// With --run: evaluate in f32 or bf16 mixed precision instead of the run's
    /// `loop.precision` (the weights stay f32). --weights and --task evaluate our checkpoints
    /// in their run's precision, other weights in f32.
    #[arg(long, value_name = "f32|bf16", value_parser = crate::train::parse_precision)]
    precision: Option<cxr_train::config::Precision>,
}

fn parse_preprocess(s: &str) -> Result<Preprocessing, String> {
    parse_spelling(s, Preprocessing::ALL, Preprocessing::as_str)
}

fn parse_task(s: &str) -> Result<cxr_data::cxr_lt::CxrLtTask, String> {
    s.parse().map_err(|e: cxr_data::DataError| e.to_string())
}

/// `--task N`: the official CXR-LT 2024 evaluation of --weights or of a run's checkpoint.
fn run_task(args: &Args, task: cxr_data::cxr_lt::CxrLtTask) -> anyhow::Result<()> {
    use cxr_data::cxr_lt::{CxrLtSplit, SOURCE};
    let split: CxrLtSplit = args
        .split
        .parse()
        .with_context(|| format!("--split {} with --task", args.split))?;
    let Some(root) = args.data_root.clone() else {
        bail!(
            "--task needs --data-root DIR: the MIMIC-CXR-JPG root the image paths are relative \
             to (and, without --labels DIR, the folder holding the CXR-LT 2024 files: {SOURCE})"
        );
    };
    if args.dataset.is_some() {
        bail!("--task reads the CXR-LT 2024 task files: drop --dataset");
    }
    if args.labels.as_ref().is_some_and(|l| !l.is_dir()) {
        bail!(
            "with --task, --labels is the folder holding the CXR-LT 2024 files (cxr-lt-2024/), \
             not a file; the task picks its own file there"
        );
    }
    let (weights, out) = match (&args.run, &args.weights) {
        (Some(run), _) => {
            let ckpt = match args.checkpoint.as_str() {
                "best" => cxr_train::checkpoint::best_dir(run),
                "last" => cxr_train::checkpoint::latest_good(run)?.with_context(|| {
                    format!("{} has no complete, intact checkpoint", run.display())
                })?,
                other => PathBuf::from(other),
            };
            let out = args.out.clone().unwrap_or_else(|| {
                run.join("eval")
                    .join(format!("task{}-{split}", task.number()))
            });
            (ckpt.display().to_string(), out)
        }
        (None, Some(w)) => {
            let Some(out) = args.out.clone() else {
                bail!("--weights needs --out DIR (the folder the results are written to)");
            };
            (w.clone(), out)
        }
        (None, None) => bail!("--task needs --weights WEIGHTS or --run RUN"),
    };
    let base = weights_eval(
        args,
        &weights,
        cxr_data::Dataset::CxrLt,
        Some(root),
        None,
        out,
    )?;
    let ev = cxr_train::task_eval::evaluate_task(task, split, args.labels.as_deref(), &base)
        .with_context(|| format!("CXR-LT 2024 {task} ({split}) of {weights}"))?;
    print!(
        "{}",
        cxr_train::task_eval::render_task_headline(&ev.summary)
    );
    println!("{}", cxr_train::task_eval::render_task_classes(&ev.results));
    println!(
        "Written to {} (results.json with cxr_lt_task, report.md, scores.csv, labels.csv, \
         task{}-{split}-labels.csv: the rows and classes scored)",
        ev.dir.display(),
        task.number()
    );
    Ok(())
}

/// The evaluation of `weights` (a hub id is downloaded into the hub cache first) with the
/// flags `--weights` and `--task` share: preprocessing, views, prompts, figures, device and
/// bootstrap.
fn weights_eval(
    args: &Args,
    weights: &str,
    dataset: cxr_data::Dataset,
    root: Option<PathBuf>,
    labels: Option<PathBuf>,
    out: PathBuf,
) -> anyhow::Result<cxr_train::run_eval::WeightsEval> {
    crate::hub::fetch_if_hub_id(weights)?;
    let prompts = args
        .prompts
        .as_deref()
        .map(cxr_train::run_eval::read_prompts)
        .transpose()?;
    Ok(cxr_train::run_eval::WeightsEval {
        weights: weights.to_owned(),
        dataset,
        root,
        labels,
        preprocess: args.preprocess.unwrap_or(Preprocessing::CheXzero),
        views: args.views.unwrap_or(Views::All),
        prompts,
        out,
        figures: !args.no_figures,
        device: args.device.clone().unwrap_or_else(|| "cpu".into()),
        bootstrap: args.bootstrap,
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.precision.is_some() && (args.run.is_none() || args.task.is_some()) {
        bail!(
            "--precision goes with --run (without --task); --weights and --task evaluate a run's \
             checkpoint in its run's `loop.precision`, other weights in f32"
        );
    }
    if let Some(task) = args.task {
        return run_task(&args, task);
    }
    let (name, ev) = match (&args.run, &args.weights) {
        (Some(run), _) => {
            let weights_only = [
                (args.dataset.is_some(), "--dataset"),
                (args.data_root.is_some(), "--data-root"),
                (args.preprocess.is_some(), "--preprocess"),
                (args.views.is_some(), "--views"),
                (args.prompts.is_some(), "--prompts"),
                (args.out.is_some(), "--out"),
                (args.save_embeddings, "--save-embeddings"),
            ];
            if let Some((_, flag)) = weights_only.iter().find(|(set, _)| *set) {
                bail!("{flag} goes with --weights; a run's evaluation uses the run's config");
            }
            let ev = cxr_train::run_eval::evaluate_run_as(
                run,
                &args.checkpoint,
                &args.split,
                !args.no_figures,
                args.labels.as_deref(),
                args.device.as_deref(),
                args.precision,
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
            let opts = weights_eval(
                &args,
                weights,
                args.dataset.unwrap_or(cxr_data::Dataset::CxrLt),
                args.data_root.clone(),
                args.labels.clone(),
                out,
            )?;
            let emb_opts = cxr_train::run_eval::EmbeddingOptions {
                cache: (!args.no_cache).then(|| {
                    args.cache_dir
                        .clone()
                        .unwrap_or_else(|| cxr_train::embed_cache::default_dir(&opts.out))
                }),
                save: args.save_embeddings,
            };
            // The cache's hit or store is logged by the library.
            let (ev, _) = cxr_train::run_eval::evaluate_weights_with(&opts, &emb_opts)
                .with_context(|| format!("evaluating {weights}"))?;
            // Every class against the CXR-LT vocabulary, in results.json and on the console:
            // renamed ones (NIH "Effusion" -> "Pleural Effusion") and any unmapped one.
            let names: Vec<&str> = ev.results.classes.iter().map(|c| c.name.as_str()).collect();
            let mapping = cxr_data::classes::map_to_cxr_lt(&names);
            cxr_train::task_eval::annotate_results(&ev.dir, "class_mapping", &mapping)?;
            if mapping.renamed().next().is_some() || !mapping.unmapped.is_empty() {
                print!(
                    "Classes against the CXR-LT vocabulary:\n{}",
                    mapping.describe()
                );
            }
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
