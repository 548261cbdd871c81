//! CUDA path (feature `cuda`): the f32 kernels of `src/kernels/ops.cu`, compiled to PTX by
//! `build.rs`, loaded once per device into candle's own CUDA context (its cache of custom
//! modules) and launched on candle's stream, as `cxr-optim`'s fused AdamW is. Inputs are
//! contiguous (`lib.rs` makes them so); outputs are fresh `CudaSlice`s.
//!
//! Not yet run on a GPU: the session that wrote it had none. `tests/cuda.rs` compares every
//! kernel with the CPU one wherever a CUDA device is present.

// cudarc's kernel launch is `unsafe` (argument types are not checked against the PTX); each
// launch below says why its arguments match.
#![allow(unsafe_code)]

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, CudaStorage, WrapErr};
use candle_core::{bail, DType, Layout, Result, Shape};

use crate::kind::{last_dim, Kind};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/ops.ptx"));
/// Key of our module in candle's per-device cache of custom modules.
const MODULE: &str = "cxr_ops";
/// Threads per block of the element-wise kernels.
const BLOCK: u32 = 256;
/// Cap on the element-wise grid (the kernels loop with a grid stride).
const MAX_BLOCKS: usize = 4096;

/// The f32 elements of `s` under the contiguous layout `l`.
fn view<'a>(s: &'a CudaStorage, l: &Layout, op: &str) -> Result<CudaView<'a, f32>> {
    if s.dtype() != DType::F32 {
        bail!("{op}: the CUDA kernels take f32, not {:?} (cxr-ops falls back for other dtypes; this is a bug)", s.dtype());
    }
    let Some((a, b)) = l.contiguous_offsets() else {
        bail!(
            "{op}: the input is not contiguous (cxr-ops makes it so before the op; this is a bug)"
        )
    };
    Ok(s.as_cuda_slice::<f32>()?.slice(a..b))
}

/// One block per row: threads a multiple of the warp size, up to 256, no more than the row
/// needs.
fn row_config(rows: usize, dim: usize) -> Result<LaunchConfig> {
    let threads = dim.div_ceil(32).clamp(1, 8) * 32;
    let Ok(rows) = u32::try_from(rows) else {
        bail!("cxr-ops CUDA: {rows} rows exceed the grid's 2^32 - 1 blocks");
    };
    Ok(LaunchConfig {
        grid_dim: (rows.max(1), 1, 1),
        // Lossless: threads <= 256.
        block_dim: (threads as u32, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// Grid-stride launch over `n > 0` elements.
fn elem_config(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS);
    LaunchConfig {
        // Lossless: blocks <= MAX_BLOCKS.
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn wrap(
    out: candle_core::cuda_backend::cudarc::driver::CudaSlice<f32>,
    dev: &CudaDevice,
    shape: Shape,
) -> (CudaStorage, Shape) {
    (CudaStorage::wrap_cuda_slice(out, dev.clone()), shape)
}

/// The kernel of a [`Kind`]'s forward or backward over `n` elements in rows of `dim`, its
/// launch and its `len` argument: row kernels (softmax, log-softmax) run one block per row
/// with `len = dim`, element-wise ones a grid-stride loop with `len = n`.
fn unary_launch(
    kind: Kind,
    backward: bool,
    n: usize,
    dim: usize,
) -> Result<(&'static str, LaunchConfig, usize)> {
    let (forward_name, backward_name) = match kind {
        Kind::Softmax => ("cxr_softmax_f32", "cxr_softmax_bwd_f32"),
        Kind::LogSoftmax => ("cxr_log_softmax_f32", "cxr_log_softmax_bwd_f32"),
        Kind::QuickGelu => ("cxr_quick_gelu_f32", "cxr_quick_gelu_bwd_f32"),
        Kind::GeluErf => ("cxr_gelu_erf_f32", "cxr_gelu_erf_bwd_f32"),
    };
    let name = if backward {
        backward_name
    } else {
        forward_name
    };
    Ok(match kind {
        Kind::Softmax | Kind::LogSoftmax => (name, row_config(n / dim, dim)?, dim),
        Kind::QuickGelu | Kind::GeluErf => (name, elem_config(n), n),
    })
}

/// Forward of a [`Kind`].
pub(crate) fn unary(kind: Kind, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
    let dev = &s.device;
    let x = view(s, l, "cxr-ops")?;
    let n = x.len();
    let dim = last_dim(l);
    let mut y = dev.alloc_zeros::<f32>(n)?;
    let (name, cfg, len) = unary_launch(kind, false, n, dim)?;
    let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
    let mut b = func.builder();
    b.arg(&x).arg(&mut y).arg(&len);
    // SAFETY: every forward kernel is `(const float* x, float* y, size_t len)`; x and y hold n
    // f32 elements. Row kernels: len = dim, one block per row, rows * dim = n. Element-wise:
    // len = n. No kernel touches an index at or past n.
    unsafe { b.launch(cfg) }.w()?;
    Ok(wrap(y, dev, l.shape().clone()))
}

/// Backward of a [`Kind`]: `(x or y, g) -> dx`.
pub(crate) fn unary_bwd(
    kind: Kind,
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
) -> Result<(CudaStorage, Shape)> {
    if l1.dims() != l2.dims() {
        bail!(
            "cxr-ops backward: shapes {:?} and {:?} differ",
            l1.dims(),
            l2.dims()
        );
    }
    let dev = &s1.device;
    let a = view(s1, l1, "cxr-ops backward")?;
    let g = view(s2, l2, "cxr-ops backward")?;
    let n = a.len();
    let dim = last_dim(l1);
    let mut dx = dev.alloc_zeros::<f32>(n)?;
    let (name, cfg, len) = unary_launch(kind, true, n, dim)?;
    let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
    let mut b = func.builder();
    b.arg(&a).arg(&g).arg(&mut dx).arg(&len);
    // SAFETY: every backward kernel is `(const float* a, const float* g, float* dx, size_t len)`;
    // a, g and dx hold n f32 elements (shapes checked above), len as in `unary`.
    unsafe { b.launch(cfg) }.w()?;
    Ok(wrap(dx, dev, l1.shape().clone()))
}

/// LayerNorm forward; `w` and `b` were checked to be `[dim]`.
pub(crate) fn layer_norm(
    eps: f64,
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
    s3: &CudaStorage,
    l3: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let dev = &s1.device;
    let op = "cxr-layer-norm";
    let (x, w, bias) = (view(s1, l1, op)?, view(s2, l2, op)?, view(s3, l3, op)?);
    let n = x.len();
    let dim = last_dim(l1);
    let eps = eps as f32;
    let mut y = dev.alloc_zeros::<f32>(n)?;
    let func = dev.get_or_load_custom_func("cxr_layer_norm_f32", MODULE, PTX)?;
    let mut b = func.builder();
    b.arg(&x).arg(&w).arg(&bias).arg(&mut y).arg(&dim).arg(&eps);
    // SAFETY: `cxr_layer_norm_f32(const float* x, const float* w, const float* b, float* y,
    // size_t dim, float eps)`; x and y hold rows * dim f32, w and b dim; one block per row.
    unsafe { b.launch(row_config(n / dim, dim)?) }.w()?;
    Ok(wrap(y, dev, l1.shape().clone()))
}

/// LayerNorm backward, packed `[rows + 2, dim]` as on the CPU: dx, then dweight, then dbias.
pub(crate) fn layer_norm_bwd(
    eps: f64,
    dim: usize,
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
    s3: &CudaStorage,
    l3: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let dev = &s1.device;
    let op = "cxr-layer-norm-bwd";
    let (x, w, g) = (view(s1, l1, op)?, view(s2, l2, op)?, view(s3, l3, op)?);
    let n = x.len();
    let rows = n / dim;
    let eps = eps as f32;
    let mut out = dev.alloc_zeros::<f32>(n + 2 * dim)?;
    let mut stats = dev.alloc_zeros::<f32>(2 * rows)?;
    {
        let mut dx = out.slice_mut(0..n);
        let func = dev.get_or_load_custom_func("cxr_layer_norm_bwd_dx_f32", MODULE, PTX)?;
        let mut b = func.builder();
        b.arg(&x)
            .arg(&w)
            .arg(&g)
            .arg(&mut dx)
            .arg(&mut stats)
            .arg(&dim)
            .arg(&eps);
        // SAFETY: `cxr_layer_norm_bwd_dx_f32(const float* x, const float* w, const float* g,
        // float* dx, float* stats, size_t dim, float eps)`; x, g, dx hold rows * dim f32, w dim,
        // stats 2 * rows; one block per row.
        unsafe { b.launch(row_config(rows, dim)?) }.w()?;
    }
    {
        let mut params = out.slice_mut(n..);
        let (mut dw, mut db) = params.split_at_mut(dim);
        let func = dev.get_or_load_custom_func("cxr_layer_norm_bwd_params_f32", MODULE, PTX)?;
        let mut b = func.builder();
        b.arg(&x)
            .arg(&g)
            .arg(&stats)
            .arg(&mut dw)
            .arg(&mut db)
            .arg(&rows)
            .arg(&dim);
        // SAFETY: `cxr_layer_norm_bwd_params_f32(const float* x, const float* g,
        // const float* stats, float* dw, float* db, size_t rows, size_t dim)`; x and g hold
        // rows * dim f32, stats 2 * rows, dw and db dim; one thread per column below dim.
        unsafe { b.launch(elem_config(dim)) }.w()?;
    }
    Ok(wrap(out, dev, Shape::from((rows + 2, dim))))
}
