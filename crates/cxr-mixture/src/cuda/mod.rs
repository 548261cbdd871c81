//! CUDA backend for the E-step's distance kernel (our own kernels in `kernels.cu`, compiled to
//! PTX by `build.rs`). The CUDA libraries are loaded at run time (cudarc's dynamic loading),
//! so building needs nvcc but no CUDA libraries. The M-step, log-sum-exp and factorisations
//! stay on the CPU: at K = 40, D = 512 the distances dominate.
//!
//! Not yet verified on hardware: the task that wrote it had no GPU. With the `cuda` feature,
//! `distances_cuda` in `src/estep.rs` (unit test) compares it with the plain reference kernel,
//! and the `*_cuda` variants of the golden tests in `tests/parity.rs` run whole fits on it.

// cudarc's kernel launch is `unsafe` (argument types are not checked against the PTX); each
// launch below says why its arguments match.
#![allow(unsafe_code)]

use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaContext, CudaFunction, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::Ptx;
use ndarray::{Array2, ArrayView2, Axis};

use crate::components::{Components, PrecChol};
use crate::error::{MixtureError, Result};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/mixture_kernels.ptx"));

struct Backend {
    stream: Arc<CudaStream>,
    diag: CudaFunction,
    full: CudaFunction,
}

fn cuda_err(e: impl std::fmt::Debug) -> MixtureError {
    MixtureError::Cuda(format!("{e:?}"))
}

/// Backends by device ordinal.
type BackendCache = Mutex<Vec<(usize, Arc<Backend>)>>;

/// One context, stream and module per device ordinal, created on first use.
fn backend(ordinal: usize) -> Result<Arc<Backend>> {
    static CACHE: OnceLock<BackendCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    let mut cache = cache
        .lock()
        .map_err(|_| MixtureError::Cuda("backend cache poisoned".into()))?;
    if let Some((_, b)) = cache.iter().find(|(o, _)| *o == ordinal) {
        return Ok(b.clone());
    }
    let ctx = CudaContext::new(ordinal).map_err(cuda_err)?;
    let module = ctx.load_module(Ptx::from_src(PTX)).map_err(cuda_err)?;
    let b = Arc::new(Backend {
        stream: ctx.default_stream(),
        diag: module.load_function("sq_maha_diag").map_err(cuda_err)?,
        full: module.load_function("sq_maha_full").map_err(cuda_err)?,
    });
    cache.push((ordinal, b.clone()));
    Ok(b)
}

/// Squared Mahalanobis distances `N x K` on GPU `ordinal`; same contract as the CPU kernel.
pub(crate) fn sq_mahalanobis(
    comps: &Components,
    x: ArrayView2<'_, f64>,
    ordinal: usize,
) -> Result<Array2<f64>> {
    let (n, d) = x.dim();
    let k = comps.n_components();
    let total = n
        .checked_mul(k)
        .filter(|&t| t <= u32::MAX as usize && n <= i32::MAX as usize && d <= i32::MAX as usize);
    let total = total
        .ok_or_else(|| MixtureError::Cuda(format!("{n} x {k} distances exceed one launch")))?;
    let b = backend(ordinal)?;
    let xs = x.as_slice().expect("standard layout");
    let dx = b.stream.clone_htod(xs).map_err(cuda_err)?;
    let mut out = b.stream.alloc_zeros::<f64>(total).map_err(cuda_err)?;
    let cfg = LaunchConfig::for_num_elems(total as u32);
    let (n_i, d_i, k_i) = (n as i32, d as i32, k as i32);
    match &comps.prec_chol {
        PrecChol::Diag(_) | PrecChol::Spherical(_) => {
            let prec: Vec<f64> = match &comps.prec_chol {
                PrecChol::Diag(p) => p.iter().map(|v| v * v).collect(),
                PrecChol::Spherical(p) => p
                    .iter()
                    .flat_map(|v| std::iter::repeat_n(v * v, d))
                    .collect(),
                PrecChol::Full(_) => unreachable!("matched above"),
            };
            let means = comps.means.as_standard_layout();
            let dm = b
                .stream
                .clone_htod(means.as_slice().expect("standard"))
                .map_err(cuda_err)?;
            let dp = b.stream.clone_htod(&prec).map_err(cuda_err)?;
            let mut lb = b.stream.launch_builder(&b.diag);
            lb.arg(&dx)
                .arg(&dm)
                .arg(&dp)
                .arg(&mut out)
                .arg(&n_i)
                .arg(&d_i)
                .arg(&k_i);
            // SAFETY: sq_maha_diag(const double*, const double*, const double*, double*, int,
            // int, int) reads n*d, k*d and k*d doubles and writes n*k: the sizes allocated here.
            unsafe { lb.launch(cfg) }.map_err(cuda_err)?;
        }
        PrecChol::Full(p) => {
            let mut mp = Array2::<f64>::zeros((k, d));
            for c in 0..k {
                mp.row_mut(c)
                    .assign(&comps.means.row(c).dot(&p.index_axis(Axis(0), c)));
            }
            let dmp = b
                .stream
                .clone_htod(mp.as_slice().expect("fresh"))
                .map_err(cuda_err)?;
            let p = p.as_standard_layout();
            let dp = b
                .stream
                .clone_htod(p.as_slice().expect("standard"))
                .map_err(cuda_err)?;
            let mut lb = b.stream.launch_builder(&b.full);
            lb.arg(&dx)
                .arg(&dmp)
                .arg(&dp)
                .arg(&mut out)
                .arg(&n_i)
                .arg(&d_i)
                .arg(&k_i);
            // SAFETY: sq_maha_full reads n*d, k*d and k*d*d doubles and writes n*k: the sizes
            // allocated here.
            unsafe { lb.launch(cfg) }.map_err(cuda_err)?;
        }
    }
    let host = b.stream.clone_dtoh(&out).map_err(cuda_err)?;
    Array2::from_shape_vec((n, k), host).map_err(cuda_err)
}
