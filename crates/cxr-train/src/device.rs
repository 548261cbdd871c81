//! The compute device a run trains and evaluates on (`loop.device`).

use candle_core::Device;
use cxr_clip::ClipModel;

use crate::{Result, TrainError};

/// The parsed form of `loop.device`: `None` for the CPU, `Some(ordinal)` for a CUDA GPU.
pub fn parse(spec: &str) -> Result<Option<usize>> {
    match spec.trim() {
        "cpu" => Ok(None),
        "cuda" => Ok(Some(0)),
        s => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Some)
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "loop.device = `{spec}`: expected `cpu`, `cuda` or `cuda:N`"
                ))
            }),
    }
}

/// Open the device `spec` names. A CUDA device needs a build with the `cuda` feature
/// (`cargo run --release -p xtask --features cuda -- ...`); without it the error says so.
pub fn open(spec: &str) -> Result<Device> {
    match parse(spec)? {
        None => Ok(Device::Cpu),
        Some(ordinal) => {
            if !cfg!(feature = "cuda") {
                return Err(TrainError::Config(format!(
                    "loop.device = `{spec}`, but this build has no CUDA support: rebuild with \
                     `--features cuda` (e.g. `cargo run --release -p xtask --features cuda -- \
                     train --device {spec} ...`)"
                )));
            }
            Device::new_cuda(ordinal)
                .map_err(|e| TrainError::Config(format!("cannot open CUDA device {ordinal}: {e}")))
        }
    }
}

/// The mixture E-step's device for `mixture.device` (CUDA needs the `cuda` feature, which
/// turns on cxr-mixture's own kernels).
pub fn mixture(spec: &str) -> Result<cxr_mixture::Device> {
    match parse(spec)? {
        None => Ok(cxr_mixture::Device::Cpu),
        #[cfg(feature = "cuda")]
        Some(ordinal) => Ok(cxr_mixture::Device::Cuda(ordinal)),
        #[cfg(not(feature = "cuda"))]
        Some(_) => Err(TrainError::Config(format!(
            "mixture.device = `{spec}`, but this build has no CUDA support: rebuild with \
             `--features cuda`"
        ))),
    }
}

/// The device a model's weights live on (inputs must be created there).
pub fn of_model(model: &ClipModel) -> Device {
    model.logit_scale().device().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_specs_parse_and_cuda_without_the_feature_is_a_clear_error() {
        assert_eq!(parse("cpu").unwrap(), None);
        assert_eq!(parse("cuda").unwrap(), Some(0));
        assert_eq!(parse("cuda:3").unwrap(), Some(3));
        for bad in ["gpu", "cuda:", "cuda:x", ""] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("cpu`, `cuda` or `cuda:N"), "{bad}: {e}");
        }
        assert!(matches!(open("cpu"), Ok(Device::Cpu)));
        assert_eq!(mixture("cpu").unwrap(), cxr_mixture::Device::Cpu);
        if !cfg!(feature = "cuda") {
            let e = open("cuda:1").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
            assert!(mixture("cuda").is_err());
        }
    }
}
