//! Evaluation for cxr-cml: CheXzero-style zero-shot scoring from embeddings, per-class ROC AUC
//! exactly as scikit-learn computes it, bootstrap and DeLong confidence intervals, macro AUC
//! over all / base / rare classes, and markdown reports.
//!
//! The crate takes embeddings and scores as `ndarray` arrays; it does not depend on the model
//! or on candle. Undefined AUCs (a class with no positive or no negative in the test set) are
//! `None` and are left out of every average.

mod auc;
mod bootstrap;
mod compare;
mod csv;
mod curves;
mod delong;
mod error;
mod evaluate;
mod folds;
mod plot;
mod report;
pub mod stats;
mod tsne;
mod zero_shot;

pub use auc::{average_precision, best_f1_threshold, f1_at_threshold, roc_auc, F1Point};
pub use bootstrap::{bootstrap_auc_ci, BootstrapCi, BootstrapConfig};
pub use compare::{
    compare_methods, compare_methods_with_draws, ClassTest, Comparisons, MethodStats,
    PairComparison, TestSet,
};
pub use csv::{
    format_matrix_csv, parse_csv_header, parse_matrix_csv, parse_matrix_csv_columns, select_columns,
};
pub use curves::{plot_training_curves, TrainingCurves};
pub use delong::{delong, delong_per_class, delong_test, DeLong, DeLongTest};
pub use error::{EvalError, Result};
pub use evaluate::{
    evaluate, evaluate_grouped, ClassGroup, ClassResult, EvalOptions, EvalResults, Interval, Macros,
};
pub use folds::{
    aggregate_folds, render_fold_class_table, render_fold_table, ClassSummary, FoldSummary, MeanStd,
};
pub use plot::{
    palette_color, plot_auc_by_frequency, plot_roc, plot_scatter, rarest_positive_class, roc_curve,
};
pub use report::{render_class_table, render_markdown_table};
pub use tsne::{tsne, TsneConfig};
pub use zero_shot::{
    average_prompt_embeddings, l2_normalize_rows, mean_rows, zero_shot_cosine,
    zero_shot_probabilities,
};
