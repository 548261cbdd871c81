//! Several seeds of one job (`train`, `cv` or `ablation`) and their aggregate.
//!
//! Seed `i` (0-based) of `seeds = N` trains with `seed + i` and lives in `seed-<i>/` of the
//! output folder, laid out exactly as a single run of the job. Every seed uses the split of
//! the base `seed` (for `cv`: the same folds and validation parts), so that the seeds differ
//! only in what training draws (initial weights, batch order, text shuffling, mixture fits)
//! and the methods of one seed are scored on the same test images: the differences are
//! paired. A finished seed (its `results.json`, `cv-summary.json` or `ablation.json`) is
//! skipped when the job is run again; an interrupted one resumes like a single run.
//!
//! The aggregate reads each seed's own result file back: per method (or ablation variant), the
//! mean and the sample standard deviation (n - 1) across seeds of the macro AUC over all /
//! base / rare classes and of the mAP; per method other than the first (the baseline), the
//! mean and standard deviation of its per-seed difference from the first and how many seeds
//! favour each. A `cv` seed contributes its mean over folds. It goes to `seeds.json` and
//! `report.md` in the output folder.

use std::path::{Path, PathBuf};

use cxr_eval::EvalResults;
use serde::{Deserialize, Serialize};

use crate::ablation::{run_ablation_on, AblationRow};
use crate::config::{Method, TrainConfig};
use crate::cv::{self, CvSummary, FoldScheme};
use crate::error::IoContext;
use crate::files::{write_atomic, write_json};
use crate::prepare::prepare;
use crate::report::{default_split, read_results, run_methods_on};
use crate::{Result, TrainError};

/// The aggregate's file in the output folder.
pub const SEEDS_FILE: &str = "seeds.json";

/// Which job the seeds repeat (and so which result file each seed folder holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Job {
    /// `results.json`: one row per method.
    Train,
    /// `cv-summary.json`: one row per method, its mean over the finished folds.
    Cv,
    /// `ablation.json`: one row per variant of the grid.
    Ablation,
}

impl Job {
    /// The file that marks a seed of this job as finished.
    pub fn result_file(self) -> &'static str {
        match self {
            Job::Train => "results.json",
            Job::Cv => "cv-summary.json",
            Job::Ablation => "ablation.json",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Job::Train => "train",
            Job::Cv => "cv",
            Job::Ablation => "ablation",
        }
    }
}

/// The folder of seed `i`.
pub fn seed_dir(out: &Path, i: usize) -> PathBuf {
    out.join(format!("seed-{i}"))
}

/// The config of seed `i`: `seed + i`, a single run.
pub fn seed_config(base: &TrainConfig, i: usize) -> TrainConfig {
    let mut c = base.clone();
    c.seed = base.seed.wrapping_add(i as u64);
    c.seeds = 1;
    c
}

/// The four macro values a seed contributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics<T> {
    pub auc_all: T,
    pub auc_base: T,
    pub auc_rare: T,
    /// Mean average precision over all classes.
    pub map: T,
}

impl<T> Metrics<T> {
    /// Applies `f` to each of the four values.
    pub fn map<U>(self, f: impl Fn(T) -> U) -> Metrics<U> {
        Metrics {
            auc_all: f(self.auc_all),
            auc_base: f(self.auc_base),
            auc_rare: f(self.auc_rare),
            map: f(self.map),
        }
    }
}

impl Metrics<Option<f64>> {
    /// The macros of one test evaluation.
    pub fn of_results(r: &EvalResults) -> Self {
        Self {
            auc_all: r.macro_all,
            auc_base: r.macro_base,
            auc_rare: r.macro_rare,
            map: r.map_all,
        }
    }

    /// The means over folds of a cross-validation summary.
    pub fn of_folds(s: &cxr_eval::FoldSummary) -> Self {
        Self {
            auc_all: s.macro_all.map(|m| m.mean),
            auc_base: s.macro_base.map(|m| m.mean),
            auc_rare: s.macro_rare.map(|m| m.mean),
            map: s.map_all.map(|m| m.mean),
        }
    }
}

/// One method (or ablation variant) in one seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedRow {
    pub label: String,
    pub metrics: Metrics<Option<f64>>,
}

/// One finished seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedRun {
    /// `i` of `seed-<i>/`.
    pub index: usize,
    /// The seed it trained with.
    pub seed: u64,
    pub rows: Vec<SeedRow>,
}

/// Mean and sample standard deviation (n - 1) of the seeds where a value is defined; `std` is
/// `None` for a single value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: usize,
}

impl Spread {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| {
            let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        Some(Self { mean, std, n })
    }
}

/// The per-seed difference method - baseline over the seeds where both are defined.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedDiff {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: usize,
    /// Seeds whose difference is above 0 (the method is better: every metric here is
    /// higher-is-better) and below 0; the rest are ties.
    pub favours_method: usize,
    pub favours_baseline: usize,
}

impl PairedDiff {
    /// Pairs `method[s]` with `baseline[s]`; seeds where either is undefined are left out.
    pub fn of(method: &[Option<f64>], baseline: &[Option<f64>]) -> Option<Self> {
        let d: Vec<f64> = method
            .iter()
            .zip(baseline)
            .filter_map(|(m, b)| Some((*m)? - (*b)?))
            .collect();
        let s = Spread::of(&d)?;
        Some(Self {
            mean: s.mean,
            std: s.std,
            n: s.n,
            favours_method: d.iter().filter(|&&x| x > 0.0).count(),
            favours_baseline: d.iter().filter(|&&x| x < 0.0).count(),
        })
    }
}

/// One method across seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodSpread {
    pub label: String,
    pub metrics: Metrics<Option<Spread>>,
}

/// One method's paired difference from the baseline across seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodDiff {
    pub label: String,
    pub baseline: String,
    pub metrics: Metrics<Option<PairedDiff>>,
}

/// `seeds.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedsSummary {
    pub job: Job,
    /// The base seed: seed `i` trained with `base_seed + i`; every seed used its split.
    pub base_seed: u64,
    /// The seeds asked for and the finished ones (their rows).
    pub seeds_requested: usize,
    pub runs: Vec<SeedRun>,
    /// Per method, in the first seed's order.
    pub methods: Vec<MethodSpread>,
    /// Each method but the first minus the first (the baseline), paired per seed.
    pub differences: Vec<MethodDiff>,
}

/// Reads one of the four values.
type Getter = fn(&Metrics<Option<f64>>) -> Option<f64>;

/// Mean ± std per method and the paired differences from the first method of the first seed.
/// Methods missing from some seed are aggregated over the seeds that have them.
pub fn summarize(job: Job, base_seed: u64, requested: usize, runs: Vec<SeedRun>) -> SeedsSummary {
    let mut labels: Vec<String> = Vec::new();
    for run in &runs {
        for row in &run.rows {
            if !labels.contains(&row.label) {
                labels.push(row.label.clone());
            }
        }
    }
    // Per label, per seed: the metrics (None where the seed lacks the label).
    let column = |label: &str| -> Vec<Metrics<Option<f64>>> {
        runs.iter()
            .map(|run| {
                run.rows
                    .iter()
                    .find(|r| r.label == label)
                    .map(|r| r.metrics)
                    .unwrap_or_default()
            })
            .collect()
    };
    let pick = |col: &[Metrics<Option<f64>>], f: Getter| col.iter().map(f).collect::<Vec<_>>();
    let getters: Metrics<Getter> = Metrics {
        auc_all: |m| m.auc_all,
        auc_base: |m| m.auc_base,
        auc_rare: |m| m.auc_rare,
        map: |m| m.map,
    };
    let methods = labels
        .iter()
        .map(|label| {
            let col = column(label);
            let metrics = getters.map(|f| {
                let v: Vec<f64> = pick(&col, f).into_iter().flatten().collect();
                Spread::of(&v)
            });
            MethodSpread {
                label: label.clone(),
                metrics,
            }
        })
        .collect();
    let differences = match labels.split_first() {
        None => Vec::new(),
        Some((baseline, others)) => {
            let base_col = column(baseline);
            others
                .iter()
                .map(|label| {
                    let col = column(label);
                    let metrics =
                        getters.map(|f| PairedDiff::of(&pick(&col, f), &pick(&base_col, f)));
                    MethodDiff {
                        label: label.clone(),
                        baseline: baseline.clone(),
                        metrics,
                    }
                })
                .collect()
        }
    };
    SeedsSummary {
        job,
        base_seed,
        seeds_requested: requested,
        runs,
        methods,
        differences,
    }
}

/// The rows of a finished seed folder, read from its result file; `None` when it has not
/// finished.
pub fn read_seed(job: Job, dir: &Path) -> Result<Option<Vec<SeedRow>>> {
    let path = dir.join(job.result_file());
    if !path.is_file() {
        return Ok(None);
    }
    let rows = match job {
        Job::Train => read_results(dir)?
            .unwrap_or_default()
            .iter()
            .map(|r| SeedRow {
                label: r.row_name().to_string(),
                metrics: Metrics::of_results(&r.test),
            })
            .collect(),
        Job::Cv => read_json::<CvSummary>(&path)?
            .methods
            .iter()
            .map(|(m, s)| SeedRow {
                label: m.display_name().to_string(),
                metrics: Metrics::of_folds(s),
            })
            .collect(),
        Job::Ablation => read_json::<Vec<AblationRow>>(&path)?
            .iter()
            .map(|r| SeedRow {
                label: r.label.clone(),
                metrics: Metrics::of_results(&r.test),
            })
            .collect(),
    };
    Ok(Some(rows))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).at(path)?;
    serde_json::from_slice(&bytes).map_err(|e| TrainError::File {
        path: path.to_path_buf(),
        message: format!("not a seed's result file: {e}"),
    })
}

/// Aggregate the finished `seed-<i>/` folders (`i < requested`) of `out` into `seeds.json`
/// and `report.md`.
pub fn aggregate(job: Job, base_seed: u64, requested: usize, out: &Path) -> Result<SeedsSummary> {
    let mut runs = Vec::new();
    for i in 0..requested {
        if let Some(rows) = read_seed(job, &seed_dir(out, i))? {
            runs.push(SeedRun {
                index: i,
                seed: base_seed.wrapping_add(i as u64),
                rows,
            });
        }
    }
    if runs.is_empty() {
        return Err(TrainError::Dataset(format!(
            "no finished seed (seed-*/{}) under {}: run the job first",
            job.result_file(),
            out.display()
        )));
    }
    let summary = summarize(job, base_seed, requested, runs);
    write_json(&out.join(SEEDS_FILE), &summary)?;
    write_atomic(&out.join("report.md"), render(&summary).as_bytes())?;
    Ok(summary)
}

/// The seeds a previous job left in `out` (its `seeds.json`), for `cv --aggregate`.
pub fn read_summary(out: &Path) -> Result<Option<SeedsSummary>> {
    let path = out.join(SEEDS_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    read_json(&path).map(Some)
}

/// Before seed `i`: stop if an interrupt was requested (the finished seeds stay in place and
/// are skipped on the next run).
fn check_interrupt(out: &Path) -> Result<()> {
    match crate::interrupt::requested() {
        Some(signal) => Err(TrainError::Interrupted {
            signal,
            step: 0,
            checkpoint: out.to_path_buf(),
        }),
        None => Ok(()),
    }
}

/// `train` with `cfg.seeds` seeds: each seed trains and evaluates `methods` on the base
/// seed's split in `seed-<i>/` (see [`crate::run_methods_resumable`]; with `resume`, finished
/// seeds are skipped and an interrupted one continues), then [`aggregate`].
pub fn run_train(
    cfg: &TrainConfig,
    methods: &[Method],
    out: &Path,
    resume: bool,
) -> Result<SeedsSummary> {
    let data = prepare(cfg)?;
    let split = default_split(cfg, &data);
    std::fs::create_dir_all(out).at(out)?;
    for i in 0..cfg.seeds {
        let dir = seed_dir(out, i);
        if resume && read_seed(Job::Train, &dir)?.is_some() {
            tracing::info!("seed {i} already finished in {}; skipping", dir.display());
            continue;
        }
        check_interrupt(out)?;
        let scfg = seed_config(cfg, i);
        tracing::info!("seed {}/{}: seed = {}", i + 1, cfg.seeds, scfg.seed);
        run_methods_on(&scfg, methods, &data, &split, &dir, resume)?;
    }
    aggregate(Job::Train, cfg.seed, cfg.seeds, out)
}

/// `cv` with `cfg.seeds` seeds: the `k` folds (and validation parts) of the base seed, trained
/// with each seed in `seed-<i>/` (`which`: only that fold of each seed), then [`aggregate`] of
/// the seeds whose folds have a summary. Finished folds are skipped, as in [`cv::run_cv`].
pub fn run_cv(
    cfg: &TrainConfig,
    methods: &[Method],
    k: usize,
    scheme: FoldScheme,
    which: Option<usize>,
    out: &Path,
) -> Result<SeedsSummary> {
    cv::check_fold(which, k)?;
    let data = prepare(cfg)?;
    let all = cv::folds(&data, k, cfg.seed, scheme)?;
    std::fs::create_dir_all(out).at(out)?;
    for i in 0..cfg.seeds {
        check_interrupt(out)?;
        let scfg = seed_config(cfg, i);
        tracing::info!("seed {}/{}: seed = {}", i + 1, cfg.seeds, scfg.seed);
        cv::run_folds(
            &scfg,
            &data,
            &all,
            cfg.seed,
            methods,
            which,
            &seed_dir(out, i),
        )?;
    }
    aggregate(Job::Cv, cfg.seed, cfg.seeds, out)
}

/// Re-aggregate a `cv` with seeds: each seed's finished folds, then the seeds.
pub fn aggregate_cv(out: &Path, summary: &SeedsSummary) -> Result<SeedsSummary> {
    for i in 0..summary.seeds_requested {
        let dir = seed_dir(out, i);
        if dir.is_dir() {
            match cv::aggregate(&dir) {
                Ok(_) | Err(TrainError::Dataset(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    aggregate(Job::Cv, summary.base_seed, summary.seeds_requested, out)
}

/// `ablation` with `cfg.seeds` seeds: the grid on the base seed's split, trained with each seed
/// in `seed-<i>/` (finished seeds and variants are reused), then [`aggregate`]; the first
/// variant (the baseline) is the reference of the differences.
pub fn run_ablation(cfg: &TrainConfig, out: &Path) -> Result<SeedsSummary> {
    let data = prepare(cfg)?;
    let split = default_split(cfg, &data);
    std::fs::create_dir_all(out).at(out)?;
    for i in 0..cfg.seeds {
        let dir = seed_dir(out, i);
        if read_seed(Job::Ablation, &dir)?.is_some() {
            tracing::info!("seed {i} already finished in {}; skipping", dir.display());
            continue;
        }
        check_interrupt(out)?;
        let scfg = seed_config(cfg, i);
        tracing::info!("seed {}/{}: seed = {}", i + 1, cfg.seeds, scfg.seed);
        run_ablation_on(&scfg, &data, &split, &dir)?;
    }
    aggregate(Job::Ablation, cfg.seed, cfg.seeds, out)
}

fn fmt_spread(s: Option<Spread>) -> String {
    match s {
        None => "n/a".into(),
        Some(Spread { mean, std, n }) => {
            let std = std.map_or_else(|| "n/a".to_string(), |s| format!("{s:.3}"));
            format!("{mean:.3} ± {std} (n={n})")
        }
    }
}

fn fmt_diff(d: Option<PairedDiff>) -> String {
    match d {
        None => "n/a".into(),
        Some(d) => {
            let std = d
                .std
                .map_or_else(|| "n/a".to_string(), |s| format!("{s:.3}"));
            format!("{:+.3} ± {std} ({}/{})", d.mean, d.favours_method, d.n)
        }
    }
}

fn fmt_value(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.3}"))
}

/// The aggregate as Markdown: mean ± std per method, the paired differences, each seed's values.
pub fn render(s: &SeedsSummary) -> String {
    let seeds: Vec<String> = s.runs.iter().map(|r| r.seed.to_string()).collect();
    let what = match s.job {
        Job::Cv => "each seed's mean over its folds, ",
        Job::Train | Job::Ablation => "",
    };
    let mut md = format!(
        "# Across seeds ({}: {} of {} seeds finished, seeds {})\n\n\
         Zero-shot macro AUC and mAP on the test images, {what}mean ± sample std (n - 1) over \
         the seeds (n: seeds where the value is defined). Every seed used the split of seed {}; \
         the seeds differ in initial weights, batch order, text shuffling and mixture fits.\n\n\
         | Method | Total AUC | Base AUC | Rare AUC | mAP |\n|---|---|---|---|---|\n",
        s.job.as_str(),
        s.runs.len(),
        s.seeds_requested,
        seeds.join(", "),
        s.base_seed
    );
    for m in &s.methods {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            m.label,
            fmt_spread(m.metrics.auc_all),
            fmt_spread(m.metrics.auc_base),
            fmt_spread(m.metrics.auc_rare),
            fmt_spread(m.metrics.map)
        ));
    }
    if let Some(first) = s.differences.first() {
        md.push_str(&format!(
            "\nPaired differences from {}: per seed, method - {} on the same test images; mean \
             ± sample std of the per-seed difference (seeds where the method is higher / seeds \
             compared).\n\n| Method | Total AUC | Base AUC | Rare AUC | mAP |\n|---|---|---|---|---|\n",
            first.baseline, first.baseline
        ));
        for d in &s.differences {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                d.label,
                fmt_diff(d.metrics.auc_all),
                fmt_diff(d.metrics.auc_base),
                fmt_diff(d.metrics.auc_rare),
                fmt_diff(d.metrics.map)
            ));
        }
    }
    md.push_str(
        "\n## Per seed\n\n| Seed | Folder | Method | Total AUC | Base AUC | Rare AUC | mAP |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in &s.runs {
        for row in &r.rows {
            md.push_str(&format!(
                "| {} | seed-{} | {} | {} | {} | {} | {} |\n",
                r.seed,
                r.index,
                row.label,
                fmt_value(row.metrics.auc_all),
                fmt_value(row.metrics.auc_base),
                fmt_value(row.metrics.auc_rare),
                fmt_value(row.metrics.map)
            ));
        }
    }
    md
}

/// The two tables of [`render`] without the per-seed listing (for the terminal).
pub fn table(s: &SeedsSummary) -> String {
    let md = render(s);
    match md.find("\n## Per seed") {
        Some(end) => md[..end].to_string(),
        None => md,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn spread_is_the_sample_std() {
        // numpy: np.mean([0.70, 0.74, 0.69]) = 0.71, np.std(..., ddof=1) = 0.026457513110645873
        let s = Spread::of(&[0.70, 0.74, 0.69]).unwrap();
        assert!(close(s.mean, 0.71), "{}", s.mean);
        assert!(close(s.std.unwrap(), 0.026457513110645873), "{:?}", s.std);
        assert_eq!(s.n, 3);
        let one = Spread::of(&[0.5]).unwrap();
        assert_eq!((one.mean, one.std, one.n), (0.5, None, 1));
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn paired_differences_skip_undefined_seeds_and_count_the_winners() {
        let method = [Some(0.72), Some(0.70), None, Some(0.75), Some(0.60)];
        let base = [Some(0.70), Some(0.71), Some(0.9), None, Some(0.60)];
        let d = PairedDiff::of(&method, &base).unwrap();
        // Seeds 0, 1, 4: differences 0.02, -0.01, 0.0.
        assert_eq!(d.n, 3);
        assert!(close(d.mean, (0.02 - 0.01 + 0.0) / 3.0), "{}", d.mean);
        let sd = Spread::of(&[0.72 - 0.70, 0.70 - 0.71, 0.0])
            .unwrap()
            .std
            .unwrap();
        assert!(close(d.std.unwrap(), sd));
        assert_eq!((d.favours_method, d.favours_baseline), (1, 1));
        assert!(PairedDiff::of(&[None], &[Some(1.0)]).is_none());
    }

    fn row(label: &str, all: f64, rare: Option<f64>) -> SeedRow {
        SeedRow {
            label: label.into(),
            metrics: Metrics {
                auc_all: Some(all),
                auc_base: Some(all + 0.01),
                auc_rare: rare,
                map: Some(all / 2.0),
            },
        }
    }

    #[test]
    fn summary_pairs_each_method_with_the_first_per_seed() {
        let runs = vec![
            SeedRun {
                index: 0,
                seed: 5,
                rows: vec![row("base", 0.70, Some(0.6)), row("cml", 0.73, Some(0.65))],
            },
            SeedRun {
                index: 1,
                seed: 6,
                rows: vec![row("base", 0.72, None), row("cml", 0.71, Some(0.62))],
            },
            SeedRun {
                index: 2,
                seed: 7,
                rows: vec![row("base", 0.68, Some(0.61)), row("cml", 0.74, Some(0.7))],
            },
        ];
        let s = summarize(Job::Train, 5, 3, runs);
        assert_eq!(s.methods.len(), 2);
        let base = s.methods[0].metrics;
        let want = Spread::of(&[0.70, 0.72, 0.68]).unwrap();
        assert_eq!(base.auc_all, Some(want));
        assert_eq!(
            base.auc_rare.unwrap().n,
            2,
            "the undefined rare AUC is left out"
        );
        let d = s.differences[0].metrics;
        assert_eq!(s.differences[0].baseline, "base");
        let want = Spread::of(&[0.03, -0.01, 0.06]).unwrap();
        let got = d.auc_all.unwrap();
        assert!(close(got.mean, want.mean) && close(got.std.unwrap(), want.std.unwrap()));
        assert_eq!((got.favours_method, got.favours_baseline), (2, 1));
        assert_eq!(
            d.auc_rare.unwrap().n,
            2,
            "only seeds where both are defined"
        );
        let md = render(&s);
        assert!(md.contains("| base | 0.700 ± 0.020 (n=3) |"), "{md}");
        assert!(md.contains("| cml | +0.027 ± 0.035 (2/3) |"), "{md}");
        assert!(
            md.contains("| 6 | seed-1 | base | 0.720 | 0.730 | n/a | 0.360 |"),
            "{md}"
        );
        assert!(!table(&s).contains("Per seed"));
    }

    #[test]
    fn seed_configs_shift_the_seed_and_run_once() {
        let mut cfg = TrainConfig::demo();
        cfg.seed = 10;
        cfg.seeds = 3;
        let c = seed_config(&cfg, 2);
        assert_eq!((c.seed, c.seeds), (12, 1));
        // One seed is today's config file; more are written and read back.
        assert!(!TrainConfig::demo().to_toml().contains("seeds"));
        let back = TrainConfig::from_toml_over(&TrainConfig::demo(), &cfg.to_toml()).unwrap();
        assert_eq!(back.seeds, 3);
        let e = TrainConfig::from_toml_over(&TrainConfig::demo(), "seeds = 0").unwrap_err();
        assert!(e.to_string().contains("seeds must be at least 1"), "{e}");
    }
}
