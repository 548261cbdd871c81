//! Input checks shared by every entry point: non-empty, finite, standard layout.

use ndarray::{ArrayView2, CowArray, Ix2};

use crate::error::{MixtureError, Result};

/// Check `x` and return it in standard (row-major, contiguous) layout, borrowing when it
/// already is. NaN or infinity is an error naming the first offending cell.
pub(crate) fn check_data<'a>(x: ArrayView2<'a, f64>) -> Result<CowArray<'a, f64, Ix2>> {
    let (n, d) = x.dim();
    if n == 0 || d == 0 {
        return Err(MixtureError::EmptyInput {
            n_samples: n,
            n_features: d,
        });
    }
    if let Some(((row, col), _)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(MixtureError::NonFinite { row, col });
    }
    if x.is_standard_layout() {
        Ok(CowArray::from(x))
    } else {
        Ok(CowArray::from(x.as_standard_layout().into_owned()))
    }
}

/// As [`check_data`], also requiring the model's feature count.
pub(crate) fn check_data_dim<'a>(
    x: ArrayView2<'a, f64>,
    expected: usize,
) -> Result<CowArray<'a, f64, Ix2>> {
    if x.ncols() != expected {
        return Err(MixtureError::DimensionMismatch {
            expected,
            got: x.ncols(),
        });
    }
    check_data(x)
}
