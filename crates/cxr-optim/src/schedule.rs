//! Step-wise learning-rate schedules.

use serde::{Deserialize, Serialize};

use crate::error::{OptimError, Result};

/// A learning rate as a function of the optimiser step (0-based), relative to a base rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LrSchedule {
    /// Always the base rate (use with [`crate::ReduceLrOnPlateau`], which changes the base).
    #[default]
    Constant,
    /// Linear warmup `base * (step + 1) / warmup_steps`, then constant.
    WarmupConstant {
        /// Steps of linear warmup.
        warmup_steps: usize,
    },
    /// open_clip's `cosine_lr`: linear warmup as above, then half a cosine from `base` down to
    /// `min_lr` at `total_steps` (and `min_lr` after).
    CosineWithWarmup {
        /// Steps of linear warmup.
        warmup_steps: usize,
        /// Total steps, warmup included; > `warmup_steps`.
        total_steps: usize,
        /// Final learning rate (0 in open_clip).
        min_lr: f64,
    },
}

impl LrSchedule {
    /// Checks the step counts and `min_lr`.
    pub fn validate(&self) -> Result<()> {
        if let Self::CosineWithWarmup {
            warmup_steps,
            total_steps,
            min_lr,
        } = self
        {
            if total_steps <= warmup_steps {
                return Err(OptimError::Config(format!(
                    "cosine schedule needs total_steps ({total_steps}) > warmup_steps ({warmup_steps})"
                )));
            }
            if !(min_lr.is_finite() && *min_lr >= 0.0) {
                return Err(OptimError::Config(format!(
                    "cosine schedule min_lr must be >= 0, got {min_lr}"
                )));
            }
        }
        Ok(())
    }

    /// The learning rate for `step` (0-based) given the base rate.
    pub fn lr_at(&self, base_lr: f64, step: usize) -> f64 {
        let warm = |w: usize| base_lr * (step + 1) as f64 / w as f64;
        match *self {
            Self::Constant => base_lr,
            Self::WarmupConstant { warmup_steps } => {
                if step < warmup_steps {
                    warm(warmup_steps)
                } else {
                    base_lr
                }
            }
            Self::CosineWithWarmup {
                warmup_steps,
                total_steps,
                min_lr,
            } => {
                if step < warmup_steps {
                    warm(warmup_steps)
                } else if step >= total_steps {
                    min_lr
                } else {
                    let e = (step - warmup_steps) as f64;
                    let es = (total_steps - warmup_steps) as f64;
                    min_lr
                        + 0.5 * (1.0 + (std::f64::consts::PI * e / es).cos()) * (base_lr - min_lr)
                }
            }
        }
    }
}
