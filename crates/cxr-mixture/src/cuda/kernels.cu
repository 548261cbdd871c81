// Squared Mahalanobis distances for the mixture E-step, one thread per (sample, component).
// Compiled to PTX by build.rs only under the `cuda` feature; launched from src/cuda/mod.rs.
// The CPU kernels in src/components.rs are the reference these are tested against.

extern "C" __global__ void sq_maha_diag(
    const double* __restrict__ x,      // n x d, row-major
    const double* __restrict__ means,  // k x d
    const double* __restrict__ prec,   // k x d, 1 / variance
    double* __restrict__ out,          // n x k
    int n, int d, int k)
{
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)n * k) return;
    int i = (int)(idx / k);
    int c = (int)(idx % k);
    const double* xi = x + (long long)i * d;
    const double* mu = means + (long long)c * d;
    const double* p = prec + (long long)c * d;
    double s = 0.0;
    for (int j = 0; j < d; ++j) {
        double t = xi[j] - mu[j];
        s += t * t * p[j];
    }
    out[idx] = s;
}

// Full covariances: y = x P_c - mu_c P_c with P_c upper triangular (P P^T = precision),
// distance = |y|^2. `mp` holds mu_c P_c.
extern "C" __global__ void sq_maha_full(
    const double* __restrict__ x,      // n x d
    const double* __restrict__ mp,     // k x d
    const double* __restrict__ pchol,  // k x d x d, row-major, upper triangular
    double* __restrict__ out,          // n x k
    int n, int d, int k)
{
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)n * k) return;
    int i = (int)(idx / k);
    int c = (int)(idx % k);
    const double* xi = x + (long long)i * d;
    const double* p = pchol + (long long)c * d * d;
    const double* m = mp + (long long)c * d;
    double s = 0.0;
    for (int j = 0; j < d; ++j) {
        double y = -m[j];
        for (int l = 0; l <= j; ++l) {
            y += xi[l] * p[(long long)l * d + j];
        }
        s += y * y;
    }
    out[idx] = s;
}
