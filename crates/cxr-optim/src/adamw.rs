//! Fused AdamW.

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::cpu::{AdamWOp, AdamWStep, HostBuf};
#[cfg(feature = "cuda")]
use crate::cuda::{CudaAdamWOp, DeviceBuf};
use crate::error::{OptimError, Result};
use crate::Optimizer;
use crate::{check_unique_names, state};

/// AdamW hyperparameters. `Default` is torch's: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
/// weight decay 1e-2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWConfig {
    /// Learning rate (>= 0).
    pub lr: f64,
    /// First-moment decay, in `[0, 1)`.
    pub beta1: f64,
    /// Second-moment decay, in `[0, 1)`.
    pub beta2: f64,
    /// Added to `sqrt(v_hat)`; > 0.
    pub eps: f64,
    /// Decoupled weight decay (>= 0), applied only where the decay filter says so.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

impl AdamWConfig {
    /// Checks every field; called by [`AdamW::new`].
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(OptimError::Config(m));
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return bad(format!("AdamW lr must be finite and >= 0, got {}", self.lr));
        }
        for (n, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return bad(format!("AdamW {n} must be in [0, 1), got {b}"));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad(format!(
                "AdamW eps must be finite and > 0, got {}",
                self.eps
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "AdamW weight_decay must be finite and >= 0, got {}",
                self.weight_decay
            ));
        }
        Ok(())
    }
}

/// Moments of one parameter: host buffers for the fused CPU kernel, device buffers for the
/// fused CUDA kernel (feature `cuda`), tensors otherwise (other devices such as Metal, or
/// dtypes without a fused kernel, use candle tensor ops).
enum Moments {
    Host {
        m: HostBuf,
        v: HostBuf,
    },
    #[cfg(feature = "cuda")]
    Cuda {
        m: DeviceBuf,
        v: DeviceBuf,
    },
    Tensors {
        m: Tensor,
        v: Tensor,
    },
}

impl Moments {
    /// Zero moments for `var`, on its device, for the fastest path that handles it.
    fn zeros(var: &Var) -> Result<Self> {
        let n = var.elem_count();
        match var.device() {
            Device::Cpu => {
                if let Some(m) = HostBuf::zeros(var.dtype(), n) {
                    return Ok(Self::Host { v: m.clone(), m });
                }
            }
            #[cfg(feature = "cuda")]
            Device::Cuda(dev) => {
                let (dtype, zeros) = (var.dtype(), DeviceBuf::zeros);
                if let (Some(m), Some(v)) = (zeros(dev, dtype, n)?, zeros(dev, dtype, n)?) {
                    return Ok(Self::Cuda { m, v });
                }
            }
            _ => {}
        }
        Ok(Self::Tensors {
            m: var.zeros_like()?,
            v: var.zeros_like()?,
        })
    }
}

struct Slot {
    name: String,
    var: Var,
    decay: bool,
    moments: Moments,
}

/// AdamW with decoupled, per-parameter weight decay, fused on CPU (and on CUDA with the `cuda`
/// feature).
///
/// Same update as `candle_nn::AdamW` (a single global step counter for the bias corrections)
/// and, up to float rounding, `torch.optim.AdamW`. With f32/f64 parameters the update of each
/// tensor is one pass: in parallel chunks on CPU (see `cpu.rs`), one kernel launch on CUDA
/// with the `cuda` feature (see `cuda.rs`). Other devices and dtypes fall back to tensor ops.
pub struct AdamW {
    cfg: AdamWConfig,
    slots: Vec<Slot>,
    step: usize,
    skipped: Vec<String>,
}

impl std::fmt::Debug for AdamW {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdamW")
            .field("cfg", &self.cfg)
            .field("params", &self.slots.len())
            .field("step", &self.step)
            .finish()
    }
}

impl AdamW {
    /// An optimiser over named variables; `decay(name)` says which get weight decay (see
    /// [`crate::default_decay_filter`]). Names must be unique (they key the checkpoint state).
    pub fn new(
        params: Vec<(String, Var)>,
        cfg: AdamWConfig,
        decay: impl Fn(&str) -> bool,
    ) -> Result<Self> {
        cfg.validate()?;
        check_unique_names(params.iter().map(|(n, _)| n.as_str()))?;
        let slots = params
            .into_iter()
            .map(|(name, var)| {
                let moments = Moments::zeros(&var)?;
                Ok(Slot {
                    decay: decay(&name),
                    name,
                    var,
                    moments,
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
    pub fn config(&self) -> &AdamWConfig {
        &self.cfg
    }

    /// Number of completed steps (drives the bias correction).
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// Names of the variables the last [`AdamW::step`] skipped for lack of a gradient.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Parameter names and whether each gets weight decay, in construction order.
    pub fn decay_plan(&self) -> Vec<(&str, bool)> {
        self.slots
            .iter()
            .map(|s| (s.name.as_str(), s.decay))
            .collect()
    }
}

impl Optimizer for AdamW {
    /// One update from `grads`. Variables without a gradient are skipped (their names are in
    /// [`AdamW::skipped`] and logged at `warn`); if *no* variable has one this is an error and
    /// nothing changes.
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
        let t = self.step as i32;
        let c = &self.cfg;
        let base = AdamWStep {
            beta1: c.beta1,
            beta2: c.beta2,
            scale_m: 1.0 / (1.0 - c.beta1.powi(t)),
            scale_v: 1.0 / (1.0 - c.beta2.powi(t)),
            decay: 1.0,
            lr: c.lr,
            eps: c.eps,
        };
        for (slot, g) in self.slots.iter_mut().zip(found) {
            let Some(g) = g else {
                self.skipped.push(slot.name.clone());
                continue;
            };
            let h = AdamWStep {
                decay: if slot.decay {
                    1.0 - c.lr * c.weight_decay
                } else {
                    1.0
                },
                ..base
            };
            match &mut slot.moments {
                Moments::Host { m, v } => {
                    let g = g.contiguous()?;
                    let op = AdamWOp {
                        h,
                        m: Mutex::new(m),
                        v: Mutex::new(v),
                    };
                    slot.var.as_tensor().inplace_op2(&g, &op)?;
                }
                #[cfg(feature = "cuda")]
                Moments::Cuda { m, v } => {
                    let g = g.contiguous()?;
                    let op = CudaAdamWOp {
                        h,
                        m: Mutex::new(m),
                        v: Mutex::new(v),
                    };
                    slot.var.as_tensor().inplace_op2(&g, &op)?;
                }
                Moments::Tensors { m, v } => {
                    let next_m = ((&*m * h.beta1)? + (&g * (1.0 - h.beta1))?)?;
                    let next_v = ((&*v * h.beta2)? + (g.sqr()? * (1.0 - h.beta2))?)?;
                    let theta = (slot.var.as_tensor() * h.decay)?;
                    let upd = ((&next_m * h.scale_m)? / ((&next_v * h.scale_v)?.sqrt()? + h.eps)?)?;
                    slot.var.set(&(theta - (upd * h.lr)?)?)?;
                    *m = next_m;
                    *v = next_v;
                }
            }
        }
        if !self.skipped.is_empty() {
            tracing::warn!(
                skipped = self.skipped.len(),
                first = %self.skipped[0],
                "AdamW: variables without gradient were not updated"
            );
        }
        Ok(())
    }

    /// The current learning rate.
    fn learning_rate(&self) -> f64 {
        self.cfg.lr
    }

    /// Sets the learning rate (schedulers call this between steps).
    fn set_learning_rate(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// The whole optimiser state for a checkpoint: `exp_avg/<name>`, `exp_avg_sq/<name>`
    /// (shaped like the parameter, on its device), `step` (i64 scalar) and `lr` (f64 scalar).
    fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = state::header(self.step, self.cfg.lr)?;
        for s in &self.slots {
            let (m, v) = match &s.moments {
                Moments::Host { m, v } => {
                    (m.to_tensor(s.var.shape())?, v.to_tensor(s.var.shape())?)
                }
                #[cfg(feature = "cuda")]
                Moments::Cuda { m, v } => {
                    (m.to_tensor(s.var.shape())?, v.to_tensor(s.var.shape())?)
                }
                Moments::Tensors { m, v } => (m.clone(), v.clone()),
            };
            out.insert(format!("exp_avg/{}", s.name), m);
            out.insert(format!("exp_avg_sq/{}", s.name), v);
        }
        Ok(out)
    }

    /// Restores what [`AdamW::state_tensors`] produced (possibly after a safetensors round trip:
    /// dtypes and devices are converted). Every parameter must have both moments with its
    /// shape; on error the optimiser is left unchanged.
    fn load_state_tensors(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let (step, lr) = state::read_header(state)?;
        let mut staged = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            let m = state::take(state, &format!("exp_avg/{}", s.name), &s.var)?;
            let v = state::take(state, &format!("exp_avg_sq/{}", s.name), &s.var)?;
            staged.push((m, v));
        }
        for (s, (m_new, v_new)) in self.slots.iter_mut().zip(staged) {
            match &mut s.moments {
                Moments::Host { m, v } => {
                    m.load(&m_new)?;
                    v.load(&v_new)?;
                }
                #[cfg(feature = "cuda")]
                Moments::Cuda { m, v } => {
                    m.load(&m_new)?;
                    v.load(&v_new)?;
                }
                Moments::Tensors { m, v } => {
                    *m = m_new.to_dtype(s.var.dtype())?.to_device(s.var.device())?;
                    *v = v_new.to_dtype(s.var.dtype())?.to_device(s.var.device())?;
                }
            }
        }
        self.step = step;
        if let Some(lr) = lr {
            self.cfg.lr = lr;
        }
        Ok(())
    }
}
