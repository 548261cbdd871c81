// Fused AdamW: one pass over parameter, gradient and both moments, in place.
//
// Same arithmetic, in the same order, as the CPU kernel in src/cpu.rs (and candle_nn's AdamW):
//   m = b1 m + (1 - b1) g
//   v = b2 v + (1 - b2) g^2
//   p = p (1 - lr wd) - lr (m s_m) / (sqrt(v s_v) + eps)
// with s_m = 1 / (1 - b1^t), s_v = 1 / (1 - b2^t) and decay = 1 - lr wd precomputed on the host
// in f64 and passed as scalars of the element type. build.rs compiles this file with
// --fmad=false (no fused multiply-add contraction) so f32 results match the CPU kernel bit for
// bit; the kernel is memory-bound, so FMA would not make it faster anyway.
//
// Launch: 1-D grid of 256-thread blocks with a grid-stride loop, so any grid size covers any n;
// indices are size_t, so tensors beyond 2^32 elements are fine.

#include <stddef.h>

__device__ __forceinline__ float cxr_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double cxr_sqrt(double x) { return sqrt(x); }

template <typename T>
__device__ __forceinline__ void adamw_impl(
    T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
    const size_t n, const T b1, const T b2, const T c1, const T c2, const T sm, const T sv,
    const T decay, const T lr, const T eps) {
    const size_t stride = (size_t)gridDim.x * (size_t)blockDim.x;
    for (size_t i = (size_t)blockIdx.x * (size_t)blockDim.x + (size_t)threadIdx.x; i < n;
         i += stride) {
        const T gi = g[i];
        const T mi = m[i] * b1 + gi * c1;
        const T vi = v[i] * b2 + (gi * gi) * c2;
        m[i] = mi;
        v[i] = vi;
        const T step = (mi * sm) / (cxr_sqrt(vi * sv) + eps);
        p[i] = p[i] * decay - step * lr;
    }
}

// Argument order (the Rust launcher in src/cuda.rs pushes exactly these):
// p, g, m, v, n, b1, b2, c1 = 1 - b1, c2 = 1 - b2, s_m, s_v, decay, lr, eps.
extern "C" __global__ void cxr_adamw_f32(
    float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
    float* __restrict__ v, const size_t n, const float b1, const float b2, const float c1,
    const float c2, const float sm, const float sv, const float decay, const float lr,
    const float eps) {
    adamw_impl<float>(p, g, m, v, n, b1, b2, c1, c2, sm, sv, decay, lr, eps);
}

extern "C" __global__ void cxr_adamw_f64(
    double* __restrict__ p, const double* __restrict__ g, double* __restrict__ m,
    double* __restrict__ v, const size_t n, const double b1, const double b2, const double c1,
    const double c2, const double sm, const double sv, const double decay, const double lr,
    const double eps) {
    adamw_impl<double>(p, g, m, v, n, b1, b2, c1, c2, sm, sv, decay, lr, eps);
}
