//! Small numeric helpers: the standard normal distribution and numpy-style percentiles.
//! Written here to avoid a statistics dependency for three functions.

use std::f64::consts::PI;

/// Standard normal density.
pub fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

/// Upper tail `P(Z > x)` for `x >= 0`, accurate in relative terms far into the tail
/// (needed for small DeLong p-values).
fn upper_tail(x: f64) -> f64 {
    debug_assert!(x >= 0.0);
    if x < 3.0 {
        // Marsaglia (2004): Phi(x) = 1/2 + phi(x) (x + x^3/3 + x^5/15 + ...), all terms
        // positive so no cancellation; 1 - Phi loses nothing below x = 3.
        let mut term = x;
        let mut sum = x;
        let x2 = x * x;
        let mut k = 1.0;
        while term.abs() > 1e-17 * sum.abs() {
            k += 2.0;
            term *= x2 / k;
            sum += term;
        }
        0.5 - normal_pdf(x) * sum
    } else {
        // Laplace's continued fraction Q(x) = phi(x) / (x + 1/(x + 2/(x + 3/(x + ...)))),
        // evaluated backwards; 200 levels converge to double precision for x >= 3.
        let mut cf = x;
        for k in (1..=200).rev() {
            cf = x + k as f64 / cf;
        }
        normal_pdf(x) / cf
    }
}

/// Standard normal CDF `Phi(x)`.
pub fn normal_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x >= 0.0 {
        1.0 - upper_tail(x)
    } else {
        upper_tail(-x)
    }
}

/// Two-sided p-value `2 P(Z > |z|)`.
pub fn two_sided_p(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    (2.0 * upper_tail(z.abs())).min(1.0)
}

/// Inverse standard normal CDF by bisection on [`normal_cdf`] (a hundred steps reach
/// double precision; it is called once per confidence interval, so speed does not matter).
pub fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || p.is_nan() {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let (mut lo, mut hi) = (-40.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Percentile of `sorted` (ascending, non-empty) at fraction `q` in [0, 1] with linear
/// interpolation between order statistics: numpy's default `percentile` / pandas' `quantile`,
/// which CheXzero's bootstrap CI uses.
/// NaN for an empty slice.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    let q = q.clamp(0.0, 1.0);
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Mean and sample standard deviation (ddof = 1; 0 for a single value). `None` when empty.
pub fn mean_std(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Some((mean, std))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_scipy() {
        // scipy.stats.norm.cdf / sf values (scipy 1.17.1).
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-16);
        assert!((normal_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-15);
        assert!((normal_cdf(-1.0) - 0.158_655_253_931_457_07).abs() < 1e-15);
        let sf5 = 2.866_515_718_791_933e-7; // norm.sf(5)
        assert!((upper_tail(5.0) / sf5 - 1.0).abs() < 1e-12);
        let sf10 = 7.619_853_024_160_47e-24; // norm.sf(10)
        assert!((upper_tail(10.0) / sf10 - 1.0).abs() < 1e-12);
        let sf2_9 = 0.001_865_813_300_384_037_5; // norm.sf(2.9)
        assert!((upper_tail(2.9) / sf2_9 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn quantile_inverts_cdf() {
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
        assert!((normal_quantile(0.5)).abs() < 1e-15);
        assert!(normal_quantile(1.5).is_nan());
    }

    #[test]
    fn percentile_is_numpy_linear() {
        // np.percentile([1,2,3,4], 25) = 1.75
        assert_eq!(percentile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.25), 1.75);
        assert_eq!(percentile_sorted(&[7.0], 0.975), 7.0);
        assert!(percentile_sorted(&[], 0.5).is_nan());
    }

    #[test]
    fn mean_std_sample() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(m, 2.5);
        assert!((s - 1.290_994_448_735_805_6).abs() < 1e-15);
        assert_eq!(mean_std(&[]), None);
    }
}
