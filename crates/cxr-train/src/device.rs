//! The compute device a run trains and evaluates on (`loop.device`).

use candle_core::Device;
use cxr_clip::ClipModel;

use crate::{Result, TrainError};

/// The parsed form of a device key (`key`: its name in errors): `None` for the CPU,
/// `Some(ordinal)` for a CUDA GPU.
pub fn parse(key: &str, spec: &str) -> Result<Option<usize>> {
    match spec.trim() {
        "cpu" => Ok(None),
        "cuda" => Ok(Some(0)),
        s => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Some)
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "{key} = `{spec}`: expected `cpu`, `cuda` or `cuda:N`"
                ))
            }),
    }
}

/// The error for a CUDA device in a build without the `cuda` feature.
#[cfg_attr(feature = "cuda", allow(dead_code))]
fn no_cuda(key: &str, spec: &str) -> TrainError {
    TrainError::Config(format!(
        "{key} = `{spec}`, but this build has no CUDA support: rebuild with `--features cuda` \
         (e.g. `cargo run --release -p xtask --features cuda -- train --device {spec} ...`)"
    ))
}

/// Open the device `loop.device` names. A CUDA device needs a build with the `cuda` feature;
/// without it the error says so.
pub fn open(spec: &str) -> Result<Device> {
    const KEY: &str = "loop.device";
    match parse(KEY, spec)? {
        None => Ok(Device::Cpu),
        #[cfg(feature = "cuda")]
        Some(ordinal) => Device::new_cuda(ordinal)
            .map_err(|e| TrainError::Config(format!("cannot open CUDA device {ordinal}: {e}"))),
        #[cfg(not(feature = "cuda"))]
        Some(_) => Err(no_cuda(KEY, spec)),
    }
}

/// The mixture E-step's device for `mixture.device` (CUDA needs the `cuda` feature, which
/// turns on cxr-mixture's own kernels).
pub fn mixture(spec: &str) -> Result<cxr_mixture::Device> {
    const KEY: &str = "mixture.device";
    match parse(KEY, spec)? {
        None => Ok(cxr_mixture::Device::Cpu),
        #[cfg(feature = "cuda")]
        Some(ordinal) => Ok(cxr_mixture::Device::Cuda(ordinal)),
        #[cfg(not(feature = "cuda"))]
        Some(_) => Err(no_cuda(KEY, spec)),
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
        assert_eq!(parse("loop.device", "cpu").unwrap(), None);
        assert_eq!(parse("loop.device", "cuda").unwrap(), Some(0));
        assert_eq!(parse("loop.device", "cuda:3").unwrap(), Some(3));
        for bad in ["gpu", "cuda:", "cuda:x", ""] {
            let e = parse("mixture.device", bad).unwrap_err().to_string();
            assert!(e.contains("cpu`, `cuda` or `cuda:N"), "{bad}: {e}");
            assert!(e.contains("mixture.device = "), "{bad}: {e}");
        }
        assert!(matches!(open("cpu"), Ok(Device::Cpu)));
        assert_eq!(mixture("cpu").unwrap(), cxr_mixture::Device::Cpu);
        if !cfg!(feature = "cuda") {
            let e = open("cuda:1").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
            let e = mixture("cuda").unwrap_err().to_string();
            assert!(
                e.contains("mixture.device") && e.contains("--features cuda"),
                "{e}"
            );
        }
    }
}
