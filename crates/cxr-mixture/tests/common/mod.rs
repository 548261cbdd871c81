//! Shared synthetic data for the integration tests.
#![allow(dead_code)]

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `k` well-separated isotropic blobs of `per` points in `d` dims (centres 10 apart on the
/// axes), plus the true labels.
pub fn blobs(k: usize, per: usize, d: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::<f64>::zeros((k * per, d));
    let mut labels = Vec::with_capacity(k * per);
    for c in 0..k {
        for i in 0..per {
            let row = c * per + i;
            for j in 0..d {
                let centre = if j == c % d {
                    10.0 * (1 + c / d) as f64
                } else {
                    0.0
                };
                // Sum of uniforms: cheap, roughly normal, unit-ish variance.
                let z: f64 = (0..4).map(|_| rng.gen::<f64>() - 0.5).sum::<f64>() * 1.7;
                x[[row, j]] = centre + z;
            }
            labels.push(c);
        }
    }
    (x, labels)
}

/// Fraction of pairs on which two labelings agree about "same cluster" (Rand index).
pub fn rand_index(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len();
    let mut agree = 0usize;
    let mut total = 0usize;
    for i in 0..n {
        for j in (i + 1)..n {
            total += 1;
            if (a[i] == a[j]) == (b[i] == b[j]) {
                agree += 1;
            }
        }
    }
    agree as f64 / total as f64
}
