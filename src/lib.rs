//! Facade crate: re-exports every cxr-cml library so that the workspace-level integration
//! tests in `tests/` (and downstream users who want everything) need one dependency.
pub use cxr_clip as clip;
pub use cxr_data as data;
pub use cxr_eval as eval;
pub use cxr_losses as losses;
pub use cxr_mixture as mixture;
pub use cxr_ops as ops;
pub use cxr_optim as optim;
pub use cxr_text as text;
pub use cxr_train as train;
