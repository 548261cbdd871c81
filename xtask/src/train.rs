//! `cargo xtask train`: build a config from a preset, a TOML file and flags, then train and
//! evaluate one or more methods and print the macro-AUC table.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cxr_train::config::{Precision, Uncertain, Views};
use cxr_train::seeds::{seed_dir, SEEDS_FILE};
use cxr_train::{Method, TrainConfig};

/// The flags that build a [`TrainConfig`] (shared by `train` and `cv`).
#[derive(clap::Args)]
pub struct ConfigArgs {
    /// Start from a named preset: demo (synthetic data, tiny CLIP, minutes on a CPU), paper
    /// (ViT-B/32, the paper's values) or released-code (the released implementation's values).
    #[arg(long, default_value = "demo")]
    pub preset: String,
    /// A TOML config file applied on top of the preset: any subset of the keys that
    /// `--print-config` shows (documented in crates/cxr-train/src/config.rs).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Label format of --data-root: cxr-lt (CXR-LT 2024, default), mimic (MIMIC-CXR-JPG's
    /// CheXpert labels), chexpert or nih (ChestX-ray14). CheXpert and NIH have no reports, so
    /// they train meta-labels and cxr-cml only (`data.dataset`).
    #[arg(long, value_parser = parse_dataset)]
    dataset: Option<cxr_data::Dataset>,
    /// Dataset root: MIMIC-CXR-JPG (the folder holding files/), or the CheXpert / NIH folder
    /// the label file's image paths are relative to. Default: the synthetic demo dataset.
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Label CSV (default: the dataset's usual file under --data-root; CXR-LT:
    /// train_labeled.csv).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// MIMIC-CXR reports folder for the baseline's report text (default: the data root).
    #[arg(long)]
    reports_root: Option<PathBuf>,
    /// Which images of a study are used: frontal (PA and AP only, the paper; the preset's
    /// default) or all views (`data.views`).
    #[arg(long, value_name = "frontal|all", value_parser = parse_views)]
    views: Option<Views>,
    /// Uncertain (-1) labels: negative (default, CheXzero), positive, or ignore (not named in
    /// the meta-label text and left out of the AUCs) (`data.uncertain`).
    #[arg(long, value_name = "negative|positive|ignore", value_parser = parse_uncertain)]
    uncertain: Option<Uncertain>,
    /// Initial weights: a folder with config.json + model.safetensors, a Hugging Face id in
    /// the local hub cache (e.g. openai/clip-vit-base-patch32), or an OpenAI/CheXzero .pt.
    #[arg(long)]
    weights: Option<String>,
    /// What the initial weights are called in the table (`model.weights_name`): NAME gives
    /// the rows "NAME (as released)" and "NAME + meta labels" (paper / released-code presets:
    /// CheXzero). Say so when --weights is not CheXzero, e.g. --weights-name "OpenAI CLIP".
    #[arg(long, value_name = "NAME")]
    weights_name: Option<String>,
    /// Training epochs (`loop.epochs`; demo 8, paper 10).
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per optimiser step (`loop.batch_size`; paper 32).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Seed of everything random: synthetic data, split, initial weights, batch order,
    /// mixture fits (`seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Repeat the whole job with N seeds (--seed, --seed + 1, ...) on the split of --seed,
    /// each in <out>/seed-<i>/; seeds.json and report.md give mean ± std (n - 1) across seeds
    /// and each method's paired difference from the first. 1: one run, as without the flag
    /// (`seeds`; default 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    seeds: Option<u64>,
    /// Peak learning rate (`optim.lr`).
    #[arg(long)]
    lr: Option<f64>,
    /// Train on `cpu`, `cuda` or `cuda:N` (CUDA: build xtask with `--features cuda`).
    #[arg(long)]
    device: Option<String>,
    /// Arithmetic of the model: f32 (the presets' default) or bf16 mixed precision (bf16
    /// matmuls and activations; f32 weights, optimiser state, losses and mixture fit), in
    /// training and evaluation (`loop.precision`).
    #[arg(long, value_name = "f32|bf16", value_parser = parse_precision)]
    precision: Option<Precision>,
    /// Synthetic demo: number of patients to generate.
    #[arg(long)]
    synth_patients: Option<usize>,
    /// Any config key, e.g. `--set mixture.nu=1 --set loss.mining="batch-hard"`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Hide progress bars.
    #[arg(long)]
    no_progress: bool,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Method(s) to run; repeat for several: baseline (CLIP trained on report text),
    /// meta-labels, cxr-cml, zero-shot (no training: the initial weights scored as they are).
    /// Default with --weights: zero-shot, meta-labels and cxr-cml (the paper's Table 2, all
    /// from those weights); without: baseline, meta-labels and cxr-cml.
    #[arg(long = "method", value_name = "baseline|meta-labels|cxr-cml|zero-shot")]
    pub methods: Vec<Method>,
    /// Output folder (default: runs/<preset>-<UTC time>). Must not hold results already.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue an interrupted run in --out: finished methods are kept, the others resume
    /// from their newest complete checkpoint (`latest`, the only value for now).
    #[arg(long, value_name = "latest", value_parser = ["latest"], requires = "out")]
    pub resume: Option<String>,
    /// Print the resolved config and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// Resolve preset + file + flags into one validated config.
pub fn resolve_config(args: &ConfigArgs) -> anyhow::Result<TrainConfig> {
    let mut cfg = TrainConfig::preset(&args.preset)?;
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        cfg = TrainConfig::from_toml_over(&cfg, &text)
            .with_context(|| format!("in {}", path.display()))?;
    }
    if let Some(v) = args.dataset {
        cfg.data.dataset = v;
    }
    if let Some(v) = &args.data_root {
        cfg.data.root = Some(v.clone());
    }
    if let Some(v) = &args.labels {
        cfg.data.labels = Some(v.clone());
    }
    if let Some(v) = &args.reports_root {
        cfg.data.reports_root = Some(v.clone());
    }
    if let Some(v) = args.views {
        cfg.data.views = v;
    }
    if let Some(v) = args.uncertain {
        cfg.data.uncertain = v;
    }
    if let Some(v) = &args.weights {
        cfg.model.weights = Some(v.clone());
    }
    if let Some(v) = &args.weights_name {
        cfg.model.weights_name = Some(v.clone());
    }
    if let Some(v) = args.epochs {
        cfg.train_loop.epochs = v;
    }
    if let Some(v) = args.batch_size {
        cfg.train_loop.batch_size = v;
    }
    if let Some(v) = args.seed {
        cfg.seed = v;
    }
    if let Some(v) = args.seeds {
        cfg.seeds = v as usize;
    }
    if let Some(v) = args.lr {
        cfg.optim.lr = v;
    }
    if let Some(v) = &args.device {
        cfg.train_loop.device.clone_from(v);
    }
    if let Some(v) = args.precision {
        cfg.train_loop.precision = v;
    }
    if let Some(v) = args.synth_patients {
        cfg.data.synth_patients = v;
    }
    if args.no_progress {
        cfg.train_loop.progress = false;
    }
    for o in &args.overrides {
        cfg.set(o)?;
    }
    cfg.validate()?;
    Ok(cfg)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = resolve_config(&args.config)?;
    if args.print_config {
        print!("{}", cfg.to_toml());
        return Ok(());
    }
    require_weights(&args.config, &cfg)?;
    let methods = methods_or_all(&args.methods, &cfg);
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("{}-{}", args.config.preset, utc_stamp()))
    });
    let resume = args.resume.is_some();
    if !resume && out.join("results.json").exists() {
        bail!(
            "{} already holds results.json: choose another --out (nothing was overwritten)",
            out.display()
        );
    }
    if cfg.seeds > 1 {
        return run_seeds(&args, &cfg, &methods, &out);
    }
    let started = std::time::Instant::now();
    let results = match cxr_train::run_methods_resumable(&cfg, &methods, &out, resume) {
        Ok(results) => results,
        Err(cxr_train::TrainError::Interrupted { signal, .. }) => {
            stop_with_resume_command(&args, &out, signal)
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "\nZero-shot macro AUC on held-out patients ({:.0} s):\n",
        started.elapsed().as_secs_f64()
    );
    println!("{}", cxr_train::report::auc_table(&results));
    println!("{}", class_table(&results));
    println!(
        "Run folder: {} (results.json, report.md, one sub-folder per method)",
        out.display()
    );
    if cfg.eval.figures {
        println!("Training curves: {}", out.join("curves.png").display());
    }
    if cfg.train_loop.tensorboard {
        println!("TensorBoard: tensorboard --logdir {}", out.display());
    }
    Ok(())
}

/// Exits after an interrupt, printing this command with `--resume latest` (and the folder the
/// run chose when `--out` was not given).
fn stop_with_resume_command(args: &Args, out: &Path, signal: i32) -> ! {
    let mut cmd = resume_args(std::env::args().skip(1));
    if args.out.is_none() {
        cmd.extend(["--out".to_string(), out.display().to_string()]);
    }
    stop_after_interrupt(signal, &cmd)
}

/// `train --seeds N` (N > 1): every seed in `<out>/seed-<i>/`, then the table across seeds.
fn run_seeds(args: &Args, cfg: &TrainConfig, methods: &[Method], out: &Path) -> anyhow::Result<()> {
    let resume = args.resume.is_some();
    if !resume && (out.join(SEEDS_FILE).exists() || seed_dir(out, 0).exists()) {
        bail!(
            "{} already holds seeds of a run: resume them with --resume latest (finished seeds \
             are skipped) or choose another --out (nothing was overwritten)",
            out.display()
        );
    }
    let started = std::time::Instant::now();
    let summary = match cxr_train::seeds::run_train(cfg, methods, out, resume) {
        Ok(s) => s,
        Err(cxr_train::TrainError::Interrupted { signal, .. }) => {
            stop_with_resume_command(args, out, signal)
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "\n{} seeds ({:.0} s):\n\n{}",
        summary.runs.len(),
        started.elapsed().as_secs_f64(),
        cxr_train::seeds::table(&summary)
    );
    println!(
        "Run folder: {} (seeds.json, report.md, one seed-<i>/ per seed, each a run folder)",
        out.display()
    );
    Ok(())
}

/// The command line that resumes an interrupted `train`: the same arguments with
/// `--resume latest` (the caller adds `--out` when it was defaulted).
fn resume_args(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut cmd: Vec<String> = args.collect();
    if !cmd
        .iter()
        .any(|a| a == "--resume" || a.starts_with("--resume="))
    {
        cmd.extend(["--resume".to_string(), "latest".to_string()]);
    }
    cmd
}

/// After SIGINT / SIGTERM stopped training with a checkpoint: say how to resume and exit
/// with 130 / 143.
pub fn stop_after_interrupt(signal: i32, args: &[String]) -> ! {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect();
    eprintln!(
        "\nInterrupted by {}: the current step finished and a checkpoint was written.\n\
         Resume with:\n  cargo xtask {}",
        cxr_train::interrupt::name(signal),
        quoted.join(" ")
    );
    std::process::exit(cxr_train::interrupt::exit_code(signal))
}

pub(crate) fn parse_dataset(s: &str) -> Result<cxr_data::Dataset, String> {
    s.parse().map_err(|e: cxr_data::DataError| e.to_string())
}

/// One of a config enum's spellings (`ALL` and `as_str` from `config_enum!`).
pub(crate) fn parse_spelling<T: Copy>(
    s: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, String> {
    all.iter().copied().find(|&v| name(v) == s).ok_or_else(|| {
        let valid: Vec<&str> = all.iter().map(|&v| name(v)).collect();
        format!("`{s}`: expected {}", valid.join(" or "))
    })
}

pub(crate) fn parse_views(s: &str) -> Result<Views, String> {
    parse_spelling(s, Views::ALL, Views::as_str)
}

pub(crate) fn parse_precision(s: &str) -> Result<Precision, String> {
    parse_spelling(s, Precision::ALL, Precision::as_str)
}

fn parse_uncertain(s: &str) -> Result<Uncertain, String> {
    parse_spelling(s, Uncertain::ALL, Uncertain::as_str)
}

/// `YYYYMMDD-HHMMSS` in UTC, for default run folders.
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The methods asked for, or the config's defaults ([`TrainConfig::default_methods`]): with
/// `--weights`, the paper's Table 2 rows (the weights zero-shot, + meta labels, CXR-CML);
/// without, report text (where the dataset has it), meta labels and CXR-CML.
pub fn methods_or_all(methods: &[Method], cfg: &TrainConfig) -> Vec<Method> {
    if !methods.is_empty() {
        return methods.to_vec();
    }
    let dataset = cfg.data.dataset;
    if cfg.model.weights.is_none() && !dataset.has_reports() {
        tracing::info!(
            "{dataset} has no report text: training meta-labels and cxr-cml, not on report text"
        );
    }
    cfg.default_methods()
}

/// `--preset paper` and `--preset released-code` fine-tune a CheXzero checkpoint: they refuse
/// to start without `--weights` (or `model.weights` in `--config` / `--set`). Weights given
/// by hub id are downloaded into the hub cache here if missing (`hub::fetch_if_hub_id`).
pub fn require_weights(args: &ConfigArgs, cfg: &TrainConfig) -> anyhow::Result<()> {
    cfg.require_weights(&args.preset)?;
    if let Some(w) = &cfg.model.weights {
        crate::hub::fetch_if_hub_id(w)?;
    }
    Ok(())
}

/// Per class (the first method's order): group, test positives and each method's AUC with
/// its bootstrap CI, then how many classes have a defined AUC. A class without a test positive
/// or negative shows n/a, is named in the last line and is in no macro average.
fn class_table(results: &[cxr_train::report::MethodResult]) -> String {
    use std::fmt::Write as _;
    let Some(first) = results.first() else {
        return String::new();
    };
    let mut s = String::from("| Class | Group | Test pos |");
    for r in results {
        let _ = write!(s, " {} |", r.row_name());
    }
    s.push_str("\n|---|---|---|");
    s.push_str(&"---|".repeat(results.len()));
    s.push('\n');
    for (k, c) in first.test.classes.iter().enumerate() {
        let _ = write!(s, "| {} | {} | {} |", c.name, c.group.as_str(), c.n_pos);
        for r in results {
            let cell = match r.test.classes.get(k) {
                Some(rc) => match (rc.auc, rc.ci_low, rc.ci_high) {
                    (Some(a), Some(lo), Some(hi)) => format!("{a:.3} ({lo:.3}–{hi:.3})"),
                    (Some(a), _, _) => format!("{a:.3}"),
                    (None, _, _) => "n/a".to_string(),
                },
                None => "n/a".to_string(),
            };
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }
    let defined = |group: Option<cxr_eval::ClassGroup>| {
        let of_group: Vec<_> = first
            .test
            .classes
            .iter()
            .filter(|c| group.is_none_or(|g| c.group == g))
            .collect();
        let n = of_group.iter().filter(|c| c.auc.is_some()).count();
        format!("{n} of {}", of_group.len())
    };
    let _ = write!(
        s,
        "\nAUC defined for {} classes (base {}, rare {}).",
        defined(None),
        defined(Some(cxr_eval::ClassGroup::Base)),
        defined(Some(cxr_eval::ClassGroup::Rare))
    );
    let undefined: Vec<&str> = first
        .test
        .classes
        .iter()
        .filter(|c| c.auc.is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !undefined.is_empty() {
        let _ = write!(
            s,
            " Undefined (no test positive or no negative; left out of the macros): {}.",
            undefined.join(", ")
        );
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod class_table_tests {
    use super::*;

    fn class(name: &str, group: cxr_eval::ClassGroup, auc: Option<f64>) -> cxr_eval::ClassResult {
        cxr_eval::ClassResult {
            name: name.into(),
            group,
            auc,
            ci_low: auc.map(|a| a - 0.1),
            ci_high: auc.map(|a| a + 0.05),
            ap_ci_low: None,
            ap_ci_high: None,
            ap: None,
            n_pos: usize::from(auc.is_some()) * 7,
            n_neg: 50,
            train_count: None,
        }
    }

    #[test]
    fn class_table_lists_every_class_and_names_the_undefined_ones() {
        use cxr_eval::ClassGroup::{Base, Rare};
        let results: Vec<cxr_train::report::MethodResult> = [0.8, 0.6]
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let classes = vec![
                    class("Edema", Base, Some(a)),
                    class("Fibrosis", Rare, Some(a - 0.1)),
                    class("Kyphosis", Rare, None),
                ];
                let test = cxr_eval::EvalResults {
                    classes,
                    macro_all: None,
                    macro_base: None,
                    macro_rare: None,
                    map_all: None,
                    map_base: None,
                    map_rare: None,
                    macro_cis: None,
                    n_samples: 57,
                };
                serde_json::from_value(serde_json::json!({
                    "method": Method::ALL[i].as_str(),
                    "run_name": "r",
                    "run_dir": "r",
                    "best_epoch": 0,
                    "steps": 1,
                    "first_loss": 1.0,
                    "last_loss": 1.0,
                    "test": test,
                }))
                .unwrap()
            })
            .collect();
        let t = class_table(&results);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2 + 3 + 2, "{t}");
        assert!(
            lines[2]
                .starts_with("| Edema | base | 7 | 0.800 (0.700–0.850) | 0.600 (0.500–0.650) |"),
            "{t}"
        );
        assert!(
            lines[4].contains("| Kyphosis | rare | 0 | n/a | n/a |"),
            "{t}"
        );
        assert!(
            lines[6].contains("AUC defined for 2 of 3 classes (base 1 of 1, rare 1 of 2)"),
            "{t}"
        );
        assert!(
            lines[6].ends_with("left out of the macros): Kyphosis."),
            "{t}"
        );
        assert!(class_table(&[]).is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn the_resume_command_adds_resume_latest_once() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            resume_args(args(&["train", "--epochs", "3"]).into_iter()),
            args(&["train", "--epochs", "3", "--resume", "latest"])
        );
        let again = args(&["train", "--resume", "latest"]);
        assert_eq!(resume_args(again.clone().into_iter()), again);
    }

    #[test]
    fn precision_flag_and_key_set_loop_precision() {
        use cxr_train::config::Precision;
        let parse = |v: &[&str]| resolve_config(&Cli::try_parse_from(v).unwrap().args.config);
        assert_eq!(
            parse(&["train"]).unwrap().train_loop.precision,
            Precision::F32
        );
        let cfg = parse(&["train", "--precision", "bf16"]).unwrap();
        assert_eq!(cfg.train_loop.precision, Precision::Bf16);
        assert!(cfg.to_toml().contains("precision = \"bf16\""));
        let cfg = parse(&["train", "--set", "loop.precision=bf16"]).unwrap();
        assert_eq!(cfg.train_loop.precision, Precision::Bf16);
        let e = Cli::try_parse_from(["train", "--precision", "fp16"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("f32 or bf16"), "{e}");
        let e = parse(&["train", "--set", "loop.precision=fp16"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("bf16"), "{e}");
    }

    #[test]
    fn dataset_flag_sets_the_format_and_the_default_methods() {
        let cli = Cli::try_parse_from([
            "train",
            "--dataset",
            "nih",
            "--data-root",
            "/data/nih",
            "--set",
            "mixture.kind=gaussian",
        ])
        .unwrap();
        let cfg = resolve_config(&cli.args.config).unwrap();
        assert_eq!(cfg.data.dataset, cxr_data::Dataset::Nih);
        assert_eq!(
            cfg.data.root.as_deref(),
            Some(std::path::Path::new("/data/nih"))
        );
        assert_eq!(
            methods_or_all(&cli.args.methods, &cfg),
            [Method::MetaLabels, Method::CxrCml]
        );
        let demo = TrainConfig::demo();
        assert_eq!(
            methods_or_all(&[], &demo),
            [Method::Baseline, Method::MetaLabels, Method::CxrCml]
        );
        let e = Cli::try_parse_from(["train", "--dataset", "padchest"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("mimic, cxr-lt, chexpert or nih"), "{e}");
        let all =
            Cli::try_parse_from(["train", "--views", "all", "--uncertain", "ignore"]).unwrap();
        let cfg = resolve_config(&all.args.config).unwrap();
        assert_eq!(cfg.data.views, Views::All);
        assert_eq!(cfg.data.uncertain, Uncertain::Ignore);
        let frontal = Cli::try_parse_from(["train", "--views", "frontal"]).unwrap();
        let cfg = resolve_config(&frontal.args.config).unwrap();
        assert_eq!(cfg.data.views, Views::Frontal);
        let e = Cli::try_parse_from(["train", "--views", "lateral"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("frontal or all"), "{e}");
        let bad = Cli::try_parse_from(["train", "--set", "optim.kind=adam"]).unwrap();
        let e = resolve_config(&bad.args.config).unwrap_err().to_string();
        assert!(e.contains("`adamw` or `sgd`"), "{e}");
    }

    #[test]
    fn seeds_flag_sets_the_seed_count_and_refuses_zero() {
        let cli = Cli::try_parse_from(["train", "--seeds", "3", "--seed", "7"]).unwrap();
        let cfg = resolve_config(&cli.args.config).unwrap();
        assert_eq!((cfg.seeds, cfg.seed), (3, 7));
        let one = Cli::try_parse_from(["train"]).unwrap();
        assert_eq!(resolve_config(&one.args.config).unwrap().seeds, 1);
        assert!(Cli::try_parse_from(["train", "--seeds", "0"]).is_err());
    }

    #[test]
    fn checkpoint_presets_refuse_to_start_without_weights() {
        for preset in ["paper", "released-code"] {
            let cli = Cli::try_parse_from(["train", "--preset", preset]).unwrap();
            let cfg = resolve_config(&cli.args.config).unwrap();
            let e = require_weights(&cli.args.config, &cfg)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("--preset {preset}")) && e.contains("--weights PATH.pt"),
                "{e}"
            );
            let cli =
                Cli::try_parse_from(["train", "--preset", preset, "--weights", "c.pt"]).unwrap();
            let cfg = resolve_config(&cli.args.config).unwrap();
            require_weights(&cli.args.config, &cfg).unwrap();
            assert_eq!(
                methods_or_all(&cli.args.methods, &cfg),
                [Method::ZeroShot, Method::MetaLabels, Method::CxrCml]
            );
        }
        let demo = Cli::try_parse_from(["train"]).unwrap();
        let cfg = resolve_config(&demo.args.config).unwrap();
        require_weights(&demo.args.config, &cfg).unwrap();
    }
}
