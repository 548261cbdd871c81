//! What the forward kernels (CPU in `cpu.rs` via `ops.rs`, CUDA in `cuda.rs`) share: which
//! one-input op to run, and the row length of a layout.

use candle_core::Layout;

/// The row-wise and element-wise ops of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Softmax,
    LogSoftmax,
    QuickGelu,
    GeluErf,
}

impl Kind {
    /// Whether the backward reads the op's result (softmax, log-softmax) rather than its input.
    pub(crate) fn bwd_from_result(self) -> bool {
        matches!(self, Kind::Softmax | Kind::LogSoftmax)
    }
}

/// Size of the last dimension (1 for a scalar).
pub(crate) fn last_dim(l: &Layout) -> usize {
    l.dims().last().copied().unwrap_or(1)
}
