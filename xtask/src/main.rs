//! `cargo xtask`: the cxr-cml orchestrator. Each subcommand lives in its own module and only
//! turns flags into library calls. The benchmarks are example targets of the crates they
//! measure; `cargo xtask bench ...` and `cargo xtask data bench` only launch them through cargo
//! (`bench.rs`; `bench all` runs them and the references in one command).

use std::io::IsTerminal;

use clap::{Parser, Subcommand};

mod ablation;
mod auc;
mod bench;
mod cluster;
mod cv;
mod data;
mod embed;
mod eval;
mod gpu_check;
mod hub;
mod synth;
mod tokenize;
mod train;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Train and evaluate CXR-CML and the CheXzero-style baseline",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train and evaluate (default: the demo preset on synthetic data, all three methods).
    Train(train::Args),
    /// K-fold cross-validation (patient-grouped), one fold or all, and its aggregation.
    Cv(cv::Args),
    /// Evaluate a finished run from a checkpoint (results, CSVs, embeddings, figures).
    Eval(eval::Args),
    /// The paper's ablation grid (nu, Gaussian, batch size) and its table.
    Ablation(ablation::Args),
    /// Write a synthetic dataset: MIMIC-CXR-JPG / CXR-LT, or images for CheXpert / NIH labels.
    Synth(synth::Args),
    /// Dataset tools: summary, image cache, preprocessing, ingest benchmarks.
    Data(data::Args),
    /// Print CLIP BPE token ids as JSON (one array per text).
    Tokenize(tokenize::Args),
    /// Embed images and texts with CLIP weights; writes .npy files.
    Embed(embed::Args),
    /// Prove and time every CUDA path against the CPU (docs/gpu.md); --dry-run: CPU, tiny shapes.
    GpuCheck(gpu_check::Args),
    /// Fit a Gaussian or Student-t mixture to a .npy matrix; writes JSON.
    Cluster(cluster::Args),
    /// ROC AUC with bootstrap CIs for a scores CSV against a labels CSV.
    Auc(auc::Args),
    /// Benchmarks against the Python references on this machine (examples of the measured
    /// crates, built and run by cargo; each takes `--help`).
    #[command(subcommand)]
    Bench(bench::Bench),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            // The pseudo-labeler refits a mixture every step on a small iteration budget, so its
            // "did not converge" / "re-seeded" notes are expected there and would flood the
            // log; `RUST_LOG=info` shows them.
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "info,cxr_mixture::gaussian=error,cxr_mixture::student=error,cxr_mixture::components=error".into()
            }),
        )
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    // Ctrl-C / SIGTERM finish the current step and write a checkpoint (a second one stops at
    // once).
    cxr_train::interrupt::install()?;
    // Training and embedding free megabytes of activations per op; keep them for reuse.
    cxr_clip::memory::retain_freed_memory();
    let result = match Cli::parse().command {
        Command::Train(args) => train::run(args),
        Command::Cv(args) => cv::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Ablation(args) => ablation::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Data(args) => data::run(args),
        Command::Tokenize(args) => tokenize::run(args),
        Command::Embed(args) => embed::run(args),
        Command::GpuCheck(args) => gpu_check::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Auc(args) => auc::run(args),
        Command::Bench(b) => bench::run(b),
    };
    // `train` prints its exact resume command itself; `cv` and `ablation` resume what their
    // output folder holds, so the same command (with the same --out) goes on.
    if let Some(cxr_train::TrainError::Interrupted { signal, .. }) =
        result.as_ref().err().and_then(|e| e.downcast_ref())
    {
        eprintln!(
            "\nInterrupted by {}: the current step finished and a checkpoint was written. \
             Rerun the same command with the same --out to resume.",
            cxr_train::interrupt::name(*signal)
        );
        std::process::exit(cxr_train::interrupt::exit_code(*signal));
    }
    result
}
