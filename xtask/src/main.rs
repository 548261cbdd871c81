//! `cargo xtask`: the cxr-cml orchestrator. Each subcommand lives in its own module and only
//! turns flags into library calls.

use clap::{Parser, Subcommand};

mod train;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Train and evaluate CXR-CML and the CheXzero-style baseline", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train and evaluate (default: the demo preset on synthetic data, all three methods).
    Train(train::Args),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Train(args) => train::run(args),
    }
}
