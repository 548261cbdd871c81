//! Evaluating a finished run from one of its checkpoints: results with bootstrap CIs, the
//! scores and labels as CSV (for `cargo xtask auc` or any other tool), the test embeddings as
//! `.npy`, and the figures (ROC curves per class group, per-class AUC along the long tail,
//! t-SNE of the embeddings coloured by rarest finding and by mixture cluster).
//!
//! Everything goes to `<run>/eval/<checkpoint>-<split>/`; the run's own files are not touched.

use std::path::{Path, PathBuf};

use cxr_eval::{EvalResults, TsneConfig};
use ndarray::{Array2, Axis};

use crate::checkpoint;
use crate::config::TrainConfig;
use crate::error::IoContext;
use crate::evaluate::{embed_images, ZeroShot};
use crate::files::{write_atomic, write_json};
use crate::model::build_model;
use crate::prepare::{prepare, Prepared, Split};
pub use crate::prepare::{SplitIds, SPLIT_FILE};
use crate::{Result, TrainError};

/// Which records of a split.
fn part<'a>(split: &'a Split, name: &str) -> Result<&'a [usize]> {
    match name {
        "test" => Ok(&split.test),
        "val" => Ok(&split.val),
        "train" => Ok(&split.train),
        other => Err(TrainError::Config(format!(
            "unknown split `{other}`: test, val or train"
        ))),
    }
}

/// What [`evaluate_run`] wrote.
pub struct RunEvaluation {
    pub dir: PathBuf,
    pub results: EvalResults,
}

/// Evaluate `run_dir` from its `best` or `last` checkpoint on one part of its split.
///
/// With `labels`, the model is instead scored on every image of another label CSV (same data
/// root), e.g. a held-out test file whose extra class columns were never seen in training:
/// any class column is scored from its prompts alone.
pub fn evaluate_run(
    run_dir: &Path,
    which: &str,
    split_name: &str,
    figures: bool,
    labels: Option<&Path>,
    device: Option<&str>,
) -> Result<RunEvaluation> {
    let config_path = run_dir.join("config.toml");
    let text = std::fs::read_to_string(&config_path).at(&config_path)?;
    let mut cfg = TrainConfig::from_toml_over(&TrainConfig::demo(), &text)?;
    // One writer per run folder: not while a training (or another evaluation) writes it.
    let _lock = crate::lock::RunLock::acquire(run_dir)?;
    cfg.train_loop.progress = false;
    if let Some(d) = device {
        cfg.train_loop.device = d.to_string();
    }
    let device = crate::device::open(&cfg.train_loop.device)?;
    let ckpt = match which {
        "best" => checkpoint::best_dir(run_dir),
        "last" => checkpoint::latest_good(run_dir)?.ok_or_else(|| TrainError::File {
            path: run_dir.to_path_buf(),
            message: "no complete, intact checkpoint".into(),
        })?,
        other => PathBuf::from(other),
    };
    checkpoint::verify(&ckpt)?;
    if let Some(labels) = labels {
        cfg.data.labels = Some(labels.to_path_buf());
        let data = prepare(&cfg)?;
        let split = Split {
            train: Vec::new(),
            val: Vec::new(),
            test: data.usable.clone(),
        };
        let (varmap, model) = build_model(&cfg, &device)?;
        checkpoint::load_weights(&ckpt, &varmap)?;
        let stem = labels
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let label = format!("{}-{stem}", which.rsplit('/').next().unwrap_or(which));
        return evaluate_loaded(
            run_dir, &cfg, &data, &split, &model, &label, "test", figures,
        );
    }
    let data = prepare(&cfg)?;
    let split_path = run_dir.join(SPLIT_FILE);
    let ids: SplitIds = serde_json::from_slice(&std::fs::read(&split_path).at(&split_path)?)
        .map_err(|e| TrainError::File {
            path: split_path.clone(),
            message: format!("invalid split file: {e}"),
        })?;
    let split = ids.resolve(&data)?;
    let idx = part(&split, split_name)?;
    if idx.is_empty() {
        return Err(TrainError::Dataset(format!(
            "the {split_name} split of {} is empty",
            run_dir.display()
        )));
    }

    let (varmap, model) = build_model(&cfg, &device)?;
    checkpoint::load_weights(&ckpt, &varmap)?;
    let label = which.rsplit('/').next().unwrap_or(which).to_string();
    evaluate_loaded(
        run_dir, &cfg, &data, &split, &model, &label, split_name, figures,
    )
}

/// Evaluate an already loaded model on one part of `split`; writes
/// `<run_dir>/eval/<label>-<split_name>/`.
pub fn evaluate_loaded(
    run_dir: &Path,
    cfg: &TrainConfig,
    data: &Prepared,
    split: &Split,
    model: &cxr_clip::ClipModel,
    label: &str,
    split_name: &str,
    figures: bool,
) -> Result<RunEvaluation> {
    let device = crate::device::of_model(model);
    let idx = part(split, split_name)?;
    if idx.is_empty() {
        return Err(TrainError::Dataset(format!(
            "the {split_name} split of {} is empty",
            run_dir.display()
        )));
    }
    let groups = data.class_groups(&cfg.data, &split.train);
    let train_counts = data.positive_counts(&split.train);
    let zero_shot = ZeroShot::new(cfg, data)?;
    let scores = zero_shot.scores(model, data, idx)?;
    let labels = data.labels.select(Axis(0), idx);
    let opts = cxr_eval::EvalOptions {
        bootstrap: (cfg.eval.bootstrap > 0).then_some(cxr_eval::BootstrapConfig {
            resamples: cfg.eval.bootstrap,
            seed: cfg.seed,
            level: 0.95,
        }),
    };
    let patients = crate::compare::bootstrap_groups(cfg, data, idx);
    let mut results = cxr_eval::evaluate_grouped(
        scores.view(),
        labels.view(),
        data.classes(),
        &groups,
        &opts,
        patients.as_deref(),
    )?;
    results.set_train_counts(&train_counts)?;

    let out = run_dir.join("eval").join(format!("{label}-{split_name}"));
    std::fs::create_dir_all(&out).at(&out)?;
    write_json(&out.join("results.json"), &results)?;
    let md = format!(
        "# Zero-shot evaluation of `{}` ({label} checkpoint, {split_name} split, {} images)\n\n{}\n{}",
        run_dir.display(),
        idx.len(),
        cxr_eval::render_markdown_table(&[(cfg.method.display_name(), &results)]),
        cxr_eval::render_class_table(&results)
    );
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    write_matrix_csv(&out.join("scores.csv"), data.classes(), &scores)?;
    write_matrix_csv(&out.join("labels.csv"), data.classes(), &labels)?;
    let emb = embed_images(model, data, idx, cfg.train_loop.batch_size.max(32), &device)?;
    let npy = out.join("image_embeddings.npy");
    cxr_data::npy::write(
        &npy,
        &[emb.nrows(), emb.ncols()],
        emb.as_slice().expect("contiguous"),
    )?;
    if figures {
        write_figures(&out, cfg, &scores, &labels, &results, &emb, &train_counts)?;
    }
    Ok(RunEvaluation { dir: out, results })
}

fn write_matrix_csv(path: &Path, header: &[String], m: &Array2<f32>) -> Result<()> {
    write_atomic(path, &cxr_eval::format_matrix_csv(header, m.view())?)
}

/// ROC curves, the long-tail AUC chart and two t-SNE pictures (rarest finding, cluster).
fn write_figures(
    out: &Path,
    cfg: &TrainConfig,
    scores: &Array2<f32>,
    labels: &Array2<f32>,
    results: &EvalResults,
    emb: &Array2<f32>,
    train_counts: &[usize],
) -> Result<()> {
    let title = cfg.method.display_name();
    cxr_eval::plot_roc(
        &out.join("roc.png"),
        scores.view(),
        labels.view(),
        results,
        title,
    )?;
    cxr_eval::plot_auc_by_frequency(&out.join("auc_by_frequency.png"), results, title)?;
    let n = emb.nrows();
    if n < 8 {
        tracing::warn!("t-SNE skipped: only {n} images");
        return Ok(());
    }
    let tsne_cfg = TsneConfig {
        perplexity: (n as f64 / 4.0).min(30.0),
        seed: cfg.seed,
        ..TsneConfig::default()
    };
    let points = cxr_eval::tsne(emb.view(), &tsne_cfg)?;
    let rarest = cxr_eval::rarest_positive_class(labels.view(), train_counts)?;
    cxr_eval::plot_scatter(
        &out.join("tsne_by_class.png"),
        points.view(),
        &rarest,
        results_names(results).as_slice(),
        &format!("{title}: t-SNE, rarest finding"),
    )?;
    // Clusters as the training objective sees them: a Gaussian mixture on the embeddings.
    let k = cfg.mixture.k.min(n / 2).max(2);
    let gmm = cxr_mixture::GaussianMixture::params(k)
        .covariance_type(cxr_mixture::CovarianceType::Diag)
        .reg_covar(1e-4)
        .seed(cfg.seed)
        .fit(emb.mapv(f64::from).view())?;
    let clusters: Vec<Option<usize>> = gmm
        .predict(emb.mapv(f64::from).view())?
        .iter()
        .map(|&c| Some(c))
        .collect();
    let names: Vec<String> = (0..k).map(|c| format!("cluster {c}")).collect();
    cxr_eval::plot_scatter(
        &out.join("tsne_by_cluster.png"),
        points.view(),
        &clusters,
        &names,
        &format!("{title}: t-SNE, {k} mixture clusters"),
    )?;
    Ok(())
}

fn results_names(r: &EvalResults) -> Vec<String> {
    r.classes.iter().map(|c| c.name.clone()).collect()
}
