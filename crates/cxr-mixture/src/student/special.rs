//! Special functions for the Student-t density and its degrees-of-freedom update:
//! `ln Gamma`, digamma and the first two polygammas, to about 1e-14 relative for the
//! arguments EM produces (recurrence up to x >= 10, then asymptotic series).

use std::f64::consts::PI;

const SHIFT: f64 = 10.0;

/// `ln Gamma(x)` for `x > 0`.
pub(crate) fn ln_gamma(x: f64) -> f64 {
    let mut x = x;
    let mut acc = 0.0;
    while x < SHIFT {
        acc -= x.ln();
        x += 1.0;
    }
    let x2 = x * x;
    let series = 1.0 / (12.0 * x) - 1.0 / (360.0 * x * x2) + 1.0 / (1260.0 * x * x2 * x2)
        - 1.0 / (1680.0 * x * x2 * x2 * x2)
        + 1.0 / (1188.0 * x * x2 * x2 * x2 * x2);
    acc + (x - 0.5) * x.ln() - x + 0.5 * (2.0 * PI).ln() + series
}

/// Digamma `psi(x)`; negative non-integers via reflection (Halley steps may visit them).
pub(crate) fn digamma(x: f64) -> f64 {
    if x <= 0.0 {
        if x == x.floor() {
            return f64::NAN;
        }
        return digamma(1.0 - x) - PI / (PI * x).tan();
    }
    let mut x = x;
    let mut acc = 0.0;
    while x < SHIFT {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    let series = r
        * (1.0 / 12.0
            - r * (1.0 / 120.0
                - r * (1.0 / 252.0 - r * (1.0 / 240.0 - r * (1.0 / 132.0 - r * 691.0 / 32760.0)))));
    acc + x.ln() - 0.5 / x - series
}

/// Trigamma `psi_1(x)`.
pub(crate) fn trigamma(x: f64) -> f64 {
    if x <= 0.0 {
        if x == x.floor() {
            return f64::NAN;
        }
        let s = (PI * x).sin();
        return -trigamma(1.0 - x) + PI * PI / (s * s);
    }
    let mut x = x;
    let mut acc = 0.0;
    while x < SHIFT {
        acc += 1.0 / (x * x);
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    // 1/x + 1/(2x^2) + sum B_2k / x^(2k+1)
    let series = (1.0 / x)
        * (1.0
            + 0.5 / x
            + r * (1.0 / 6.0
                - r * (1.0 / 30.0 - r * (1.0 / 42.0 - r * (1.0 / 30.0 - r * 5.0 / 66.0)))));
    acc + series
}

/// Tetragamma `psi_2(x)`.
pub(crate) fn tetragamma(x: f64) -> f64 {
    if x <= 0.0 {
        if x == x.floor() {
            return f64::NAN;
        }
        let s = (PI * x).sin();
        return tetragamma(1.0 - x) - 2.0 * PI.powi(3) * (PI * x).cos() / (s * s * s);
    }
    let mut x = x;
    let mut acc = 0.0;
    while x < SHIFT {
        acc -= 2.0 / (x * x * x);
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    // -1/x^2 - 1/x^3 - sum (2k+1) B_2k / x^(2k+2)
    let series = -r
        * (1.0
            + 1.0 / x
            + r * (0.5 - r * (1.0 / 6.0 - r * (1.0 / 6.0 - r * (3.0 / 10.0 - r * 5.0 / 6.0)))));
    acc + series
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from scipy.special 1.x (gammaln, digamma, polygamma).
    #[test]
    fn matches_scipy_values() {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-13 * b.abs().max(1.0);
        assert!(close(ln_gamma(0.5), 0.572_364_942_924_7));
        assert!(close(ln_gamma(3.0), 2f64.ln()));
        assert!(
            close(ln_gamma(259.0), 1_178.359_314_232_697),
            "{}",
            ln_gamma(259.0)
        );
        assert!(close(digamma(1.0), -0.577_215_664_901_532_9));
        assert!(close(digamma(3.0), 0.922_784_335_098_467_1));
        assert!(close(digamma(-0.5), 0.036_489_973_978_576_52));
        assert!(close(trigamma(1.0), PI * PI / 6.0));
        assert!(close(trigamma(3.0), 0.394_934_066_848_226_4));
        assert!(close(tetragamma(1.0), -2.404_113_806_319_188_5));
        assert!(close(tetragamma(3.0), -0.154_113_806_319_188_56));
    }
}
