//! Compiles `src/kernels/ops.cu` to `ops.ptx` under the `cuda` feature
//! (`scripts/build/cuda_ptx.rs`, shared with the other crates' build scripts).

#[path = "../../scripts/build/cuda_ptx.rs"]
mod cuda_ptx;

fn main() {
    cuda_ptx::compile_ptx("src/kernels/ops.cu", "ops.ptx", &[]);
}
