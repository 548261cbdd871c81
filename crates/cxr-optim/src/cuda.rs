//! CUDA path of the fused AdamW (feature `cuda`): our kernel `src/kernels/adamw.cu`, compiled
//! to PTX by `build.rs`, loaded once per device into candle's own CUDA context and launched on
//! candle's stream, in place on the parameter's `CudaSlice`. The moments are `CudaSlice`s on the
//! same device, owned by the optimiser and lent to the op for the call, exactly like the host
//! buffers of the CPU path (`cpu.rs`).
//!
//! Supported: f32 and f64 parameters. Other dtypes (bf16, f16) keep candle tensor ops (see
//! `AdamW::new`). Not yet run on a GPU: the session that wrote it had none; `tests/cuda.rs`
//! compares it with the CPU kernel wherever a CUDA device is present.

// cudarc's kernel launch is `unsafe` (argument types are not checked against the PTX); the
// launch below says why its arguments match.
#![allow(unsafe_code)]

use std::sync::Mutex;

use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, CudaViewMut, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits,
};
use candle_core::cuda_backend::{CudaDType, CudaDevice, CudaStorage, WrapErr};
use candle_core::op::BackpropOp;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Shape, Storage, Tensor};

use crate::cpu::{adamw_ranges, contiguous, lock, AdamWStep, Real};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/adamw.ptx"));
/// Key of our module in candle's per-device cache of custom modules.
const MODULE: &str = "cxr_optim_adamw";
/// Threads per block: the kernel is memory-bound and uses no shared memory, so any multiple
/// of the warp size does; 256 is the usual choice.
const BLOCK: u32 = 256;
/// Upper bound on the grid. The kernel loops with a grid stride, so a capped grid still covers
/// every element; 4096 blocks of 256 threads are several full waves on any current GPU (an
/// H100/H200 keeps 132 x 8 = 1056 such blocks resident).
const MAX_BLOCKS: usize = 4096;

/// One moment buffer on a CUDA device, in the parameter's dtype.
#[derive(Debug)]
pub(crate) struct DeviceBuf {
    dev: CudaDevice,
    data: Data,
}

#[derive(Debug)]
enum Data {
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
}

impl DeviceBuf {
    /// Zeros on `dev` for a parameter of `dtype` and `len` elements, or `None` when the kernel
    /// does not handle the dtype or the tensor is empty (those keep candle tensor ops).
    pub(crate) fn zeros(
        dev: &CudaDevice,
        dtype: DType,
        len: usize,
    ) -> candle_core::Result<Option<Self>> {
        if len == 0 {
            return Ok(None);
        }
        let data = match dtype {
            DType::F32 => Data::F32(dev.alloc_zeros::<f32>(len)?),
            DType::F64 => Data::F64(dev.alloc_zeros::<f64>(len)?),
            _ => return Ok(None),
        };
        Ok(Some(Self {
            dev: dev.clone(),
            data,
        }))
    }

    fn len(&self) -> usize {
        match &self.data {
            Data::F32(s) => s.len(),
            Data::F64(s) => s.len(),
        }
    }

    /// A copy as a tensor of `shape` on the same device (for checkpoints).
    pub(crate) fn to_tensor(&self, shape: &Shape) -> candle_core::Result<Tensor> {
        fn copy<T: CudaDType + DeviceRepr>(
            dev: &CudaDevice,
            s: &CudaSlice<T>,
        ) -> candle_core::Result<CudaStorage> {
            let copy = dev.cuda_stream().clone_dtod(s).w()?;
            Ok(CudaStorage::wrap_cuda_slice(copy, dev.clone()))
        }
        let storage = match &self.data {
            Data::F32(s) => copy(&self.dev, s)?,
            Data::F64(s) => copy(&self.dev, s)?,
        };
        Ok(Tensor::from_storage(
            Storage::Cuda(storage),
            shape.clone(),
            BackpropOp::none(),
            false,
        ))
    }

    /// Overwrites the buffer with `t` (any dtype and device, same element count).
    pub(crate) fn load(&mut self, t: &Tensor) -> candle_core::Result<()> {
        fn fill<T: CudaDType + DeviceRepr>(
            dev: &CudaDevice,
            dst: &mut CudaSlice<T>,
            t: &Tensor,
        ) -> candle_core::Result<()> {
            let (st, l) = t.storage_and_layout();
            let Storage::Cuda(cs) = &*st else {
                candle_core::bail!("fused AdamW: moment to load is not on a CUDA device");
            };
            let (o0, o1) = contiguous(l, "moment to load")?;
            if o1 - o0 != dst.len() {
                candle_core::bail!(
                    "fused AdamW: moment to load has {} elements, the parameter {}",
                    o1 - o0,
                    dst.len()
                );
            }
            let src = cs.as_cuda_slice::<T>()?.slice(o0..o1);
            dev.cuda_stream().memcpy_dtod(&src, dst).w()
        }
        let (dtype, n) = match &self.data {
            Data::F32(_) => (DType::F32, self.len()),
            Data::F64(_) => (DType::F64, self.len()),
        };
        if t.elem_count() != n {
            candle_core::bail!(
                "fused AdamW: moment to load has {} elements, the parameter {n}",
                t.elem_count()
            );
        }
        let t = t
            .flatten_all()?
            .to_dtype(dtype)?
            .to_device(&candle_core::Device::Cuda(self.dev.clone()))?
            .contiguous()?;
        match &mut self.data {
            Data::F32(s) => fill(&self.dev, s, &t),
            Data::F64(s) => fill(&self.dev, s, &t),
        }
    }
}

/// In-place AdamW on one CUDA parameter; the gradient is the second operand.
pub(crate) struct CudaAdamWOp<'a> {
    pub h: AdamWStep,
    pub m: Mutex<&'a mut DeviceBuf>,
    pub v: Mutex<&'a mut DeviceBuf>,
}

impl InplaceOp2 for CudaAdamWOp<'_> {
    fn name(&self) -> &'static str {
        "cxr-fused-adamw-cuda"
    }

    fn cpu_fwd(
        &self,
        _: &mut CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<()> {
        candle_core::bail!(
            "fused AdamW: the moments live on a CUDA device but the parameter is on the CPU"
        )
    }

    fn cuda_fwd(
        &self,
        s1: &mut CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let mut m = lock(&self.m)?;
        let mut v = lock(&self.v)?;
        let (pr, gr) = adamw_ranges(l1, l2, m.len(), v.len())?;
        if pr.is_empty() {
            return Ok(());
        }
        let dev = s1.device.clone();
        match (&mut m.data, &mut v.data) {
            (Data::F32(m), Data::F32(v)) => {
                let p = s1.as_cuda_slice_mut::<f32>()?.slice_mut(pr);
                let g = s2.as_cuda_slice::<f32>()?.slice(gr);
                launch(&dev, "cxr_adamw_f32", p, g, m, v, &self.h)
            }
            (Data::F64(m), Data::F64(v)) => {
                let p = s1.as_cuda_slice_mut::<f64>()?.slice_mut(pr);
                let g = s2.as_cuda_slice::<f64>()?.slice(gr);
                launch(&dev, "cxr_adamw_f64", p, g, m, v, &self.h)
            }
            _ => candle_core::bail!("fused AdamW: the two moments differ in dtype"),
        }
    }
}

/// Grid for `n > 0` elements: one thread per element up to [`MAX_BLOCKS`] blocks, beyond that
/// the kernel's grid-stride loop takes over.
fn launch_config(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS);
    LaunchConfig {
        // Lossless: `blocks <= MAX_BLOCKS`.
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Launches `kernel` (`cxr_adamw_f32` or `cxr_adamw_f64`) over `p.len()` elements on the
/// device's stream. Lengths were checked by the caller.
fn launch<T: Real + DeviceRepr + ValidAsZeroBits>(
    dev: &CudaDevice,
    kernel: &str,
    mut p: CudaViewMut<'_, T>,
    g: CudaView<'_, T>,
    m: &mut CudaSlice<T>,
    v: &mut CudaSlice<T>,
    h: &AdamWStep,
) -> candle_core::Result<()> {
    let n: usize = p.len();
    // Cast once from f64, as the CPU kernel does, so both paths use the same constants.
    let [b1, b2, c1, c2, sm, sv, decay, lr, eps] = [
        h.beta1,
        h.beta2,
        1.0 - h.beta1,
        1.0 - h.beta2,
        h.scale_m,
        h.scale_v,
        h.decay,
        h.lr,
        h.eps,
    ]
    .map(T::from_f64);
    let func = dev.get_or_load_custom_func(kernel, MODULE, PTX)?;
    let mut b = func.builder();
    b.arg(&mut p)
        .arg(&g)
        .arg(m)
        .arg(v)
        .arg(&n)
        .arg(&b1)
        .arg(&b2)
        .arg(&c1)
        .arg(&c2)
        .arg(&sm)
        .arg(&sv)
        .arg(&decay)
        .arg(&lr)
        .arg(&eps);
    // SAFETY: `kernel` is `cxr_adamw_{f32,f64}(T* p, const T* g, T* m, T* v, size_t n, T b1,
    // T b2, T c1, T c2, T sm, T sv, T decay, T lr, T eps)` with T the Rust element type here
    // (f32 <-> float, f64 <-> double; usize <-> size_t on the 64-bit targets CUDA supports).
    // p, g, m and v each hold exactly n elements (checked by the caller), and the kernel only
    // touches indices below n.
    unsafe { b.launch(launch_config(n)) }.w()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{launch_config, BLOCK, MAX_BLOCKS};

    #[test]
    fn grid_covers_small_tensors_and_caps_large_ones() {
        assert_eq!(launch_config(1).grid_dim, (1, 1, 1));
        assert_eq!(launch_config(256).grid_dim, (1, 1, 1));
        assert_eq!(launch_config(257).grid_dim, (2, 1, 1));
        assert_eq!(launch_config(1 << 20).grid_dim.0, (1 << 20) / BLOCK);
        // ViT-B/32's token embedding (49408 x 512): capped, the grid stride covers the rest.
        assert_eq!(launch_config(49_408 * 512).grid_dim.0 as usize, MAX_BLOCKS);
        assert_eq!(launch_config(usize::MAX).grid_dim.0 as usize, MAX_BLOCKS);
        assert_eq!(launch_config(7).block_dim, (BLOCK, 1, 1));
    }
}
