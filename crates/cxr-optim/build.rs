//! Compiles `src/kernels/adamw.cu` to `adamw.ptx` under the `cuda` feature
//! (`scripts/build/cuda_ptx.rs`, shared with the other crates' build scripts).
//! `--fmad=false` keeps the f32 arithmetic identical to the CPU kernel (see the comment at the
//! top of the `.cu` file).

#[path = "../../scripts/build/cuda_ptx.rs"]
mod cuda_ptx;

fn main() {
    cuda_ptx::compile_ptx("src/kernels/adamw.cu", "adamw.ptx", &["--fmad=false"]);
}
