//! The training loop for one method.
//!
//! Each step: embed a batch of images and their texts, take the CLIP InfoNCE loss, and for
//! CXR-CML add the metric loss on pseudo-labels that the mixture model assigns to the
//! (detached, L2-normalised) image embeddings: the paper's triplet loss on hard assignments,
//! or the released code's weighted metric loss on soft ones (`loss.metric`). After each
//! epoch: validation loss (drives ReduceLROnPlateau), validation zero-shot AUC (selects the
//! best checkpoint), a checkpoint.
//!
//! Determinism: the epoch's batch order and any text shuffling are derived from
//! `(seed, epoch, step)`, never from a running RNG, so a resumed run replays the same batches.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use cxr_clip::{ClipConfig, ClipModel};
use cxr_eval::EvalResults;
use cxr_losses::{Mining, TripletConfig, WeightedMetricConfig};
use cxr_mixture::PseudoLabeler;
use cxr_optim::{AdamW, AdamWConfig, PlateauConfig, ReduceLrOnPlateau, Sgd, SgdConfig};
use cxr_text::{ClipTokenizer, MetaLabelText};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, CheckpointState};
use crate::config::{Method, TrainConfig};
use crate::error::IoContext;
use crate::evaluate::{self, ZeroShot};
use crate::metrics::{EpochRecord, MetricsWriter, StepRecord};
use crate::prepare::{Prepared, Split};
use crate::{Result, TrainError};

/// What a finished run hands back.
pub struct TrainOutcome {
    pub run_dir: PathBuf,
    pub epochs: Vec<EpochRecord>,
    /// Zero-shot results on the test split, from the best checkpoint (by validation mean AUC).
    pub test: EvalResults,
    pub best_epoch: usize,
    pub first_loss: f32,
    pub last_loss: f32,
    pub steps: usize,
}

/// The CLIP architecture for this config.
pub fn clip_config(cfg: &TrainConfig) -> Result<ClipConfig> {
    Ok(match cfg.model.preset.as_str() {
        "tiny" => ClipConfig::tiny(cfg.model.image_size),
        "vit-b-32" => ClipConfig::vit_b_32(),
        "vit-b-16" => ClipConfig::vit_b_16(),
        "vit-l-14" => ClipConfig::vit_l_14(),
        other => {
            return Err(TrainError::Config(format!(
                "unknown model.preset `{other}`"
            )))
        }
    })
}

/// A model with all parameters in `varmap`, randomly initialised or loaded from
/// `model.weights`.
pub fn build_model(cfg: &TrainConfig, device: &Device) -> Result<(VarMap, ClipModel)> {
    if let Some(spec) = &cfg.model.weights {
        // The checkpoint's own config decides the architecture.
        let weights = cxr_clip::ClipWeights::resolve(spec)?;
        let (model, varmap) = weights.trainable(DType::F32, device)?;
        return Ok((varmap, model));
    }
    let varmap = VarMap::new();
    let vb = crate::init::SeededVarMap::builder(&varmap, cfg.seed, DType::F32, device);
    let model = ClipModel::new(vb, &clip_config(cfg)?)?;
    Ok((varmap, model))
}

/// Whether a parameter belongs to a frozen tower.
pub fn is_frozen(cfg: &TrainConfig, name: &str) -> bool {
    cfg.train_loop
        .freeze
        .iter()
        .any(|tower| match tower.as_str() {
            "vision" => name.starts_with("vision_model.") || name.starts_with("visual_projection"),
            "text" => name.starts_with("text_model.") || name.starts_with("text_projection"),
            _ => false,
        })
}

/// The parameters the optimiser updates: all but the frozen towers', sorted by name.
fn trainable_vars(cfg: &TrainConfig, varmap: &VarMap) -> Vec<(String, Var)> {
    named_vars(varmap)
        .into_iter()
        .filter(|(n, _)| !is_frozen(cfg, n))
        .collect()
}

/// The parameters of `varmap` sorted by name (a stable order for the optimiser and checkpoints).
pub fn named_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Where each record's training text comes from.
pub enum TextSource {
    MetaLabels {
        writer: MetaLabelText,
        shuffle: bool,
    },
    /// Report impressions, one per record (empty when the report is missing).
    Reports(Vec<String>),
}

impl TextSource {
    pub fn new(cfg: &TrainConfig, data: &Prepared) -> Result<Self> {
        if cfg.method == Method::Baseline {
            let mut missing = 0usize;
            let texts = data
                .table
                .records
                .iter()
                .map(|r| {
                    let text = cxr_data::read_report_impression(
                        &data.reports_root,
                        r.subject_id,
                        r.study_id,
                    )?;
                    Ok(text.unwrap_or_else(|| {
                        missing += 1;
                        String::new()
                    }))
                })
                .collect::<Result<Vec<String>>>()?;
            if missing == data.table.records.len() {
                return Err(TrainError::Dataset(format!(
                    "the baseline trains on report text, but no report was found under {} (files/pXX/pSUBJECT/sSTUDY.txt): set data.reports_root (--reports-root) to the MIMIC-CXR reports folder",
                    data.reports_root.display()
                )));
            }
            if missing > 0 {
                tracing::warn!("{missing} images have no report; they train on an empty text");
            }
            return Ok(TextSource::Reports(texts));
        }
        let writer = match cfg.text.meta_label.as_str() {
            "released-code" => MetaLabelText::released_code(),
            _ => MetaLabelText::paper(),
        };
        Ok(TextSource::MetaLabels {
            writer,
            shuffle: cfg.text.shuffle_order,
        })
    }

    pub fn text(&self, data: &Prepared, record: usize, rng: &mut ChaCha8Rng) -> String {
        match self {
            TextSource::Reports(texts) => texts[record].clone(),
            TextSource::MetaLabels { writer, shuffle } => {
                let names = data.table.positive_class_names(record);
                if *shuffle {
                    writer.render_shuffled(&names, rng)
                } else {
                    writer.render(&names)
                }
            }
        }
    }
}

/// One batch as tensors.
pub(crate) fn batch_tensors(
    data: &Prepared,
    texts: &TextSource,
    tokenizer: &ClipTokenizer,
    idx: &[usize],
    context_length: usize,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let s = data.image_size;
    let pixels = Tensor::from_vec(data.cache.batch_f32(idx), (idx.len(), 3, s, s), device)?;
    let strings: Vec<String> = idx.iter().map(|&i| texts.text(data, i, rng)).collect();
    let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
    let tokens = tokenizer.encode_batch(&refs, context_length)?;
    let ids = Tensor::from_vec(tokens.ids, (tokens.batch, tokens.context_length), device)?;
    Ok((pixels, ids))
}

/// L2-normalise rows (differentiable; the losses' own normalisation).
pub(crate) fn l2_normalise(x: &Tensor) -> Result<Tensor> {
    Ok(cxr_losses::l2_normalise(x)?)
}

pub(crate) fn triplet_config(cfg: &TrainConfig) -> TripletConfig {
    let mining = match cfg.loss.mining.as_str() {
        "batch-hard" => Mining::BatchHard,
        "semi-hard" => Mining::SemiHard,
        _ => Mining::BatchAll,
    };
    TripletConfig {
        margin: cfg.loss.margin as f32,
        mining,
        normalise: true,
    }
}

fn pseudo_labeler(cfg: &TrainConfig) -> Result<PseudoLabeler> {
    use cxr_mixture::{
        ComponentRule, CovarianceType, MixtureKind, NuPolicy, PseudoLabelConfig, PseudoLabelSource,
    };
    let m = &cfg.mixture;
    let source = match m.source.as_str() {
        "per-batch" => PseudoLabelSource::PerBatch,
        "epoch" => PseudoLabelSource::Epoch,
        _ => PseudoLabelSource::MemoryBank {
            capacity: m.bank_capacity,
        },
    };
    let kind = match m.kind.as_str() {
        "gaussian" => MixtureKind::Gaussian,
        "student-t-one-pass" => MixtureKind::StudentTOnePass { nu: m.nu },
        _ => MixtureKind::StudentT {
            nu: NuPolicy::Fixed(m.nu),
        },
    };
    let covariance = match m.covariance.as_str() {
        "full" => CovarianceType::Full,
        "spherical" => CovarianceType::Spherical,
        _ => CovarianceType::Diag,
    };
    let pcfg = PseudoLabelConfig {
        source,
        k: m.k,
        k_rule: match m.k_rule.as_str() {
            "released-code" => ComponentRule::ReleasedCode,
            _ => ComponentRule::Fixed,
        },
        kind,
        covariance,
        reg_covar: m.reg_covar,
        max_iter: m.max_iter,
        tol: m.tol,
        n_init: m.n_init,
        seed: cfg.seed,
        device: crate::device::mixture(&m.device)?,
    };
    Ok(PseudoLabeler::new(pcfg)?)
}

/// The configured optimiser (AdamW, or SGD with momentum as CheXzero).
pub enum Optimizer {
    AdamW(AdamW),
    Sgd(Sgd),
}

impl Optimizer {
    pub fn new(cfg: &TrainConfig, varmap: &VarMap) -> Result<Self> {
        let o = &cfg.optim;
        Ok(if o.kind == "sgd" {
            let scfg = SgdConfig {
                lr: o.lr,
                momentum: o.momentum,
                weight_decay: o.weight_decay,
                ..SgdConfig::default()
            };
            Optimizer::Sgd(Sgd::new(
                named_vars(varmap),
                scfg,
                cxr_optim::default_decay_filter,
            )?)
        } else {
            let acfg = AdamWConfig {
                lr: o.lr,
                beta1: o.beta1,
                beta2: o.beta2,
                eps: o.eps,
                weight_decay: o.weight_decay,
            };
            Optimizer::AdamW(AdamW::new(
                named_vars(varmap),
                acfg,
                cxr_optim::default_decay_filter,
            )?)
        })
    }

    pub fn step(&mut self, grads: &candle_core::backprop::GradStore) -> Result<()> {
        match self {
            Optimizer::AdamW(o) => o.step(grads)?,
            Optimizer::Sgd(o) => o.step(grads)?,
        }
        Ok(())
    }

    pub fn learning_rate(&self) -> f64 {
        match self {
            Optimizer::AdamW(o) => o.learning_rate(),
            Optimizer::Sgd(o) => o.learning_rate(),
        }
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        match self {
            Optimizer::AdamW(o) => o.set_learning_rate(lr),
            Optimizer::Sgd(o) => o.set_learning_rate(lr),
        }
    }

    /// Moments and step count, for checkpoints.
    pub fn state_tensors(&self) -> Result<std::collections::HashMap<String, Tensor>> {
        Ok(match self {
            Optimizer::AdamW(o) => o.state_tensors()?,
            Optimizer::Sgd(o) => o.state_tensors()?,
        })
    }

    pub fn load_state_tensors(
        &mut self,
        state: &std::collections::HashMap<String, Tensor>,
    ) -> Result<()> {
        match self {
            Optimizer::AdamW(o) => o.load_state_tensors(state)?,
            Optimizer::Sgd(o) => o.load_state_tensors(state)?,
        }
        Ok(())
    }
}

/// The batch order of one epoch, derived from `(seed, epoch)` alone.
pub(crate) fn epoch_order(train: &[usize], seed: u64, epoch: usize) -> Vec<usize> {
    let mut order = train.to_vec();
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(epoch as u64 + 1)));
    order.shuffle(&mut rng);
    order
}

/// Train one method on `split` and evaluate it on `split.test`, writing everything to `run_dir`.
/// A fresh run refuses a folder that already holds a run (nothing written is overwritten).
pub fn train_one(
    cfg: &TrainConfig,
    data: &Prepared,
    split: &Split,
    run_dir: &Path,
) -> Result<TrainOutcome> {
    train_resumable(cfg, data, split, run_dir, None)
}

/// As [`train_one`], continuing from the checkpoint folder `resume` when given: weights,
/// optimiser moments, scheduler and progress are restored, metrics written after that
/// checkpoint are moved to `metrics.discarded.jsonl`, and training goes on with the next epoch.
pub fn train_resumable(
    cfg: &TrainConfig,
    data: &Prepared,
    split: &Split,
    run_dir: &Path,
    resume: Option<&Path>,
) -> Result<TrainOutcome> {
    cfg.validate()?;
    let device = crate::device::open(&cfg.train_loop.device)?;
    std::fs::create_dir_all(run_dir).at(run_dir)?;
    let config_path = run_dir.join("config.toml");
    match resume {
        None => {
            if config_path.exists() || checkpoint::latest(run_dir)?.is_some() {
                return Err(TrainError::Config(format!(
                    "{} already holds a run: resume it (--resume latest) or choose another output folder",
                    run_dir.display()
                )));
            }
            // The resolved config and the split go into the run directory before step 0.
            std::fs::write(&config_path, cfg.to_toml()).at(&config_path)?;
            let split_path = run_dir.join(crate::run_eval::SPLIT_FILE);
            let ids = crate::run_eval::SplitIds::of(data, split);
            std::fs::write(&split_path, serde_json::to_vec(&ids).expect("serialises"))
                .at(&split_path)?;
        }
        Some(_) => {
            let saved = std::fs::read_to_string(&config_path).at(&config_path)?;
            let saved = TrainConfig::from_toml_over(cfg, &saved)?;
            if !same_run(&saved, cfg) {
                return Err(TrainError::Config(format!(
                    "the config differs from the one in {}: a resumed run must use the same settings",
                    config_path.display()
                )));
            }
        }
    }

    let tokenizer = ClipTokenizer::bundled()?;
    let texts = TextSource::new(cfg, data)?;
    let (varmap, model) = build_model(cfg, &device)?;
    let log_temperature = metric_log_temperature(cfg, &varmap, &device)?;
    let mut opt = Optimizer::new(cfg, &varmap)?;
    let mut plateau = ReduceLrOnPlateau::new(PlateauConfig {
        factor: cfg.schedule.factor,
        patience: cfg.schedule.patience,
        min_lr: cfg.schedule.min_lr,
        ..PlateauConfig::default()
    })?;
    let mut labeler = if cfg.method == Method::CxrCml {
        Some(pseudo_labeler(cfg)?)
    } else {
        None
    };
    let triplet_cfg = triplet_config(cfg);
    let groups = data.class_groups(&cfg.data, &split.train);
    let train_counts = data.positive_counts(&split.train);
    let zero_shot = ZeroShot::new(cfg, data)?;
    // Validation mean zero-shot AUC (no bootstrap): selects `best/` and is logged.
    let validation_auc = |model: &ClipModel| -> Result<Option<f64>> {
        let res =
            zero_shot.evaluate(model, data, &split.val, &groups, &train_counts, 0, cfg.seed)?;
        Ok(res.macro_all)
    };

    let batch = cfg.train_loop.batch_size;
    let steps_per_epoch = split.train.len().div_ceil(batch);
    let total_steps = cfg
        .train_loop
        .max_steps
        .unwrap_or(usize::MAX)
        .min(steps_per_epoch * cfg.train_loop.epochs);
    let progress = crate::metrics::progress_bar(
        cfg.train_loop.progress,
        total_steps as u64,
        cfg.method.as_str(),
    );

    let mut step = 0usize;
    let mut epochs = Vec::new();
    let mut best: Option<(f64, usize)> = None;
    let (mut first_loss, mut last_loss) = (f32::NAN, f32::NAN);
    let mut epochs_without_improvement = 0usize;
    let mut start_epoch = 0usize;
    let base_lr = cfg.optim.lr;

    if let Some(dir) = resume {
        let state = checkpoint::read_state(dir)?;
        checkpoint::load_weights(dir, &varmap)?;
        opt.load_state_tensors(&checkpoint::load_optimizer(dir)?)?;
        opt.set_learning_rate(state.lr);
        plateau = state.plateau.clone();
        step = state.step;
        start_epoch = state.epoch + 1;
        best = state.best_score.zip(state.best_epoch);
        epochs_without_improvement = state.epochs_without_improvement;
        first_loss = state.first_loss;
        if let Some(labeler) = labeler.as_mut() {
            checkpoint::load_labeler(dir, labeler)?;
        }
        epochs = crate::metrics::truncate_after(run_dir, state.epoch, state.step)?;
        progress.set_position(step as u64);
        tracing::info!(
            "resumed {} from {} (epoch {}, step {step})",
            cfg.method.as_str(),
            dir.display(),
            state.epoch
        );
    }
    let mut metrics = MetricsWriter::create(run_dir)?;

    let mut reached_max_steps = false;
    for epoch in start_epoch..cfg.train_loop.epochs {
        let order = epoch_order(&split.train, cfg.seed, epoch);
        let (mut loss_sum, mut n_batches) = (0f64, 0usize);
        for chunk in order.chunks(batch) {
            if chunk.len() < 2 {
                continue; // a contrastive batch needs at least one negative
            }
            if step >= total_steps {
                // Finish this epoch's bookkeeping (validation, checkpoint), then stop.
                reached_max_steps = true;
                break;
            }
            if cfg.schedule.kind != "plateau" {
                opt.set_learning_rate(scheduled_lr(cfg, base_lr, step, total_steps));
            }
            let t0 = Instant::now();
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(step as u64));
            let (pixels, ids) = batch_tensors(
                data,
                &texts,
                &tokenizer,
                chunk,
                cfg.model.context_length,
                &mut rng,
                &device,
            )?;
            let accumulate = cfg.train_loop.accumulate.max(1);
            let (loss, clip, metric_value, mut grads) = if accumulate == 1 {
                let img = model.encode_image(&pixels)?;
                let txt = model.encode_text(&ids)?;
                let pseudo = match labeler.as_mut() {
                    Some(l) => Some(pseudo_labels(l, &img, cfg)?),
                    None => None,
                };
                let (loss, clip, metric) = objective(
                    &img,
                    &txt,
                    model.logit_scale(),
                    log_temperature.as_ref(),
                    pseudo.as_ref(),
                    cfg,
                    &triplet_cfg,
                )?;
                let grads = loss.backward()?;
                (loss, clip, metric, grads)
            } else {
                accumulated_step(
                    &model,
                    &pixels,
                    &ids,
                    accumulate,
                    labeler.as_mut(),
                    log_temperature.as_ref(),
                    cfg,
                    &triplet_cfg,
                    &vars_only(cfg, &varmap),
                )?
            };
            let metric_value = match metric_value {
                Some(t) => Some(t.to_scalar::<f32>()?),
                None => None,
            };
            let loss_value = loss.to_scalar::<f32>()?;
            if !loss_value.is_finite() {
                let last = checkpoint::latest(run_dir)?
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "none (no epoch completed)".into());
                return Err(TrainError::NonFiniteLoss {
                    value: loss_value,
                    epoch,
                    step,
                    checkpoint: last,
                });
            }
            let grad_norm = match cfg.optim.grad_clip {
                Some(max) => Some(cxr_optim::clip_grad_norm(
                    &vars_only(cfg, &varmap),
                    &mut grads,
                    max,
                )?),
                None => None,
            };
            opt.step(&grads)?;
            if first_loss.is_nan() {
                first_loss = loss_value;
            }
            last_loss = loss_value;
            loss_sum += loss_value as f64;
            n_batches += 1;
            let secs = t0.elapsed().as_secs_f64();
            metrics.step(&StepRecord {
                epoch,
                step,
                loss: loss_value,
                clip_loss: clip.to_scalar::<f32>()?,
                metric_loss: metric_value,
                lr: opt.learning_rate(),
                grad_norm,
                images_per_sec: chunk.len() as f64 / secs.max(1e-9),
            })?;
            progress.set_message(format!(
                "epoch {epoch} loss {loss_value:.4} lr {:.2e} {:.1} img/s",
                opt.learning_rate(),
                chunk.len() as f64 / secs.max(1e-9)
            ));
            progress.inc(1);
            step += 1;
            if let Some(every) = cfg.train_loop.validate_every.filter(|&e| e > 0) {
                if step % every == 0 && !split.val.is_empty() {
                    metrics.validation(epoch, step, validation_auc(&model)?)?;
                }
            }
        }
        if n_batches == 0 {
            break;
        }
        if let (Some(labeler), true) = (labeler.as_mut(), cfg.mixture.source == "epoch") {
            let emb = evaluate::embed_images(&model, data, &split.train, batch, &device)?;
            labeler.refit_epoch(emb.view())?;
        }

        // Validation: loss for the plateau schedule, zero-shot AUC for model selection.
        let (val_loss, val_auc) = if split.val.is_empty() {
            (loss_sum / n_batches as f64, None)
        } else {
            let vl = evaluate::validation_loss(
                cfg, data, &texts, &tokenizer, &model, &split.val, &device,
            )?;
            (vl, validation_auc(&model)?)
        };
        if cfg.schedule.kind == "plateau" {
            let lr = plateau.step(val_loss, opt.learning_rate());
            opt.set_learning_rate(lr);
        }
        let record = EpochRecord {
            epoch,
            step,
            train_loss: loss_sum / n_batches as f64,
            val_loss,
            val_macro_auc: val_auc,
            lr: opt.learning_rate(),
        };
        metrics.epoch(&record)?;
        epochs.push(record);

        // Best by validation mean AUC (or by validation loss when there is no AUC).
        let score = val_auc.unwrap_or(-val_loss);
        let improved = best.is_none_or(|(b, _)| score > b);
        if improved {
            best = Some((score, epoch));
            epochs_without_improvement = 0;
        } else {
            epochs_without_improvement += 1;
        }
        let state = CheckpointState {
            epoch,
            step,
            lr: opt.learning_rate(),
            best_score: best.map(|b| b.0),
            best_epoch: best.map(|b| b.1),
            epochs_without_improvement,
            first_loss,
            plateau: plateau.clone(),
        };
        checkpoint::save(
            run_dir,
            &varmap,
            &opt,
            labeler.as_ref(),
            &state,
            improved,
            cfg.train_loop.keep_last,
        )?;
        if reached_max_steps || step >= total_steps {
            break;
        }
        if let Some(patience) = cfg.train_loop.early_stop_patience {
            if epochs_without_improvement >= patience {
                tracing::info!("early stop after epoch {epoch}: no validation improvement for {patience} epochs");
                break;
            }
        }
    }
    progress.finish_and_clear();

    if epochs.is_empty() {
        return Err(TrainError::Dataset(format!(
            "no training step ran: {} training images for batch size {batch}",
            split.train.len()
        )));
    }
    // Test with the best weights.
    let best_epoch = best.map(|b| b.1).unwrap_or(epochs.len() - 1);
    checkpoint::load_weights(&checkpoint::best_dir(run_dir), &varmap)?;
    // The same path as `cargo xtask eval`: results, CSVs, embeddings and figures.
    let test = crate::run_eval::evaluate_loaded(
        run_dir,
        cfg,
        data,
        split,
        &model,
        "best",
        "test",
        cfg.eval.figures,
    )?
    .results;
    Ok(TrainOutcome {
        run_dir: run_dir.to_path_buf(),
        epochs,
        test,
        best_epoch,
        first_loss,
        last_loss,
        steps: step,
    })
}

/// Whether two configs describe the same run (display-only settings may differ).
fn same_run(a: &TrainConfig, b: &TrainConfig) -> bool {
    let mut a = a.clone();
    a.train_loop.progress = b.train_loop.progress;
    a.train_loop.device.clone_from(&b.train_loop.device);
    a.mixture.device.clone_from(&b.mixture.device);
    a == *b
}

/// The name of the weighted metric loss's learnable log temperature in the model's VarMap
/// (saved and restored with the weights; no weight decay, by `default_decay_filter`).
pub const METRIC_LOG_TEMPERATURE: &str = "metric_loss.log_temperature";

/// The learnable log temperature of the weighted metric loss, added to `varmap` when the run
/// uses it (before the optimiser is built, so that it is trained and checkpointed).
fn metric_log_temperature(
    cfg: &TrainConfig,
    varmap: &VarMap,
    device: &Device,
) -> Result<Option<Tensor>> {
    if cfg.method != Method::CxrCml || cfg.loss.metric != "weighted" {
        return Ok(None);
    }
    let init = candle_nn::Init::Const(cfg.loss.temperature_init.ln());
    Ok(Some(varmap.get(
        (),
        METRIC_LOG_TEMPERATURE,
        init,
        DType::F32,
        device,
    )?))
}

/// One batch's pseudo-label targets for the metric loss.
enum Targets {
    /// Cluster ids, for the triplet loss.
    Hard(Vec<usize>),
    /// Sharpened, mass-reweighted posteriors (`batch x clusters`), for the weighted loss.
    Soft(Tensor),
}

/// Pseudo-labels of a batch from its detached, L2-normalised image embeddings; the fit is
/// updated as the source says, then hard (triplet) or soft (weighted) targets are read off it.
fn pseudo_labels(labeler: &mut PseudoLabeler, img: &Tensor, cfg: &TrainConfig) -> Result<Targets> {
    let n = img.dim(0)?;
    let flat: Vec<f32> = l2_normalise(&img.detach())?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    let view =
        ndarray::ArrayView2::from_shape((n, flat.len() / n), &flat).expect("embedding shape");
    if cfg.loss.metric != "weighted" {
        return Ok(Targets::Hard(labeler.assign(view)?));
    }
    let proba = labeler.assign_proba(view)?;
    let k = proba.ncols();
    let posteriors = Tensor::from_vec(proba.iter().copied().collect(), (n, k), img.device())?;
    let soft = cxr_losses::soft_pseudo_labels(&posteriors, cfg.loss.sharpen)?;
    Ok(Targets::Soft(soft.to_dtype(img.dtype())?))
}

/// The step objective from embeddings: CLIP InfoNCE plus, with pseudo-labels, the weighted
/// metric loss (triplet on hard targets; the released code's weighted loss on soft targets,
/// with distances divided by `exp(log_temperature)`). Returns (total, clip, metric).
fn objective(
    img: &Tensor,
    txt: &Tensor,
    logit_scale: &Tensor,
    log_temperature: Option<&Tensor>,
    targets: Option<&Targets>,
    cfg: &TrainConfig,
    triplet_cfg: &TripletConfig,
) -> cxr_losses::Result<(Tensor, Tensor, Option<Tensor>)> {
    let clip = cxr_losses::clip_loss(img, txt, logit_scale)?;
    let metric = match (targets, log_temperature) {
        (None, _) => return Ok((clip.clone(), clip, None)),
        (Some(Targets::Hard(labels)), _) => cxr_losses::triplet_loss(img, labels, triplet_cfg)?,
        (Some(Targets::Soft(soft)), Some(log_t)) => {
            let wcfg = WeightedMetricConfig {
                base_margin: cfg.loss.margin,
            };
            cxr_losses::weighted_metric_loss(img, txt, soft, &log_t.exp()?, &wcfg)?
        }
        (Some(Targets::Soft(_)), None) => {
            return Err(cxr_losses::LossError::Config(
                "the weighted metric loss needs its learnable temperature".into(),
            ))
        }
    };
    let total = (&clip + (&metric * cfg.loss.metric_weight)?)?;
    Ok((total, clip, Some(metric)))
}

/// One step in `micro` micro-batches whose parameter gradient equals the full batch's exactly
/// (GradCache): embed every micro-batch without a graph, take the batch loss and its gradient
/// with respect to the embeddings, then re-run each micro-batch with a graph and backpropagate
/// its slice of that gradient. Peak activation memory is one micro-batch's.
fn accumulated_step(
    model: &ClipModel,
    pixels: &Tensor,
    ids: &Tensor,
    micro: usize,
    labeler: Option<&mut PseudoLabeler>,
    log_temperature: Option<&Tensor>,
    cfg: &TrainConfig,
    triplet_cfg: &TripletConfig,
    params: &[Var],
) -> Result<(
    Tensor,
    Tensor,
    Option<Tensor>,
    candle_core::backprop::GradStore,
)> {
    let n = pixels.dim(0)?;
    let size = n.div_ceil(micro);
    let parts: Vec<(usize, usize)> = (0..n).step_by(size).map(|s| (s, size.min(n - s))).collect();
    let mut imgs = Vec::new();
    let mut txts = Vec::new();
    for &(s, len) in &parts {
        imgs.push(model.encode_image(&pixels.narrow(0, s, len)?)?.detach());
        txts.push(model.encode_text(&ids.narrow(0, s, len)?)?.detach());
    }
    let img = Tensor::cat(&imgs, 0)?;
    let txt = Tensor::cat(&txts, 0)?;
    let pseudo = match labeler {
        Some(l) => Some(pseudo_labels(l, &img, cfg)?),
        None => None,
    };
    let scale = model.logit_scale();
    // Batch-level inputs: the logit scale and, for the weighted loss, the log temperature.
    let mut inputs = vec![&img, &txt, scale];
    inputs.extend(log_temperature);
    let (_, input_grads) = cxr_losses::input_gradients(&inputs, |x| {
        objective(
            &x[0],
            &x[1],
            &x[2],
            x.get(3),
            pseudo.as_ref(),
            cfg,
            triplet_cfg,
        )
        .map(|o| o.0)
    })?;
    let (loss, clip, metric) = objective(
        &img,
        &txt,
        &scale.detach(),
        log_temperature.map(Tensor::detach).as_ref(),
        pseudo.as_ref(),
        cfg,
        triplet_cfg,
    )?;
    let mut total = candle_core::backprop::GradStore::default();
    for (k, &(s, len)) in parts.iter().enumerate() {
        let img_k = model.encode_image(&pixels.narrow(0, s, len)?)?;
        let txt_k = model.encode_text(&ids.narrow(0, s, len)?)?;
        let g_img = input_grads[0].narrow(0, s, len)?;
        let g_txt = input_grads[1].narrow(0, s, len)?;
        let mut outs = vec![&img_k, &txt_k];
        let mut gs = vec![&g_img, &g_txt];
        if k == 0 {
            // The logit scale and temperature are used once per batch, not per micro-batch.
            outs.extend(&inputs[2..]);
            gs.extend(&input_grads[2..]);
        }
        let grads = cxr_losses::surrogate(&outs, &gs)?.backward()?;
        for p in params {
            if let Some(g) = grads.get(p.as_tensor()) {
                let sum = match total.get(p.as_tensor()) {
                    Some(t) => (t + g)?,
                    None => g.clone(),
                };
                total.insert(p.as_tensor(), sum);
            }
        }
    }
    Ok((loss, clip, metric, total))
}

fn vars_only(cfg: &TrainConfig, varmap: &VarMap) -> Vec<Var> {
    trainable_vars(cfg, varmap)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn scheduled_lr(cfg: &TrainConfig, base: f64, step: usize, total: usize) -> f64 {
    let s = &cfg.schedule;
    match s.kind.as_str() {
        "cosine" => cxr_optim::LrSchedule::CosineWithWarmup {
            warmup_steps: s.warmup_steps,
            total_steps: total,
            min_lr: s.min_lr,
        }
        .lr_at(base, step),
        _ => base,
    }
}
