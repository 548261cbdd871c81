//! The training loop for one method: epochs of optimisation steps ([`crate::step`]), and after
//! each epoch the validation loss (drives ReduceLROnPlateau), the validation zero-shot AUC
//! (selects the best checkpoint), early stopping and a checkpoint; at the end, the test
//! evaluation of the best checkpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::Device;
use candle_nn::VarMap;
use cxr_clip::ClipModel;
use cxr_eval::{ClassGroup, EvalResults};
use cxr_optim::{Optimizer, PlateauConfig, ReduceLrOnPlateau};
use cxr_text::ClipTokenizer;
use indicatif::ProgressBar;

use crate::batch::{epoch_order, HostBatch, TextSource};
use crate::checkpoint::{self, MidEpoch};
use crate::config::{LabelSource, ScheduleKind, TrainConfig};
use crate::evaluate::{self, ZeroShot};
use crate::metrics::{EpochRecord, MetricsWriter, StepRecord};
pub use crate::model::METRIC_LOG_TEMPERATURE;
use crate::prepare::{Prepared, Split};
use crate::start::{Progress, Restorable, Start};
use crate::step::Objective;
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
    let start = match resume {
        Some(dir) => Start::Checkpoint(dir),
        None => Start::Fresh,
    };
    train_from(cfg, data, split, run_dir, start)
}

/// Continue the run in `run_dir` whatever a crash left there (`--resume latest`): from its
/// newest intact checkpoint, from the start when it stopped before its first checkpoint, or
/// fresh in an empty folder (see [`Start::Continue`]).
pub fn train_continue(
    cfg: &TrainConfig,
    data: &Prepared,
    split: &Split,
    run_dir: &Path,
) -> Result<TrainOutcome> {
    train_from(cfg, data, split, run_dir, Start::Continue)
}

fn train_from(
    cfg: &TrainConfig,
    data: &Prepared,
    split: &Split,
    run_dir: &Path,
    start: Start<'_>,
) -> Result<TrainOutcome> {
    cfg.validate()?;
    let device = crate::device::open(&cfg.train_loop.device)?;
    let (_lock, resume) = crate::start::open_run_dir(cfg, data, split, run_dir, start)?;
    let mut trainer = Trainer::new(cfg, data, split, run_dir, device)?;
    if let Some(dir) = &resume {
        trainer.resume_from(dir)?;
    }
    trainer.run()?;
    trainer.finish()
}

/// The validation zero-shot AUC: selects `best/` and is logged.
struct Validator {
    zero_shot: ZeroShot,
    groups: Vec<ClassGroup>,
    train_counts: Vec<usize>,
}

impl Validator {
    fn new(cfg: &TrainConfig, data: &Prepared, split: &Split) -> Result<Self> {
        Ok(Self {
            zero_shot: ZeroShot::new(cfg, data)?,
            groups: data.class_groups(&cfg.data, &split.train),
            train_counts: data.positive_counts(&split.train),
        })
    }

    /// Mean zero-shot AUC over the validation records (no bootstrap).
    fn auc(&self, t: &Trainer<'_>) -> Result<Option<f64>> {
        let res = self.zero_shot.evaluate(
            &t.eval_model()?,
            t.data,
            &t.split.val,
            &self.groups,
            &self.train_counts,
            0,
            t.cfg.seed,
        )?;
        Ok(res.macro_all)
    }
}

/// One method's training: the model, its objective and optimiser, and where the run stands.
struct Trainer<'a> {
    cfg: &'a TrainConfig,
    data: &'a Prepared,
    split: &'a Split,
    run_dir: &'a Path,
    device: Device,
    /// Shared with the thread that builds the next batch (`loop.prefetch`).
    tokenizer: Arc<ClipTokenizer>,
    texts: Arc<TextSource>,
    /// The training records this method trains on (`split.train` less, for the baseline,
    /// the images without a report).
    train: Vec<usize>,
    varmap: VarMap,
    model: ClipModel,
    objective: Objective<'a>,
    opt: Box<dyn Optimizer>,
    plateau: ReduceLrOnPlateau,
    validator: Validator,
    progress: Progress,
    total_steps: usize,
    bar: ProgressBar,
}

impl<'a> Trainer<'a> {
    fn new(
        cfg: &'a TrainConfig,
        data: &'a Prepared,
        split: &'a Split,
        run_dir: &'a Path,
        device: Device,
    ) -> Result<Self> {
        let tokenizer = Arc::new(ClipTokenizer::bundled()?);
        let texts = Arc::new(TextSource::new(cfg, data)?);
        let train = training_records(cfg, &texts, split)?;
        let (varmap, model) = crate::model::build_model(cfg, &device)?;
        let log_temperature = crate::model::metric_log_temperature(cfg, &varmap, &device)?;
        let opt = crate::model::build_optimizer(cfg, &varmap)?;
        let plateau = ReduceLrOnPlateau::new(PlateauConfig {
            factor: cfg.schedule.factor,
            patience: cfg.schedule.patience,
            min_lr: cfg.schedule.min_lr,
            ..PlateauConfig::default()
        })?;
        let objective = Objective::new(cfg, log_temperature)?;
        let validator = Validator::new(cfg, data, split)?;
        let steps_per_epoch = train.len().div_ceil(cfg.train_loop.batch_size);
        let total_steps = cfg
            .train_loop
            .max_steps
            .unwrap_or(usize::MAX)
            .min(steps_per_epoch * cfg.train_loop.epochs);
        let bar = crate::metrics::progress_bar(
            cfg.train_loop.progress,
            total_steps as u64,
            cfg.method.as_str(),
        );
        Ok(Self {
            cfg,
            data,
            split,
            run_dir,
            device,
            tokenizer,
            texts,
            train,
            varmap,
            model,
            objective,
            opt,
            plateau,
            validator,
            progress: Progress::new(),
            total_steps,
            bar,
        })
    }

    /// Continue from the checkpoint folder `dir`.
    fn resume_from(&mut self, dir: &Path) -> Result<()> {
        self.progress = crate::start::restore(
            self.run_dir,
            dir,
            Restorable {
                varmap: &self.varmap,
                opt: self.opt.as_mut(),
                plateau: &mut self.plateau,
                labeler: self.objective.labeler.as_mut(),
            },
        )?;
        self.bar.set_position(self.progress.step as u64);
        tracing::info!(
            "resumed {} from {} (epoch {}, step {})",
            self.cfg.method.as_str(),
            dir.display(),
            self.progress.next_epoch - 1,
            self.progress.step
        );
        Ok(())
    }

    /// The remaining epochs.
    fn run(&mut self) -> Result<()> {
        let mut metrics = MetricsWriter::create(self.run_dir)?;
        if self.cfg.train_loop.tensorboard {
            // A new events file per session; after an earlier one (a resume), it starts with a
            // `SessionLog START` at the step training goes on from.
            let earlier = !crate::tensorboard::events_files(self.run_dir)?.is_empty();
            let resumed_at = earlier.then_some(self.progress.step);
            metrics = metrics.with_tensorboard(self.run_dir, resumed_at)?;
        }
        for epoch in self.progress.next_epoch..self.cfg.train_loop.epochs {
            let Some(epoch_loss) = self.train_epoch(epoch, &mut metrics)? else {
                break;
            };
            self.end_epoch(epoch, epoch_loss, &mut metrics)?;
            if self.progress.step >= self.total_steps || self.should_stop_early(epoch) {
                break;
            }
        }
        self.bar.finish_and_clear();
        Ok(())
    }

    /// The optimisation steps of one epoch; their mean loss, or `None` when no step ran. Under
    /// `loop.prefetch` the next step's batch is built on a second thread while a step runs
    /// ([`crate::prefetch`]); each batch depends on its records and step alone, so the run is
    /// the same either way.
    fn train_epoch(&mut self, epoch: usize, metrics: &mut MetricsWriter) -> Result<Option<f64>> {
        let cfg = self.cfg;
        let order = epoch_order(&self.train, cfg.seed, epoch);
        // After a mid-epoch checkpoint: the batches it had done are skipped, its sums kept.
        let resumed = self.progress.in_epoch.take();
        let (mut loss_sum, mut n_batches) = resumed.map_or((0f64, 0), |m| (m.loss_sum, m.steps));
        let done = resumed.map_or(0, |m| m.batches_done);
        let jobs = step_jobs(
            &order,
            cfg.train_loop.batch_size,
            done,
            self.progress.step,
            self.total_steps,
        );
        let (data, texts, tokenizer) = (
            self.data,
            Arc::clone(&self.texts),
            Arc::clone(&self.tokenizer),
        );
        let make = |job: &StepJob<'_>| {
            let t0 = Instant::now();
            let batch = HostBatch::for_step(
                data,
                &texts,
                &tokenizer,
                job.records,
                cfg.model.context_length,
                cfg.seed,
                job.step,
            );
            (batch, t0.elapsed())
        };
        // Time spent building batches, and time the steps spent waiting for them.
        let (mut built, mut waited) = (Duration::ZERO, Duration::ZERO);
        let prefetch = cfg.train_loop.prefetch;
        crate::prefetch::pipeline(prefetch, &jobs, make, |job, (batch, took), asked| {
            built += took;
            waited += asked.elapsed();
            let batch = batch.map_err(|e| batch_error(data, epoch, job, e))?;
            assert_eq!(
                job.step, self.progress.step,
                "the batch plan follows the steps"
            );
            loss_sum += self.train_step(epoch, job.records, batch, asked, metrics)? as f64;
            n_batches += 1;
            if let Some(every) = cfg.train_loop.validate_every.filter(|&e| e > 0) {
                if self.progress.step.is_multiple_of(every) && !self.split.val.is_empty() {
                    let auc = self.validator.auc(self)?;
                    metrics.validation(epoch, self.progress.step, auc)?;
                }
            }
            let here = MidEpoch {
                batches_done: job.batch + 1,
                loss_sum,
                steps: n_batches,
            };
            self.checkpoint_inside(epoch, here, metrics)
        })?;
        tracing::debug!(
            "epoch {epoch}: {} batches built in {:.3} s, the steps waited {:.3} s for them \
             (loop.prefetch = {prefetch})",
            jobs.len(),
            built.as_secs_f64(),
            waited.as_secs_f64()
        );
        Ok((n_batches > 0).then(|| loss_sum / n_batches as f64))
    }

    /// A mid-epoch checkpoint at `here`, when `loop.checkpoint_every` says so or an interrupt
    /// asks to stop; after an interrupt, the error that stops training.
    fn checkpoint_inside(
        &mut self,
        epoch: usize,
        here: MidEpoch,
        metrics: &mut MetricsWriter,
    ) -> Result<()> {
        let step = self.progress.step;
        let signal = crate::interrupt::requested();
        let due = self
            .cfg
            .train_loop
            .checkpoint_every
            .is_some_and(|n| n > 0 && step.is_multiple_of(n));
        if signal.is_none() && !due {
            return Ok(());
        }
        // The steps logged so far must be on disk before the checkpoint that counts them.
        metrics.flush()?;
        let dir = self.save_checkpoint(epoch, Some(here), false)?;
        match signal {
            Some(signal) => Err(TrainError::Interrupted {
                signal,
                step,
                checkpoint: dir,
            }),
            None => Ok(()),
        }
    }

    /// One optimisation step on `batch`, the records `chunk`; returns its loss. Its rate counts
    /// from `asked`, when the loop started waiting for the batch.
    fn train_step(
        &mut self,
        epoch: usize,
        chunk: &[usize],
        batch: HostBatch,
        asked: Instant,
        metrics: &mut MetricsWriter,
    ) -> Result<f32> {
        let (cfg, step) = (self.cfg, self.progress.step);
        // The plateau schedule's current rate; a warm-up step runs below it, then it returns.
        let current_lr = self.opt.learning_rate();
        let lr = scheduled_lr(cfg, step, self.total_steps, current_lr);
        self.opt.set_learning_rate(lr);
        let (pixels, ids) = batch.into_tensors(&self.device)?;
        let params = crate::model::trainable_vars(cfg, &self.varmap);
        let mut out = self
            .objective
            .loss_and_grads(&self.model, &pixels, &ids, &params)?;
        let metric_loss = match &out.metric {
            Some(t) => Some(t.to_scalar::<f32>()?),
            None => None,
        };
        let loss = out.total.to_scalar::<f32>()?;
        if !loss.is_finite() {
            return Err(self.non_finite(loss, epoch));
        }
        let grad_norm = crate::step::apply(cfg, self.opt.as_mut(), &mut out.grads, &params)?;
        if self.progress.first_loss.is_nan() {
            self.progress.first_loss = loss;
        }
        self.progress.last_loss = loss;
        let images_per_sec = chunk.len() as f64 / asked.elapsed().as_secs_f64().max(1e-9);
        metrics.step(&StepRecord {
            epoch,
            step,
            loss,
            clip_loss: out.clip.to_scalar::<f32>()?,
            metric_loss,
            lr,
            grad_norm,
            images_per_sec,
        })?;
        self.bar.set_message(format!(
            "epoch {epoch} loss {loss:.4} lr {lr:.2e} {images_per_sec:.1} img/s"
        ));
        if cfg.schedule.kind == ScheduleKind::Plateau {
            // The plateau schedule steps (and checkpoints) the rate without warm-up.
            self.opt.set_learning_rate(current_lr);
        }
        self.bar.inc(1);
        self.progress.step += 1;
        Ok(loss)
    }

    /// The error for a non-finite loss, naming the last good checkpoint.
    fn non_finite(&self, value: f32, epoch: usize) -> TrainError {
        let checkpoint = match checkpoint::latest(self.run_dir) {
            Ok(Some(p)) => p.display().to_string(),
            Ok(None) => "none (no epoch completed)".into(),
            Err(e) => return e,
        };
        TrainError::NonFiniteLoss {
            value,
            epoch,
            step: self.progress.step,
            checkpoint,
        }
    }

    /// After an epoch: refit an epoch-level mixture, validate, step the plateau schedule,
    /// record the epoch, track the best score and write the checkpoint.
    fn end_epoch(
        &mut self,
        epoch: usize,
        train_loss: f64,
        metrics: &mut MetricsWriter,
    ) -> Result<()> {
        let cfg = self.cfg;
        if let (Some(labeler), LabelSource::Epoch) =
            (self.objective.labeler.as_mut(), cfg.mixture.source)
        {
            let emb = evaluate::embed_images(
                &crate::model::for_evaluation(&self.varmap, &self.model, &self.device)?,
                self.data,
                &self.split.train,
                cfg.train_loop.batch_size,
                &self.device,
            )?;
            labeler.refit_epoch(emb.view())?;
        }
        let (val_loss, val_auc) = self.validate(train_loss)?;
        if cfg.schedule.kind == ScheduleKind::Plateau {
            let lr = self.plateau.step(val_loss, self.opt.learning_rate());
            self.opt.set_learning_rate(lr);
        }
        let record = EpochRecord {
            epoch,
            step: self.progress.step,
            train_loss,
            val_loss,
            val_macro_auc: val_auc,
            lr: self.opt.learning_rate(),
        };
        metrics.epoch(&record)?;
        self.progress.epochs.push(record);

        // Best by validation mean AUC (or by validation loss when there is no AUC).
        let score = val_auc.unwrap_or(-val_loss);
        let improved = self.progress.best.is_none_or(|(b, _)| score > b);
        if improved {
            self.progress.best = Some((score, epoch));
            self.progress.epochs_without_improvement = 0;
        } else {
            self.progress.epochs_without_improvement += 1;
        }
        self.save_checkpoint(epoch, None, improved)?;
        if cfg.eval.figures {
            // Redrawn every epoch, so an interrupted or resumed run has its curves too.
            let title = format!("{} ({})", cfg.method.display_name(), cfg.run_name());
            crate::curves::redraw_run(self.run_dir, &title);
        }
        Ok(())
    }

    /// A checkpoint of where training stands: at the end of `epoch` (`mid_epoch: None`, made
    /// `best/` when `is_best`) or inside it.
    fn save_checkpoint(
        &self,
        epoch: usize,
        mid_epoch: Option<MidEpoch>,
        is_best: bool,
    ) -> Result<PathBuf> {
        let state = self.progress.checkpoint_state(
            epoch,
            mid_epoch,
            self.opt.learning_rate(),
            &self.plateau,
        );
        checkpoint::save(
            self.run_dir,
            &self.varmap,
            self.opt.as_ref(),
            self.objective.labeler.as_ref(),
            &state,
            is_best,
            self.cfg.train_loop.keep_last,
        )
    }

    /// Validation loss (for the plateau schedule) and zero-shot AUC (for model selection);
    /// without validation records, the training loss and no AUC.
    fn validate(&self, train_loss: f64) -> Result<(f64, Option<f64>)> {
        if self.split.val.is_empty() {
            return Ok((train_loss, None));
        }
        let loss = evaluate::validation_loss(
            self.cfg,
            self.data,
            &self.texts,
            &self.tokenizer,
            &self.eval_model()?,
            &self.split.val,
            &self.device,
        )?;
        Ok((loss, self.validator.auc(self)?))
    }

    /// The model for embeddings and validation: no autograd graph (see
    /// [`crate::model::for_evaluation`]).
    fn eval_model(&self) -> Result<ClipModel> {
        crate::model::for_evaluation(&self.varmap, &self.model, &self.device)
    }

    fn should_stop_early(&self, epoch: usize) -> bool {
        let Some(patience) = self.cfg.train_loop.early_stop_patience else {
            return false;
        };
        let stop = self.progress.epochs_without_improvement >= patience;
        if stop {
            tracing::info!(
                "early stop after epoch {epoch}: no validation improvement for {patience} epochs"
            );
        }
        stop
    }

    /// The test evaluation with the best weights, through the same path as `cargo xtask eval`
    /// (results, CSVs, embeddings and figures).
    fn finish(self) -> Result<TrainOutcome> {
        let p = self.progress;
        if p.epochs.is_empty() {
            return Err(TrainError::Dataset(format!(
                "no training step ran: {} training images for batch size {}",
                self.split.train.len(),
                self.cfg.train_loop.batch_size
            )));
        }
        let best_epoch = p.best.map(|b| b.1).unwrap_or(p.epochs.len() - 1);
        checkpoint::load_weights(&checkpoint::best_dir(self.run_dir), &self.varmap)?;
        let test = crate::run_eval::evaluate_loaded(
            self.run_dir,
            self.cfg,
            self.data,
            self.split,
            &self.model,
            "best",
            "test",
            self.cfg.eval.figures,
        )?
        .results;
        Ok(TrainOutcome {
            run_dir: self.run_dir.to_path_buf(),
            epochs: p.epochs,
            test,
            best_epoch,
            first_loss: p.first_loss,
            last_loss: p.last_loss,
            steps: p.step,
        })
    }
}

/// One optimisation step of an epoch: the batch's number in the epoch, the run's step count
/// and the records it trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StepJob<'o> {
    batch: usize,
    step: usize,
    records: &'o [usize],
}

/// The steps of an epoch whose batch order is `order`: from batch `done` on (after a
/// mid-epoch checkpoint), numbered from `first_step`, up to the run's `total_steps`. A last
/// batch of one record is left out (a contrastive batch needs at least one negative) and takes
/// no step number.
fn step_jobs(
    order: &[usize],
    batch_size: usize,
    done: usize,
    first_step: usize,
    total_steps: usize,
) -> Vec<StepJob<'_>> {
    order
        .chunks(batch_size)
        .enumerate()
        .skip(done)
        .filter(|(_, records)| records.len() >= 2)
        .zip(first_step..total_steps)
        .map(|((batch, records), step)| StepJob {
            batch,
            step,
            records,
        })
        .collect()
}

/// A batch that could not be built, named by its step, its place in the epoch and its first
/// image file.
fn batch_error(data: &Prepared, epoch: usize, job: &StepJob<'_>, source: TrainError) -> TrainError {
    let first = job
        .records
        .first()
        .map(|&i| data.root.join(&data.table.records[i].path));
    TrainError::Batch {
        step: job.step,
        epoch,
        batch: job.batch,
        images: job.records.len(),
        first,
        source: Box::new(source),
    }
}

/// The learning rate of `step`. Warm-up (`schedule.warmup_steps`) ramps linearly to the
/// current rate under every schedule: to `optim.lr` under `constant`, to the rate the
/// plateau schedule has set (`current`, changed between epochs) under `plateau`, and to the
/// cosine curve's start under `cosine`. Without warm-up, `constant` is `optim.lr` and
/// `plateau` is `current`.
fn scheduled_lr(cfg: &TrainConfig, step: usize, total: usize, current: f64) -> f64 {
    let s = &cfg.schedule;
    let base = cfg.optim.lr;
    let warmup = cxr_optim::LrSchedule::WarmupConstant {
        warmup_steps: s.warmup_steps,
    };
    match s.kind {
        ScheduleKind::Plateau => warmup.lr_at(current, step),
        ScheduleKind::Constant => warmup.lr_at(base, step),
        ScheduleKind::Cosine => cxr_optim::LrSchedule::CosineWithWarmup {
            warmup_steps: s.warmup_steps,
            total_steps: total,
            min_lr: s.min_lr,
        }
        .lr_at(base, step),
    }
}

/// The training records of a method: the split's, less (for the report-text baseline) the
/// images without a report, counted and logged; an error when none remains.
fn training_records(cfg: &TrainConfig, texts: &TextSource, split: &Split) -> Result<Vec<usize>> {
    let train = texts.trainable(&split.train);
    let skipped = split.train.len() - train.len();
    if skipped > 0 {
        tracing::info!(
            "{}: {skipped} of {} training images have no report and are left out of its batches",
            cfg.method.as_str(),
            split.train.len()
        );
    }
    if train.is_empty() && !split.train.is_empty() {
        return Err(TrainError::Dataset(format!(
            "the baseline trains on report text, but none of the {} training images has a report: set data.reports_root (--reports-root) to the MIMIC-CXR reports folder",
            split.train.len()
        )));
    }
    Ok(train)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(
        order: &[usize],
        batch: usize,
        done: usize,
        first: usize,
        total: usize,
    ) -> Vec<(usize, usize, Vec<usize>)> {
        step_jobs(order, batch, done, first, total)
            .into_iter()
            .map(|j| (j.batch, j.step, j.records.to_vec()))
            .collect()
    }

    /// Steps are numbered on from `first_step` over the batches from `done` on; a last batch of
    /// one record takes no step; the run's last step ends the plan.
    #[test]
    fn step_jobs_number_the_epochs_batches_as_the_loop_steps_them() {
        let order: Vec<usize> = (10..17).collect(); // 7 records: batches of 3, 3 and 1
        assert_eq!(
            plan(&order, 3, 0, 5, usize::MAX),
            vec![(0, 5, vec![10, 11, 12]), (1, 6, vec![13, 14, 15])]
        );
        assert_eq!(
            plan(&order, 3, 1, 5, usize::MAX),
            vec![(1, 5, vec![13, 14, 15])]
        );
        assert_eq!(plan(&order, 3, 0, 5, 6), vec![(0, 5, vec![10, 11, 12])]);
        assert!(plan(&order, 3, 0, 6, 6).is_empty());
        assert_eq!(
            plan(&order, 2, 2, 0, usize::MAX),
            vec![(2, 0, vec![14, 15])]
        );
    }
}
