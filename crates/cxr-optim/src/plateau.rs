//! `ReduceLROnPlateau`, following torch's semantics step by step.

use serde::{Deserialize, Serialize};

use crate::error::{OptimError, Result};

/// Whether lower (`Min`, a loss) or higher (`Max`, an AUC) metrics are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlateauMode {
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

/// How `threshold` defines a significant improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdMode {
    /// `best * (1 -/+ threshold)`.
    Rel,
    /// `best -/+ threshold`.
    Abs,
}

/// Hyperparameters of [`ReduceLrOnPlateau`]. `Default` is the paper's setting (factor 0.1,
/// patience 2) with torch's other defaults; the released code used patience 3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlateauConfig {
    /// Min for a loss, max for an AUC.
    pub mode: PlateauMode,
    /// Multiplier applied on a plateau, in `(0, 1)`.
    pub factor: f64,
    /// Number of non-improving epochs tolerated before reducing.
    pub patience: usize,
    /// Size of a significant improvement (>= 0).
    pub threshold: f64,
    /// Relative or absolute threshold.
    pub threshold_mode: ThresholdMode,
    /// Epochs to wait after a reduction before counting bad epochs again.
    pub cooldown: usize,
    /// Lower bound of the learning rate (>= 0).
    pub min_lr: f64,
    /// Reductions smaller than this are ignored (torch's `eps`).
    pub eps: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        Self {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 2,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// Reduces the learning rate when a metric stops improving (torch's `ReduceLROnPlateau` with a
/// single parameter group). The whole struct is the checkpoint state (serde).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReduceLrOnPlateau {
    cfg: PlateauConfig,
    /// Best metric so far; `None` before the first finite comparison (torch's +-inf).
    best: Option<f64>,
    num_bad_epochs: usize,
    cooldown_counter: usize,
    last_epoch: usize,
    reductions: usize,
}

impl ReduceLrOnPlateau {
    /// A scheduler with validated hyperparameters.
    pub fn new(cfg: PlateauConfig) -> Result<Self> {
        let bad = |m: String| Err(OptimError::Config(m));
        if !(cfg.factor > 0.0 && cfg.factor < 1.0) {
            return bad(format!(
                "plateau factor must be in (0, 1), got {}",
                cfg.factor
            ));
        }
        if !(cfg.threshold.is_finite() && cfg.threshold >= 0.0) {
            return bad(format!(
                "plateau threshold must be >= 0, got {}",
                cfg.threshold
            ));
        }
        if !(cfg.min_lr.is_finite() && cfg.min_lr >= 0.0) {
            return bad(format!("plateau min_lr must be >= 0, got {}", cfg.min_lr));
        }
        if !(cfg.eps.is_finite() && cfg.eps >= 0.0) {
            return bad(format!("plateau eps must be >= 0, got {}", cfg.eps));
        }
        Ok(Self {
            cfg,
            best: None,
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_epoch: 0,
            reductions: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PlateauConfig {
        &self.cfg
    }

    /// Best metric seen so far.
    pub fn best(&self) -> Option<f64> {
        self.best
    }

    /// Consecutive epochs without significant improvement.
    pub fn num_bad_epochs(&self) -> usize {
        self.num_bad_epochs
    }

    /// How many times the learning rate was reduced.
    pub fn reductions(&self) -> usize {
        self.reductions
    }

    /// Number of `step` calls so far.
    pub fn epochs_seen(&self) -> usize {
        self.last_epoch
    }

    fn is_better(&self, a: f64) -> bool {
        let Some(best) = self.best else {
            // torch compares with +inf (min) / -inf (max): anything but NaN and the same
            // infinity is better.
            return match self.cfg.mode {
                PlateauMode::Min => a < f64::INFINITY,
                PlateauMode::Max => a > f64::NEG_INFINITY,
            };
        };
        let t = self.cfg.threshold;
        match (self.cfg.mode, self.cfg.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - t),
            (PlateauMode::Min, ThresholdMode::Abs) => a < best - t,
            (PlateauMode::Max, ThresholdMode::Rel) => a > best * (t + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => a > best + t,
        }
    }

    /// Feeds one epoch's metric; returns the learning rate to use next (`current_lr`, or
    /// `max(current_lr * factor, min_lr)` on a plateau). A NaN metric counts as not improving,
    /// as in torch.
    pub fn step(&mut self, metric: f64, current_lr: f64) -> f64 {
        self.last_epoch += 1;
        if self.is_better(metric) {
            self.best = Some(metric);
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > self.cfg.patience {
            self.cooldown_counter = self.cfg.cooldown;
            self.num_bad_epochs = 0;
            let new_lr = (current_lr * self.cfg.factor).max(self.cfg.min_lr);
            if current_lr - new_lr > self.cfg.eps {
                self.reductions += 1;
                tracing::info!(
                    from = current_lr,
                    to = new_lr,
                    "ReduceLrOnPlateau: reducing learning rate"
                );
                return new_lr;
            }
        }
        current_lr
    }
}
