//! SGD with momentum, as `torch.optim.SGD` (dampening 0).

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::cpu::{HostBuf, SgdOp, SgdStep};
use crate::error::{OptimError, Result};
use crate::Optimizer;
use crate::{check_unique_names, state};

/// SGD hyperparameters. `Default` is CheXzero's: lr 1e-4, momentum 0.9, no Nesterov, no
/// weight decay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    /// Learning rate (>= 0).
    pub lr: f64,
    /// Momentum factor in `[0, 1)`; 0 disables the buffer.
    pub momentum: f64,
    /// Nesterov momentum (needs momentum > 0).
    pub nesterov: bool,
    /// L2 penalty added to the gradient (torch's coupled `weight_decay`), >= 0.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 1e-4,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl SgdConfig {
    /// Checks every field; called by [`Sgd::new`].
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(OptimError::Config(m));
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return bad(format!("SGD lr must be finite and >= 0, got {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!(
                "SGD momentum must be in [0, 1), got {}",
                self.momentum
            ));
        }
        if self.nesterov && self.momentum == 0.0 {
            return bad("SGD nesterov needs momentum > 0".into());
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "SGD weight_decay must be finite and >= 0, got {}",
                self.weight_decay
            ));
        }
        Ok(())
    }
}

enum Buffer {
    Host(HostBuf),
    Tensor(Tensor),
}

struct Slot {
    name: String,
    var: Var,
    decay: bool,
    buf: Buffer,
}

/// SGD with momentum and per-parameter weight decay, fused on CPU like [`crate::AdamW`].
pub struct Sgd {
    cfg: SgdConfig,
    slots: Vec<Slot>,
    step: usize,
    skipped: Vec<String>,
}

impl std::fmt::Debug for Sgd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sgd")
            .field("cfg", &self.cfg)
            .field("params", &self.slots.len())
            .field("step", &self.step)
            .finish()
    }
}

impl Sgd {
    /// An optimiser over named variables; `decay(name)` says which get weight decay.
    pub fn new(
        params: Vec<(String, Var)>,
        cfg: SgdConfig,
        decay: impl Fn(&str) -> bool,
    ) -> Result<Self> {
        cfg.validate()?;
        check_unique_names(params.iter().map(|(n, _)| n.as_str()))?;
        let slots = params
            .into_iter()
            .map(|(name, var)| {
                let buf = match (var.device(), HostBuf::zeros(var.dtype(), var.elem_count())) {
                    (Device::Cpu, Some(b)) => Buffer::Host(b),
                    _ => Buffer::Tensor(var.zeros_like()?),
                };
                Ok(Slot {
                    decay: decay(&name),
                    name,
                    var,
                    buf,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            cfg,
            slots,
            step: 0,
            skipped: Vec::new(),
        })
    }

    /// The hyperparameters in use.
    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }

    /// Number of completed steps.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// Names of the variables the last step skipped for lack of a gradient.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}

impl Optimizer for Sgd {
    /// One update; missing gradients are handled as in [`crate::AdamW::step`].
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let found: Vec<Option<Tensor>> = self
            .slots
            .iter()
            .map(|s| grads.get(s.var.as_tensor()).cloned())
            .collect();
        if !self.slots.is_empty() && found.iter().all(Option::is_none) {
            return Err(OptimError::NoGradients(self.slots.len()));
        }
        for (s, g) in self.slots.iter().zip(&found) {
            if let Some(g) = g {
                state::check_grad(&s.name, &s.var, g)?;
            }
        }
        self.step += 1;
        self.skipped.clear();
        let c = &self.cfg;
        for (slot, g) in self.slots.iter_mut().zip(found) {
            let Some(g) = g else {
                self.skipped.push(slot.name.clone());
                continue;
            };
            let h = SgdStep {
                lr: c.lr,
                momentum: c.momentum,
                weight_decay: if slot.decay { c.weight_decay } else { 0.0 },
                nesterov: c.nesterov,
            };
            match &mut slot.buf {
                Buffer::Host(b) => {
                    let g = g.contiguous()?;
                    let op = SgdOp {
                        h,
                        buf: Mutex::new(b),
                    };
                    slot.var.as_tensor().inplace_op2(&g, &op)?;
                }
                Buffer::Tensor(b) => {
                    let p = slot.var.as_tensor();
                    let d = if h.weight_decay != 0.0 {
                        (&g + (p * h.weight_decay)?)?
                    } else {
                        g
                    };
                    let d = if h.momentum != 0.0 {
                        let nb = ((&*b * h.momentum)? + &d)?;
                        let d = if h.nesterov {
                            (d + (&nb * h.momentum)?)?
                        } else {
                            nb.clone()
                        };
                        *b = nb;
                        d
                    } else {
                        d
                    };
                    slot.var.set(&(p - (d * h.lr)?)?)?;
                }
            }
        }
        if !self.skipped.is_empty() {
            tracing::warn!(
                skipped = self.skipped.len(),
                first = %self.skipped[0],
                "SGD: variables without gradient were not updated"
            );
        }
        Ok(())
    }

    /// The current learning rate.
    fn learning_rate(&self) -> f64 {
        self.cfg.lr
    }

    /// Sets the learning rate.
    fn set_learning_rate(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// State for a checkpoint: `momentum_buffer/<name>`, `step`, `lr`.
    fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = state::header(self.step, self.cfg.lr)?;
        for s in &self.slots {
            let b = match &s.buf {
                Buffer::Host(b) => b.to_tensor(s.var.shape())?,
                Buffer::Tensor(t) => t.clone(),
            };
            out.insert(format!("momentum_buffer/{}", s.name), b);
        }
        Ok(out)
    }

    /// Restores what [`Sgd::state_tensors`] produced; unchanged on error.
    fn load_state_tensors(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let (step, lr) = state::read_header(state)?;
        let staged = self
            .slots
            .iter()
            .map(|s| state::take(state, &format!("momentum_buffer/{}", s.name), &s.var))
            .collect::<Result<Vec<_>>>()?;
        for (s, t) in self.slots.iter_mut().zip(staged) {
            match &mut s.buf {
                Buffer::Host(b) => b.load(&t)?,
                Buffer::Tensor(b) => *b = t.to_dtype(s.var.dtype())?.to_device(s.var.device())?,
            }
        }
        self.step = step;
        if let Some(lr) = lr {
            self.cfg.lr = lr;
        }
        Ok(())
    }
}
