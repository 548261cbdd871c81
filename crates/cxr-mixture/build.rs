//! Compiles `src/cuda/kernels.cu` to `mixture_kernels.ptx` under the `cuda` feature
//! (`scripts/build/cuda_ptx.rs`, shared with the other crates' build scripts).

#[path = "../../scripts/build/cuda_ptx.rs"]
mod cuda_ptx;

fn main() {
    cuda_ptx::compile_ptx("src/cuda/kernels.cu", "mixture_kernels.ptx", &[]);
}
