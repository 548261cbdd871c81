// Host emulation of crates/cxr-optim/src/kernels/adamw.cu, for machines without a GPU.
//
// Compiles the kernel source as plain C++ (CUDA qualifiers defined away), runs its body for
// every (block, thread) of the launch configuration that src/cuda.rs computes (256 threads,
// at most 4096 blocks, grid-stride loop), and checks every element against the CPU kernel's
// formula in the same order (src/cpu.rs), bit for bit. It catches indexing and coverage errors
// (an element skipped or updated twice) and a wrong formula; it does not exercise nvcc's code
// generation, the PTX loading or the launch through cudarc (tests/cuda.rs does, on a GPU).
//
//   g++ -O1 -ffp-contract=off -std=c++17 scripts/goldens/cxr-optim/adamw_kernel_host_emulation.cpp \
//       -o /tmp/adamw_emu && /tmp/adamw_emu
//
// Result of 2026-11-28 (g++ 12.2): 0 mismatches for n in {1, 7, 256, 257, 77100, 1100003,
// 1048581}.
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <vector>
#include <algorithm>
struct D3 { size_t x; };
static D3 gridDim, blockDim, blockIdx, threadIdx;
#define __device__
#define __forceinline__ inline
#define __global__
#define __restrict__
static float sqrtf_(float x) { return std::sqrt(x); }
#define sqrtf sqrtf_
#include "../../../crates/cxr-optim/src/kernels/adamw.cu"
int main() {
  size_t total_bad = 0;
  const size_t BLOCK = 256, MAXB = 4096;
  for (size_t n : {1ul, 7ul, 256ul, 257ul, 77100ul, 1100003ul, 256ul * 4096 + 5}) {
    std::vector<float> p(n), g(n), m(n), v(n);
    for (size_t i = 0; i < n; ++i) { p[i] = std::sin(i * 1.3f); g[i] = std::cos(i * 0.7f) * 0.1f; m[i] = 0.01f * std::sin(i * 0.1f); v[i] = 1e-4f * (1 + std::sin(i * 0.2f)); }
    auto rp = p, rg = g, rm = m, rv = v;
    double b1d = 0.9, b2d = 0.999, lr = 3e-3, wd = 0.05, eps = 1e-8; int t = 3;
    float b1 = b1d, b2 = b2d, c1 = 1 - b1d, c2 = 1 - b2d, sm = 1 / (1 - std::pow(b1d, t)), sv = 1 / (1 - std::pow(b2d, t)), dec = 1 - lr * wd, lrf = lr, epsf = eps;
    size_t blocks = std::min(std::max((n + BLOCK - 1) / BLOCK, (size_t)1), MAXB);
    gridDim.x = blocks; blockDim.x = BLOCK;
    for (blockIdx.x = 0; blockIdx.x < blocks; ++blockIdx.x)
      for (threadIdx.x = 0; threadIdx.x < BLOCK; ++threadIdx.x)
        cxr_adamw_f32(p.data(), g.data(), m.data(), v.data(), n, b1, b2, c1, c2, sm, sv, dec, lrf, epsf);
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) {  // the CPU kernel of src/cpu.rs, verbatim order
      float mi = rm[i] * b1 + rg[i] * c1; float vi = rv[i] * b2 + (rg[i] * rg[i]) * c2;
      float step = (mi * sm) / (std::sqrt(vi * sv) + epsf); float pi = rp[i] * dec - step * lrf;
      if (pi != p[i] || mi != m[i] || vi != v[i]) ++bad;
    }
    printf("n=%zu blocks=%zu mismatches=%zu\n", n, blocks, bad);
    total_bad += bad;
  }
  return total_bad == 0 ? 0 : 1;
}
