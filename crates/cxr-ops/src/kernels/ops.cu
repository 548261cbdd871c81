// CUDA kernels of cxr-ops (f32): LayerNorm, softmax and log-softmax over the last dimension,
// quick-GELU and the exact GELU, each with its backward. The same formulas as src/cpu.rs.
//
// Row ops: one block per row (gridDim.x = rows), blockDim.x a multiple of 32 up to 1024;
// threads stride over the row and reduce with warp shuffles, then through shared memory
// across warps. Element-wise ops: a grid-stride loop. Sizes are size_t (the Rust side passes
// usize); every row holds `dim` contiguous elements.

#include <stddef.h>
#include <math.h>

namespace {

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block; every thread gets the result. `shared` holds 32 floats.
__device__ float block_sum(float v, float* shared) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();  // `shared` may still be read by a previous reduction
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : 0.0f;
    return warp_sum(v);
}

__device__ float block_max(float v, float* shared) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : -INFINITY;
    return warp_max(v);
}

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// The maximum of a row of `dim`, over the whole block (every thread gets it).
__device__ __forceinline__ float row_max(const float* xr, size_t dim, float* shared) {
    float m = -INFINITY;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) m = fmaxf(m, xr[i]);
    return block_max(m, shared);
}

}  // namespace

extern "C" __global__ void cxr_softmax_f32(const float* x, float* y, size_t dim) {
    __shared__ float shared[32];
    const float* xr = x + blockIdx.x * dim;
    float* yr = y + blockIdx.x * dim;
    const float m = row_max(xr, dim, shared);
    float s = 0.0f;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) {
        const float e = expf(xr[i] - m);
        yr[i] = e;
        s += e;
    }
    const float inv = 1.0f / block_sum(s, shared);
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] *= inv;
}

extern "C" __global__ void cxr_log_softmax_f32(const float* x, float* y, size_t dim) {
    __shared__ float shared[32];
    const float* xr = x + blockIdx.x * dim;
    float* yr = y + blockIdx.x * dim;
    const float m = row_max(xr, dim, shared);
    float s = 0.0f;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) s += expf(xr[i] - m);
    const float log_sum = logf(block_sum(s, shared));
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = (xr[i] - m) - log_sum;
}

// dx = y * (g - sum(g * y)), from softmax's result y.
extern "C" __global__ void cxr_softmax_bwd_f32(const float* y, const float* g, float* dx,
                                               size_t dim) {
    __shared__ float shared[32];
    const size_t o = blockIdx.x * dim;
    float s = 0.0f;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) s += g[o + i] * y[o + i];
    s = block_sum(s, shared);
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) dx[o + i] = y[o + i] * (g[o + i] - s);
}

// dx = g - exp(y) * sum(g), from log-softmax's result y.
extern "C" __global__ void cxr_log_softmax_bwd_f32(const float* y, const float* g, float* dx,
                                                   size_t dim) {
    __shared__ float shared[32];
    const size_t o = blockIdx.x * dim;
    float s = 0.0f;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) s += g[o + i];
    s = block_sum(s, shared);
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) dx[o + i] = g[o + i] - expf(y[o + i]) * s;
}

// Mean and 1 / sqrt(var + eps) of one row (biased variance, two passes as on the CPU).
__device__ void row_moments(const float* xr, size_t dim, float eps, float* shared, float* mean,
                            float* rstd) {
    float s = 0.0f;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) s += xr[i];
    const float mu = block_sum(s, shared) / (float)dim;
    float v = 0.0f;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) {
        const float d = xr[i] - mu;
        v += d * d;
    }
    const float var = block_sum(v, shared) / (float)dim;
    *mean = mu;
    *rstd = 1.0f / sqrtf(var + eps);
}

extern "C" __global__ void cxr_layer_norm_f32(const float* x, const float* w, const float* b,
                                              float* y, size_t dim, float eps) {
    __shared__ float shared[32];
    const float* xr = x + blockIdx.x * dim;
    float* yr = y + blockIdx.x * dim;
    float mean, rstd;
    row_moments(xr, dim, eps, shared, &mean, &rstd);
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x)
        yr[i] = (xr[i] - mean) * rstd * w[i] + b[i];
}

// dx of one row per block; also writes the row's mean and rstd to `stats` (2 floats a row)
// for cxr_layer_norm_bwd_params_f32.
extern "C" __global__ void cxr_layer_norm_bwd_dx_f32(const float* x, const float* w,
                                                     const float* g, float* dx, float* stats,
                                                     size_t dim, float eps) {
    __shared__ float shared[32];
    const size_t o = blockIdx.x * dim;
    float mean, rstd;
    row_moments(x + o, dim, eps, shared, &mean, &rstd);
    float sg = 0.0f, sgx = 0.0f;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) {
        const float gw = g[o + i] * w[i];
        sg += gw;
        sgx += gw * ((x[o + i] - mean) * rstd);
    }
    const float mean_gw = block_sum(sg, shared) / (float)dim;
    const float mean_gwx = block_sum(sgx, shared) / (float)dim;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) {
        const float xh = (x[o + i] - mean) * rstd;
        dx[o + i] = rstd * (g[o + i] * w[i] - mean_gw - xh * mean_gwx);
    }
    if (threadIdx.x == 0) {
        stats[2 * blockIdx.x] = mean;
        stats[2 * blockIdx.x + 1] = rstd;
    }
}

// dweight and dbias: one thread per column, summing over the rows in order (coalesced: the
// threads of a warp read consecutive columns of one row).
extern "C" __global__ void cxr_layer_norm_bwd_params_f32(const float* x, const float* g,
                                                         const float* stats, float* dw,
                                                         float* db, size_t rows, size_t dim) {
    const size_t c = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    float sw = 0.0f, sb = 0.0f;
    for (size_t r = 0; r < rows; ++r) {
        const float gv = g[r * dim + c];
        sw += gv * ((x[r * dim + c] - stats[2 * r]) * stats[2 * r + 1]);
        sb += gv;
    }
    dw[c] = sw;
    db[c] = sb;
}

extern "C" __global__ void cxr_quick_gelu_f32(const float* x, float* y, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        y[i] = x[i] * sigmoid(1.702f * x[i]);
    }
}

extern "C" __global__ void cxr_quick_gelu_bwd_f32(const float* x, const float* g, float* dx,
                                                  size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float s = sigmoid(1.702f * x[i]);
        dx[i] = g[i] * (s + 1.702f * x[i] * s * (1.0f - s));
    }
}

extern "C" __global__ void cxr_gelu_erf_f32(const float* x, float* y, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        y[i] = (erff(x[i] * 0.70710678118654752f) + 1.0f) * 0.5f * x[i];
    }
}

extern "C" __global__ void cxr_gelu_erf_bwd_f32(const float* x, const float* g, float* dx,
                                                size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float v = x[i];
        const float cdf = (erff(v * 0.70710678118654752f) + 1.0f) * 0.5f;
        const float pdf = expf(-0.5f * v * v) * 0.39894228040143268f;
        dx[i] = g[i] * (cdf + v * pdf);
    }
}
