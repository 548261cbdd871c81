//! Plain reference kernels for the tests: textbook loops with no GEMM, no faer and no
//! parallelism, so a bug in the fast paths cannot hide in a shared helper.

use ndarray::{Array2, ArrayView2};

use crate::components::Components;

/// Textbook Cholesky `A = L L^T` (lower), `None` if not positive definite.
pub(crate) fn cholesky(a: &Array2<f64>) -> Option<Array2<f64>> {
    let d = a.nrows();
    let mut l = Array2::<f64>::zeros((d, d));
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|p| l[[i, p]] * l[[j, p]]).sum();
            if i == j {
                let v = a[[i, i]] - s;
                if v <= 0.0 {
                    return None;
                }
                l[[i, j]] = v.sqrt();
            } else {
                l[[i, j]] = (a[[i, j]] - s) / l[[j, j]];
            }
        }
    }
    Some(l)
}

/// `(x - mu)^T cov^{-1} (x - mu)` by forward substitution with the covariance's Cholesky
/// factor, for every sample and component.
pub(crate) fn sq_mahalanobis(comps: &Components, x: ArrayView2<'_, f64>) -> Array2<f64> {
    let (n, d) = x.dim();
    let k_n = comps.n_components();
    let mut out = Array2::<f64>::zeros((n, k_n));
    for k in 0..k_n {
        let cov = comps.covariances.dense(k, d);
        let l = cholesky(&cov).expect("reference: positive definite");
        for i in 0..n {
            // Solve L z = x - mu.
            let mut z = vec![0.0; d];
            for r in 0..d {
                let mut v = x[[i, r]] - comps.means[[k, r]];
                for c in 0..r {
                    v -= l[[r, c]] * z[c];
                }
                z[r] = v / l[[r, r]];
            }
            out[[i, k]] = z.iter().map(|v| v * v).sum();
        }
    }
    out
}
