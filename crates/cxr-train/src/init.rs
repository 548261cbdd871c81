//! Reproducible random initialisation.
//!
//! candle's CPU random tensors come from an unseedable thread RNG, so two runs with the same
//! seed would start from different weights. [`SeededVarMap`] is a `VarBuilder` backend that
//! registers every variable in a [`VarMap`] (so it trains as usual) but draws its initial
//! values from a ChaCha RNG seeded by `(seed, variable name)`: the same seed gives the same
//! weights, independent of the order in which the model creates its variables.

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::NormalOrUniform;
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

// FNV-1a: seeds stable across Rust releases (std's hasher is not).
use cxr_data::stable_hash;

/// A `VarMap` whose new variables are initialised from a seeded RNG.
pub struct SeededVarMap {
    varmap: VarMap,
    seed: u64,
}

impl SeededVarMap {
    /// A `VarBuilder` over `varmap` drawing initial values from `seed`.
    pub fn builder(
        varmap: &VarMap,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> VarBuilder<'static> {
        VarBuilder::from_backend(
            Box::new(SeededVarMap {
                varmap: varmap.clone(),
                seed,
            }),
            dtype,
            device.clone(),
        )
    }
}

/// The initial values `init` asks for, drawn from `rng`.
fn sample(shape: &Shape, init: Init, rng: &mut ChaCha8Rng) -> candle_core::Result<Vec<f64>> {
    let n = shape.elem_count();
    let normal = |std: f64, mean: f64, rng: &mut ChaCha8Rng| -> candle_core::Result<Vec<f64>> {
        let dist =
            Normal::new(mean, std).map_err(|e| candle_core::Error::Msg(format!("init: {e}")))?;
        Ok((0..n).map(|_| dist.sample(rng)).collect())
    };
    let uniform = |lo: f64, up: f64, rng: &mut ChaCha8Rng| {
        (0..n).map(|_| rng.gen_range(lo..up)).collect::<Vec<f64>>()
    };
    Ok(match init {
        Init::Const(v) => vec![v; n],
        Init::Randn { mean, stdev } => normal(stdev, mean, rng)?,
        Init::Uniform { lo, up } => uniform(lo, up, rng),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Normal => normal(std, 0.0, rng)?,
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    uniform(-bound, bound, rng)
                }
            }
        }
    })
}

impl SimpleBackend for SeededVarMap {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut data = self.varmap.data().lock().expect("varmap lock");
        if let Some(var) = data.get(name) {
            let t = var.as_tensor();
            if t.shape() != &s {
                return Err(candle_core::Error::UnexpectedShape {
                    msg: format!("shape mismatch for {name}"),
                    expected: s,
                    got: t.shape().clone(),
                }
                .bt());
            }
            return Ok(t.clone());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ stable_hash(name));
        let values = sample(&s, h, &mut rng)?;
        let t = Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&t)?;
        data.insert(name.to_string(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let data = self.varmap.data().lock().expect("varmap lock");
        data.get(name)
            .map(|v| v.as_tensor().clone())
            .ok_or_else(|| {
                candle_core::Error::CannotFindTensor {
                    path: name.to_string(),
                }
                .bt()
            })
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .expect("varmap lock")
            .contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(seed: u64) -> Vec<(String, Vec<f32>)> {
        let varmap = VarMap::new();
        let vb = SeededVarMap::builder(&varmap, seed, DType::F32, &Device::Cpu);
        let _ = vb
            .get_with_hints((3, 4), "w", candle_nn::init::DEFAULT_KAIMING_NORMAL)
            .unwrap();
        let _ = vb
            .get_with_hints(
                5,
                "b",
                Init::Randn {
                    mean: 1.0,
                    stdev: 0.5,
                },
            )
            .unwrap();
        let _ = vb.get_with_hints(2, "c", Init::Const(0.25)).unwrap();
        let data = varmap.data().lock().unwrap();
        let mut out: Vec<(String, Vec<f32>)> = data
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_tensor()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn same_seed_same_weights_other_seed_other_weights() {
        let a = build(7);
        assert_eq!(a, build(7));
        assert_ne!(a, build(8));
        assert_eq!(a.len(), 3);
        assert_eq!(a[1].1, vec![0.25, 0.25], "constants stay constants");
        let b = &a[0].1;
        let mean = b.iter().sum::<f32>() / b.len() as f32;
        assert!((mean - 1.0).abs() < 0.5, "Randn mean 1: {mean}");
    }
}
