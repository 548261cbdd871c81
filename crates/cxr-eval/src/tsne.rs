//! Exact t-SNE (van der Maaten & Hinton 2008) for figures of a few thousand embeddings,
//! following scikit-learn's `TSNE(method="exact")` choices: perplexity calibrated per point by
//! binary search on squared Euclidean distances, symmetrised P, early exaggeration 12 for 250
//! iterations, momentum 0.5 then 0.8, adaptive gains, learning rate "auto"
//! (`max(N / 12 / 4, 50)`), PCA initialisation scaled to standard deviation 1e-4.
//! O(N²) per iteration, parallel over rows; deterministic (no randomness beyond the seed of
//! the fallback initialisation).

use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{EvalError, Result};

/// t-SNE settings; [`TsneConfig::default`] holds scikit-learn's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TsneConfig {
    pub perplexity: f64,
    pub max_iter: usize,
    pub early_exaggeration: f64,
    /// Iterations run with exaggeration and momentum 0.5.
    pub exaggeration_iter: usize,
    /// `None`: scikit-learn's "auto" rule.
    pub learning_rate: Option<f64>,
    /// Seeds the random initialisation used when PCA initialisation is degenerate.
    pub seed: u64,
}

impl Default for TsneConfig {
    fn default() -> Self {
        TsneConfig {
            perplexity: 30.0,
            max_iter: 1000,
            early_exaggeration: 12.0,
            exaggeration_iter: 250,
            learning_rate: None,
            seed: 0,
        }
    }
}

impl TsneConfig {
    fn validate(&self, n: usize) -> Result<()> {
        let bad = |name, value: f64, hint| {
            Err(EvalError::InvalidParam {
                name,
                value: value.to_string(),
                hint,
            })
        };
        if self.perplexity.is_nan() || self.perplexity <= 0.0 || self.perplexity >= n as f64 {
            return bad(
                "perplexity",
                self.perplexity,
                "must be positive and below the number of points (try 30, or fewer for tiny sets)",
            );
        }
        if self.early_exaggeration.is_nan() || self.early_exaggeration < 1.0 {
            return bad(
                "early_exaggeration",
                self.early_exaggeration,
                "must be at least 1 (12 is customary)",
            );
        }
        if let Some(lr) = self.learning_rate {
            if lr.is_nan() || lr <= 0.0 {
                return bad("learning_rate", lr, "must be positive, or None for auto");
            }
        }
        if self.max_iter == 0 {
            return bad("max_iter", 0.0, "must be at least 1 (1000 is customary)");
        }
        Ok(())
    }
}

fn sq_distances(x: &ArrayView2<'_, f32>) -> Vec<f64> {
    let n = x.nrows();
    let rows: Vec<Vec<f64>> = x
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&v| f64::from(v)).collect())
        .collect();
    let mut d = vec![0.0; n * n];
    d.par_chunks_mut(n).enumerate().for_each(|(i, out)| {
        for j in 0..n {
            out[j] = rows[i]
                .iter()
                .zip(&rows[j])
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
        }
    });
    d
}

/// Conditional probabilities with the target perplexity (binary search on the precision,
/// as sklearn's `_binary_search_perplexity`), then symmetrised and normalised.
fn joint_probabilities(d: &[f64], n: usize, perplexity: f64) -> Vec<f64> {
    let target = perplexity.ln();
    let mut p = vec![0.0; n * n];
    p.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        let (mut beta, mut lo, mut hi) = (1.0f64, f64::NEG_INFINITY, f64::INFINITY);
        for _ in 0..100 {
            let mut sum = 0.0;
            for j in 0..n {
                row[j] = if j == i {
                    0.0
                } else {
                    (-d[i * n + j] * beta).exp()
                };
                sum += row[j];
            }
            if sum == 0.0 {
                sum = 1e-8;
            }
            let mut entropy = 0.0;
            for j in 0..n {
                row[j] /= sum;
                entropy += d[i * n + j] * row[j];
            }
            entropy = sum.ln() + beta * entropy;
            let diff = entropy - target;
            if diff.abs() <= 1e-5 {
                break;
            }
            if diff > 0.0 {
                lo = beta;
                beta = if hi.is_infinite() {
                    beta * 2.0
                } else {
                    (beta + hi) / 2.0
                };
            } else {
                hi = beta;
                beta = if lo.is_infinite() {
                    beta / 2.0
                } else {
                    (beta + lo) / 2.0
                };
            }
        }
    });
    let mut joint = vec![0.0; n * n];
    let sum: f64 = (0..n * n).map(|k| p[k] + p[(k % n) * n + k / n]).sum();
    for i in 0..n {
        for j in 0..n {
            joint[i * n + j] = ((p[i * n + j] + p[j * n + i]) / sum).max(1e-12);
        }
    }
    joint
}

/// First two principal components by power iteration, scaled so the first has standard
/// deviation 1e-4 (sklearn's PCA init). `None` if the data are degenerate.
fn pca_init(x: &ArrayView2<'_, f32>) -> Option<Vec<[f64; 2]>> {
    let (n, dim) = x.dim();
    let mean: Vec<f64> = (0..dim)
        .map(|k| x.column(k).iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64)
        .collect();
    let xc: Vec<Vec<f64>> = x
        .rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .zip(&mean)
                .map(|(&v, m)| f64::from(v) - m)
                .collect()
        })
        .collect();
    let mut comps: Vec<Vec<f64>> = Vec::new();
    for c in 0..2 {
        // Deterministic start that is not orthogonal to typical data.
        let mut v: Vec<f64> = (0..dim)
            .map(|k| 1.0 + ((k * 7 + c * 3) % 11) as f64 / 11.0)
            .collect();
        for _ in 0..100 {
            let proj: Vec<f64> = xc
                .iter()
                .map(|r| r.iter().zip(&v).map(|(a, b)| a * b).sum())
                .collect();
            let mut w = vec![0.0; dim];
            for (r, p) in xc.iter().zip(&proj) {
                for k in 0..dim {
                    w[k] += r[k] * p;
                }
            }
            for prev in &comps {
                let dot: f64 = w.iter().zip(prev).map(|(a, b)| a * b).sum();
                for k in 0..dim {
                    w[k] -= dot * prev[k];
                }
            }
            let norm = w.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm.is_nan() || norm <= 1e-12 {
                return None;
            }
            v = w.into_iter().map(|a| a / norm).collect();
        }
        comps.push(v);
    }
    let y: Vec<[f64; 2]> = xc
        .iter()
        .map(|r| [0, 1].map(|c| r.iter().zip(&comps[c]).map(|(a, b)| a * b).sum::<f64>()))
        .collect();
    let m0 = y.iter().map(|p| p[0]).sum::<f64>() / n as f64;
    let sd = (y.iter().map(|p| (p[0] - m0).powi(2)).sum::<f64>() / n as f64).sqrt();
    if sd.is_nan() || sd <= 0.0 {
        return None;
    }
    Some(
        y.into_iter()
            .map(|p| [p[0] / sd * 1e-4, p[1] / sd * 1e-4])
            .collect(),
    )
}

fn random_init(n: usize, seed: u64) -> Vec<[f64; 2]> {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| [rng.gen_range(-1e-4..1e-4), rng.gen_range(-1e-4..1e-4)])
        .collect()
}

/// Embeds the rows of `x` (N x D) in two dimensions. Needs N > perplexity.
pub fn tsne(x: ArrayView2<'_, f32>, cfg: &TsneConfig) -> Result<Array2<f32>> {
    let n = x.nrows();
    if n < 2 {
        return Err(EvalError::Empty("t-SNE input (needs at least 2 rows)"));
    }
    cfg.validate(n)?;
    if x.iter().any(|v| !v.is_finite()) {
        return Err(EvalError::InvalidParam {
            name: "x",
            value: "non-finite".into(),
            hint: "embeddings must be finite",
        });
    }
    let d = sq_distances(&x);
    let p = joint_probabilities(&d, n, cfg.perplexity);
    drop(d);
    let mut y = pca_init(&x).unwrap_or_else(|| random_init(n, cfg.seed));
    let lr = cfg
        .learning_rate
        .unwrap_or_else(|| (n as f64 / cfg.early_exaggeration / 4.0).max(50.0));
    let mut update = vec![[0.0f64; 2]; n];
    let mut gains = vec![[1.0f64; 2]; n];
    let mut grad = vec![[0.0f64; 2]; n];
    for it in 0..cfg.max_iter {
        let (exag, momentum) = if it < cfg.exaggeration_iter {
            (cfg.early_exaggeration, 0.5)
        } else {
            (1.0, 0.8)
        };
        // Student-t kernel sums, then gradient 4 Σ_j (exag p_ij - q_ij) num_ij (y_i - y_j).
        // Row sums collected in order, then added sequentially: a parallel reduction would
        // make the result depend on the thread count.
        let row_sums: Vec<f64> = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut s = 0.0;
                for j in 0..n {
                    if j != i {
                        let (dx, dy) = (y[i][0] - y[j][0], y[i][1] - y[j][1]);
                        s += 1.0 / (1.0 + dx * dx + dy * dy);
                    }
                }
                s
            })
            .collect();
        let z: f64 = row_sums.iter().sum();
        grad.par_iter_mut().enumerate().for_each(|(i, g)| {
            let mut acc = [0.0f64; 2];
            for j in 0..n {
                if j == i {
                    continue;
                }
                let (dx, dy) = (y[i][0] - y[j][0], y[i][1] - y[j][1]);
                let num = 1.0 / (1.0 + dx * dx + dy * dy);
                let f = (exag * p[i * n + j] - num / z) * num;
                acc[0] += f * dx;
                acc[1] += f * dy;
            }
            *g = [4.0 * acc[0], 4.0 * acc[1]];
        });
        for i in 0..n {
            for k in 0..2 {
                let opposite = (update[i][k] * grad[i][k]) < 0.0;
                gains[i][k] = if opposite {
                    gains[i][k] + 0.2
                } else {
                    gains[i][k] * 0.8
                }
                .max(0.01);
                update[i][k] = momentum * update[i][k] - lr * gains[i][k] * grad[i][k];
                y[i][k] += update[i][k];
            }
        }
    }
    Ok(Array2::from_shape_fn((n, 2), |(i, k)| y[i][k] as f32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn clusters(per: usize, dim: usize) -> (Array2<f32>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut x = Array2::zeros((3 * per, dim));
        let mut lab = Vec::new();
        for c in 0..3 {
            for i in 0..per {
                for k in 0..dim {
                    let center = if k % 3 == c { 5.0 } else { 0.0 };
                    x[[c * per + i, k]] = center + rng.gen_range(-1.0f32..1.0);
                }
                lab.push(c);
            }
        }
        (x, lab)
    }

    #[test]
    fn separates_clusters_and_is_deterministic() {
        let (x, lab) = clusters(25, 9);
        let cfg = TsneConfig {
            perplexity: 10.0,
            max_iter: 500,
            ..TsneConfig::default()
        };
        let y = tsne(x.view(), &cfg).unwrap();
        assert_eq!(y.dim(), (75, 2));
        assert_eq!(y, tsne(x.view(), &cfg).unwrap());
        // Nearest neighbour in 2-D belongs to the same cluster for (almost) every point.
        let mut agree = 0;
        for i in 0..75 {
            let nn = (0..75)
                .filter(|&j| j != i)
                .min_by(|&a, &b| {
                    let da = (y[[i, 0]] - y[[a, 0]]).powi(2) + (y[[i, 1]] - y[[a, 1]]).powi(2);
                    let db = (y[[i, 0]] - y[[b, 0]]).powi(2) + (y[[i, 1]] - y[[b, 1]]).powi(2);
                    da.total_cmp(&db)
                })
                .unwrap();
            agree += usize::from(lab[nn] == lab[i]);
        }
        assert!(agree >= 73, "only {agree}/75 neighbours agree");
    }

    #[test]
    fn invalid_settings_are_errors() {
        let (x, _) = clusters(5, 3);
        assert!(tsne(x.view(), &TsneConfig::default()).is_err()); // perplexity 30 >= 15 points
        let bad_lr = TsneConfig {
            perplexity: 5.0,
            learning_rate: Some(-1.0),
            ..TsneConfig::default()
        };
        assert!(matches!(
            tsne(x.view(), &bad_lr),
            Err(EvalError::InvalidParam {
                name: "learning_rate",
                ..
            })
        ));
        assert!(tsne(Array2::<f32>::zeros((1, 3)).view(), &TsneConfig::default()).is_err());
    }
}
