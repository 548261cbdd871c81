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
use crate::embed_cache::{CacheUse, EmbeddingCache, EmbeddingKey};
use crate::error::IoContext;
use crate::evaluate::{class_embeddings_from, embed_images, PromptRow, ZeroShot};
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
    evaluate_run_as(run_dir, which, split_name, figures, labels, device, None)
}

/// As [`evaluate_run`], in `precision` instead of the run's `loop.precision` when given (the
/// weights are f32 either way).
pub fn evaluate_run_as(
    run_dir: &Path,
    which: &str,
    split_name: &str,
    figures: bool,
    labels: Option<&Path>,
    device: Option<&str>,
    precision: Option<crate::config::Precision>,
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
    if let Some(p) = precision {
        cfg.train_loop.precision = p;
    }
    let device = crate::device::open(&cfg.train_loop.device)?;
    // Every checkpoint is verified before use (`latest_good` verifies the ones it picks).
    let ckpt = match which {
        "last" => checkpoint::latest_good(run_dir)?.ok_or_else(|| TrainError::File {
            path: run_dir.to_path_buf(),
            message: "no complete, intact checkpoint".into(),
        })?,
        named => {
            let dir = match named {
                "best" => checkpoint::best_dir(run_dir),
                other => PathBuf::from(other),
            };
            checkpoint::verify(&dir)?;
            dir
        }
    };
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
    let out = run_dir.join("eval").join(format!("{label}-{split_name}"));
    let title = format!(
        "Zero-shot evaluation of `{}` ({label} checkpoint, {split_name} split, {} images)",
        run_dir.display(),
        idx.len()
    );
    let results = write_evaluation(
        &out,
        &title,
        &cfg.method.row_name(cfg),
        cfg,
        data,
        idx,
        &groups,
        &train_counts,
        &zero_shot,
        model,
        &embed_images(model, data, idx, zero_shot.image_batch(), &device_of(model))?,
        figures,
        false,
    )?;
    Ok(RunEvaluation { dir: out, results })
}

fn device_of(model: &cxr_clip::ClipModel) -> candle_core::Device {
    crate::device::of_model(model)
}

/// Scores `idx` (whose image embeddings are `images`, `N x D` L2-normalised rows) with
/// `zero_shot` and writes into `out`: `results.json`, `report.md`, `scores.csv` and
/// `labels.csv` (first column `id`, the record id of the label file, then one column per
/// class), `image_embeddings.npy` and, with `figures`, the figures; with `save_embeddings`
/// also `image_ids.txt`, `prompt_embeddings.npy` and `prompts.tsv` ([`write_prompts`]).
fn write_evaluation(
    out: &Path,
    title: &str,
    name: &str,
    cfg: &TrainConfig,
    data: &Prepared,
    idx: &[usize],
    groups: &[cxr_eval::ClassGroup],
    train_counts: &[usize],
    zero_shot: &ZeroShot,
    model: &cxr_clip::ClipModel,
    emb: &Array2<f32>,
    figures: bool,
    save_embeddings: bool,
) -> Result<EvalResults> {
    let device = crate::device::of_model(model);
    // Every prompt in one batched text-encoder pass; the scores from the given embeddings.
    let (prompt_rows, prompt_emb) = zero_shot.prompt_embeddings(model, &device)?;
    let (pos, neg) = class_embeddings_from(data.classes().len(), &prompt_rows, &prompt_emb);
    let scores = cxr_eval::zero_shot_probabilities(emb.view(), pos.view(), neg.view())?;
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
        groups,
        &opts,
        patients.as_deref(),
    )?;
    results.set_train_counts(train_counts)?;

    std::fs::create_dir_all(out).at(out)?;
    write_json(&out.join("results.json"), &results)?;
    let md = format!(
        "# {title}\n\n{}\n{}",
        cxr_eval::render_markdown_table(&[(name, &results)]),
        cxr_eval::render_class_table(&results)
    );
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    let ids: Vec<&str> = idx
        .iter()
        .map(|&i| data.table.records[i].dicom_id.as_str())
        .collect();
    write_matrix_csv(&out.join("scores.csv"), &ids, data.classes(), &scores)?;
    write_matrix_csv(&out.join("labels.csv"), &ids, data.classes(), &labels)?;
    let npy = out.join("image_embeddings.npy");
    cxr_data::npy::write(
        &npy,
        &[emb.nrows(), emb.ncols()],
        emb.as_slice().expect("contiguous"),
    )?;
    if save_embeddings {
        let mut text = ids.join("\n");
        text.push('\n');
        write_atomic(&out.join(IMAGE_IDS_FILE), text.as_bytes())?;
        write_prompts(out, data.classes(), &prompt_rows, &prompt_emb)?;
    }
    if figures {
        write_figures(
            out,
            name,
            cfg,
            &scores,
            &labels,
            &results,
            emb,
            train_counts,
        )?;
    }
    Ok(results)
}

/// `--save-embeddings`: the record ids of `image_embeddings.npy`'s rows, one per line.
pub const IMAGE_IDS_FILE: &str = "image_ids.txt";
/// `--save-embeddings`: one L2-normalised text embedding per line of [`PROMPTS_FILE`].
pub const PROMPT_EMBEDDINGS_FILE: &str = "prompt_embeddings.npy";
/// `--save-embeddings`: `class<TAB>polarity<TAB>text` (polarity `positive` / `negative`), one
/// line per row of [`PROMPT_EMBEDDINGS_FILE`], under a header line.
pub const PROMPTS_FILE: &str = "prompts.tsv";

/// Writes [`PROMPT_EMBEDDINGS_FILE`] and [`PROMPTS_FILE`]. With `image_embeddings.npy` and
/// [`IMAGE_IDS_FILE`] they reproduce `scores.csv`: per class and polarity, average the rows,
/// renormalise; a class with no negative row (a complement) has a zero negative embedding;
/// `p = 1 / (1 + exp(img·neg - img·pos))`
/// ([`class_embeddings_from`], `scripts/examples/rescore_from_embeddings.py`).
fn write_prompts(
    out: &Path,
    classes: &[String],
    rows: &[PromptRow],
    emb: &Array2<f32>,
) -> Result<()> {
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let mut text = String::from("class\tpolarity\ttext\n");
    for r in rows {
        let polarity = if r.positive { "positive" } else { "negative" };
        text.push_str(&format!(
            "{}\t{polarity}\t{}\n",
            clean(&classes[r.class]),
            clean(&r.text)
        ));
    }
    write_atomic(&out.join(PROMPTS_FILE), text.as_bytes())?;
    let values: Vec<f32> = emb.iter().copied().collect();
    cxr_data::npy::write(
        &out.join(PROMPT_EMBEDDINGS_FILE),
        &[emb.nrows(), emb.ncols()],
        &values,
    )?;
    Ok(())
}

/// The name of the record-id column of `scores.csv` / `labels.csv`.
pub const ID_COLUMN: &str = "id";

/// `m` as CSV with a first column [`ID_COLUMN`] holding `ids` (one per row).
fn write_matrix_csv(path: &Path, ids: &[&str], header: &[String], m: &Array2<f32>) -> Result<()> {
    write_atomic(path, &matrix_csv_with_ids(ids, header, m)?)
}

/// The bytes of [`cxr_eval::format_matrix_csv`] with an id column in front. The numeric
/// lines hold no quote or line break, so each gets its (quoted where needed) id prepended.
fn matrix_csv_with_ids(ids: &[&str], header: &[String], m: &Array2<f32>) -> Result<Vec<u8>> {
    assert_eq!(ids.len(), m.nrows(), "one id per row");
    let head = cxr_eval::format_matrix_csv(header, Array2::<f32>::zeros((0, m.ncols())).view())?;
    let all = cxr_eval::format_matrix_csv(header, m.view())?;
    let body = &all[head.len()..];
    let mut out = Vec::with_capacity(all.len() + ids.iter().map(|i| i.len() + 3).sum::<usize>());
    out.extend_from_slice(ID_COLUMN.as_bytes());
    out.push(b',');
    out.extend_from_slice(&head);
    for (id, line) in ids.iter().zip(body.split_inclusive(|&b| b == b'\n')) {
        out.extend_from_slice(csv_field(id).as_bytes());
        out.push(b',');
        out.extend_from_slice(line);
    }
    Ok(out)
}

/// One CSV field: quoted (quotes doubled) when it holds a comma, quote, line break, or spaces
/// at either end, or is empty.
fn csv_field(s: &str) -> String {
    if s.is_empty() || s.trim() != s || s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// ROC curves, the long-tail AUC chart and two t-SNE pictures (rarest finding, cluster).
fn write_figures(
    out: &Path,
    title: &str,
    cfg: &TrainConfig,
    scores: &Array2<f32>,
    labels: &Array2<f32>,
    results: &EvalResults,
    emb: &Array2<f32>,
    train_counts: &[usize],
) -> Result<()> {
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

/// What [`evaluate_weights`] scores, with which prompts, and where it writes.
#[derive(Debug, Clone)]
pub struct WeightsEval {
    /// CLIP weights: a Hugging Face folder, a hub id in the local cache, an OpenAI/CheXzero
    /// `.pt`, or a checkpoint folder of one of our runs (`<run>/checkpoints/best`; its
    /// architecture comes from the run's `config.toml`).
    pub weights: String,
    pub dataset: cxr_data::Dataset,
    /// Data root; `None`: the synthetic demo dataset.
    pub root: Option<PathBuf>,
    /// Label file; `None`: the dataset's usual file under the root.
    pub labels: Option<PathBuf>,
    pub preprocess: crate::config::Preprocessing,
    pub views: crate::config::Views,
    /// Zero-shot prompts; `None`: CheXzero's `"{}"` / `"no {}"`.
    pub prompts: Option<cxr_text::PromptSet>,
    /// Output folder (created; results in it are replaced).
    pub out: PathBuf,
    pub figures: bool,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Bootstrap resamples for the 95% CIs (0: none).
    pub bootstrap: usize,
}

/// Reads a prompt file: a [`cxr_text::PromptSet`] in TOML (`.toml`) or JSON (any other
/// name), e.g. `pairs = [["{}", "no {}"]]` and `aliases = { "pleural effusion" = ["effusion"] }`.
pub fn read_prompts(path: &Path) -> Result<cxr_text::PromptSet> {
    let text = std::fs::read_to_string(path).at(path)?;
    let bad = |message: String| TrainError::File {
        path: path.to_path_buf(),
        message: format!(
            "invalid prompt file: {message} (expected `pairs = [[\"{{}}\", \"no {{}}\"]]`, \
             optionally `aliases = {{ \"class name\" = [\"alias\"] }}` and `case`)"
        ),
    };
    if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(&text).map_err(|e| bad(e.to_string()))
    } else {
        serde_json::from_str(&text).map_err(|e| bad(e.to_string()))
    }
}

/// Loads any CLIP weights the tool reads. A folder with `model.safetensors` but no
/// `config.json` whose grandparent holds a run's `config.toml` is one of our checkpoints: the
/// run's config builds the architecture. Also returns the files the model was read from (what
/// the embedding cache hashes).
fn load_any(
    weights: &str,
    device: &candle_core::Device,
) -> Result<(cxr_clip::ClipModel, Vec<PathBuf>)> {
    let dir = Path::new(weights);
    let run_config = dir.join("../../config.toml");
    if dir.is_dir()
        && !dir.join("config.json").is_file()
        && dir.join("model.safetensors").is_file()
        && run_config.is_file()
    {
        let text = std::fs::read_to_string(&run_config).at(&run_config)?;
        let cfg = TrainConfig::from_toml_over(&TrainConfig::demo(), &text)?;
        let (varmap, model) = build_model(&cfg, device)?;
        checkpoint::load_weights(dir, &varmap)?;
        return Ok((model, vec![dir.join("model.safetensors"), run_config]));
    }
    let w = cxr_clip::ClipWeights::resolve(weights)?;
    let mut files = vec![w.source.clone()];
    let config = w.source.with_file_name("config.json");
    if w.format == cxr_clip::CheckpointFormat::HuggingFace && config.is_file() {
        files.push(config);
    }
    Ok((w.model(candle_core::DType::F32, device)?, files))
}

/// The image-embedding cache and the extra outputs of [`evaluate_weights_with`].
#[derive(Debug, Clone, Default)]
pub struct EmbeddingOptions {
    /// The image-embedding cache folder ([`crate::embed_cache`]; the CLI's default is
    /// [`crate::embed_cache::default_dir`]); `None`: no cache (`--no-cache`).
    pub cache: Option<PathBuf>,
    /// `--save-embeddings`: also write `image_ids.txt` (the rows of `image_embeddings.npy`),
    /// `prompt_embeddings.npy` and `prompts.tsv`, which reproduce `scores.csv` in numpy.
    pub save: bool,
}

/// Zero-shot evaluation of any CLIP weights on every image of a label file (no split, no run
/// folder): `scores.csv` / `labels.csv` (first column `id`, the record id: `dicom_id` for
/// MIMIC / CXR-LT), `results.json`, `report.md`, `image_embeddings.npy` and figures in
/// `opts.out`. The input size and context length come from the weights' config. Class groups
/// follow `data.rare_set = paper` (other datasets: the scored images' own counts).
pub fn evaluate_weights(opts: &WeightsEval) -> Result<RunEvaluation> {
    Ok(evaluate_weights_with(opts, &EmbeddingOptions::default())?.0)
}

/// [`evaluate_weights`] with an image-embedding cache and `--save-embeddings`; also says where
/// the image embeddings came from ([`CacheUse::Hit`]: read back, no image was embedded).
pub fn evaluate_weights_with(
    opts: &WeightsEval,
    emb_opts: &EmbeddingOptions,
) -> Result<(RunEvaluation, CacheUse)> {
    let device = crate::device::open(&opts.device)?;
    let (model, weight_files) = load_any(&opts.weights, &device)?;
    let clip = model.config();
    let mut cfg = TrainConfig::demo();
    cfg.data.dataset = opts.dataset;
    cfg.data.root = opts.root.clone();
    cfg.data.labels = opts.labels.clone();
    cfg.data.preprocess = opts.preprocess;
    cfg.data.views = opts.views;
    // `prepare` sizes the image cache from the model config: the weights' own input size.
    cfg.model.preset = crate::config::ModelPreset::Tiny;
    cfg.model.image_size = clip.vision_config.image_size;
    cfg.model.context_length = clip.text_config.max_position_embeddings;
    cfg.train_loop.progress = false;
    cfg.eval.bootstrap = opts.bootstrap;
    let data = prepare(&cfg)?;
    let idx = data.usable.clone();
    if idx.is_empty() {
        return Err(TrainError::Dataset(
            "no usable image in the label file".into(),
        ));
    }
    let groups = data.class_groups(&cfg.data, &idx);
    // No training set: the long-tail figure orders classes by their positives here.
    let counts = data.positive_counts(&idx);
    let prompts = opts
        .prompts
        .clone()
        .unwrap_or_else(cxr_text::PromptSet::chexzero);
    let zero_shot = ZeroShot::with_prompts(&cfg, &data, prompts)?;
    let name = Path::new(&opts.weights).file_name().map_or_else(
        || opts.weights.clone(),
        |n| n.to_string_lossy().into_owned(),
    );
    let title = format!(
        "Zero-shot evaluation of `{}` on {} ({}, {} images)",
        opts.weights,
        cfg.data.dataset,
        opts.labels
            .as_deref()
            .map_or_else(|| "default labels".to_string(), |p| p.display().to_string()),
        idx.len()
    );
    let embed = || embed_images(&model, &data, &idx, zero_shot.image_batch(), &device);
    let (emb, cache_use) = match &emb_opts.cache {
        Some(dir) => {
            let cache = EmbeddingCache::new(dir);
            let weights_hash = cache.weights_hash(&weight_files)?;
            let where_ = format!("{:?}", device.location()).to_lowercase();
            let key = EmbeddingKey::new(weights_hash, &data, &idx, &where_);
            cache.get_or_embed(&key, embed)?
        }
        None => (embed()?, CacheUse::Off),
    };
    let results = write_evaluation(
        &opts.out,
        &title,
        &name,
        &cfg,
        &data,
        &idx,
        &groups,
        &counts,
        &zero_shot,
        &model,
        &emb,
        opts.figures,
        emb_opts.save,
    )?;
    let evaluation = RunEvaluation {
        dir: opts.out.clone(),
        results,
    };
    Ok((evaluation, cache_use))
}
