//! `cargo xtask bench ...`: benchmarks against the Python references on this machine.
//!
//! `bench auc|clip|optim` launch the example of the crate they measure through cargo (same
//! profile, arguments passed through). `bench all` runs each of issue 16's measurements and its
//! reference one after another in one command, on the same threads, and writes a dated Markdown
//! section (machine, load, commit, a table of ours / reference / ratio) that it prints and
//! appends to `docs/benchmarks.md`:
//! - [`clip_step`]: the ViT-B/32 batch-32 contrastive step (cxr-clip's `bench_clip` example)
//!   against PyTorch / transformers, seconds and peak memory, as training takes its gradients
//!   and in three variants (whole-graph backward, every block recomputed, the lowest blocks
//!   recomputed);
//! - [`embed`]: zero-shot image embedding, `xtask embed` against `CLIPModel.get_image_features`
//!   (`scripts/goldens/cxr-clip/bench_embed_torch.py`), whole processes, images per second;
//! - [`cluster`]: `xtask cluster` against scikit-learn's `GaussianMixture.fit`
//!   (`scripts/goldens/cxr-mixture/bench_cluster.py --sklearn-only`), whole processes.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use clap::Subcommand;
use cxr_clip::{ClipConfig, ClipModel};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum Bench {
    /// AUC + bootstrap vs a scikit-learn loop (cxr-eval's `bench_auc` example).
    #[command(disable_help_flag = true)]
    Auc(ExampleArgs),
    /// CLIP forward + backward vs PyTorch / transformers (cxr-clip's `bench_clip` example).
    #[command(disable_help_flag = true)]
    Clip(ExampleArgs),
    /// Fused AdamW vs candle_nn's AdamW (cxr-optim's `bench_optim` example).
    #[command(disable_help_flag = true)]
    Optim(ExampleArgs),
    /// The CPU speed targets, each against its reference, one after another on the same
    /// machine and threads: the ViT-B/32 training step (time, peak memory) and zero-shot
    /// embedding vs PyTorch / transformers, `xtask cluster` vs scikit-learn. Prints a dated
    /// section and appends it to docs/benchmarks.md.
    All(AllArgs),
}

pub fn run(bench: Bench) -> Result<()> {
    match bench {
        Bench::Auc(a) => run_example("cxr-eval", "bench_auc", a),
        Bench::Clip(a) => run_example("cxr-clip", "bench_clip", a),
        Bench::Optim(a) => run_example("cxr-optim", "bench_optim", a),
        Bench::All(a) => all(a),
    }
}

/// The arguments of a launched example, passed through verbatim (`--help` included).
#[derive(Debug, clap::Args)]
pub struct ExampleArgs {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

/// `cargo run --profile <this binary's profile> -p <package> --example <example> -- <args>`,
/// with the cargo that runs xtask (`$CARGO`) when there is one. Exits with the example's status.
pub fn run_example(package: &str, example: &str, a: ExampleArgs) -> Result<()> {
    let cargo = cargo();
    let status = Command::new(&cargo)
        .args(["run", "--profile", build_profile()?.as_str()])
        .args(["--package", package, "--example", example, "--"])
        .args(&a.args)
        .status()
        .with_context(|| format!("running {}", cargo.to_string_lossy()))?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The cargo profile this binary was built with: the name of the folder it sits in under the
/// target directory (`debug` is the `dev` profile's), so that `cargo run --release -p xtask`
/// benchmarks a release build.
fn build_profile() -> Result<String> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let dir = exe
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|d| d.to_str())
        .with_context(|| format!("no profile folder above {}", exe.display()))?;
    Ok(if dir == "debug" { "dev" } else { dir }.to_string())
}

/// `cargo xtask bench all`: every measurement against its reference, in one run.
#[derive(Debug, clap::Args)]
pub struct AllArgs {
    /// Write the section (Markdown) to this file. With --out, nothing is appended to
    /// docs/benchmarks.md unless --append is given too.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Append the section to this Markdown file [default: the workspace's docs/benchmarks.md
    /// for a full run without --out; a --quick run or one with --out appends only when given].
    #[arg(long, value_name = "FILE")]
    append: Option<PathBuf>,
    /// Also write every figure (and the references' own JSON) here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Python with torch, transformers, torchvision, Pillow and scikit-learn
    /// (scripts/goldens/requirements.txt).
    #[arg(long, env = "CXR_PYTHON", default_value = "python3")]
    python: PathBuf,
    /// Threads for both sides of every benchmark [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Timed iterations of the training step (after one warm-up; medians are reported)
    /// [default: 3, 1 with --quick].
    #[arg(long)]
    iters: Option<usize>,
    /// Tiny shapes (tiny CLIP at 64 px, batch 4; 16 images; 2,000 points, K = 4) to check the
    /// command end to end in seconds; the figures mean nothing.
    #[arg(long)]
    quick: bool,
    /// Skip the Python references (their cells and the ratios read "—").
    #[arg(long)]
    no_reference: bool,
    /// The training step's selective-checkpointing variant recomputes the embedding stage and
    /// this many of each tower's lowest blocks (`loop.checkpoint_activations = N`). At 2 of
    /// ViT-B/32's 12 a tower, batch 32 fits below PyTorch's peak memory.
    #[arg(long, value_name = "N", default_value_t = 2)]
    recompute_layers: usize,
    /// Run only these benchmarks (repeatable) [default: all three].
    #[arg(long, value_enum, value_name = "BENCH")]
    only: Vec<Which>,
}

/// The benchmarks of `bench all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Which {
    /// The contrastive training step (seconds, peak memory), and its variants.
    Step,
    /// Zero-shot image embedding (images per second).
    Embed,
    /// `xtask cluster` against scikit-learn.
    Cluster,
}

/// The shapes of a run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    quick: bool,
    clip_preset: &'static str,
    clip_image_size: usize,
    clip_batch: usize,
    iters: usize,
    embed_images: usize,
    embed_batch: usize,
    cluster_n: usize,
    cluster_d: usize,
    cluster_k: usize,
    cluster_iters: usize,
}

impl Sizes {
    fn new(quick: bool, iters: Option<usize>) -> Self {
        if quick {
            Sizes {
                quick,
                clip_preset: "tiny",
                clip_image_size: 64,
                clip_batch: 4,
                iters: iters.unwrap_or(1),
                embed_images: 16,
                embed_batch: 8,
                cluster_n: 2_000,
                cluster_d: 512,
                cluster_k: 4,
                cluster_iters: 20,
            }
        } else {
            Sizes {
                quick,
                clip_preset: "vit-b32",
                clip_image_size: 224,
                clip_batch: 32,
                iters: iters.unwrap_or(3),
                embed_images: 128,
                embed_batch: 16,
                cluster_n: 50_000,
                cluster_d: 512,
                cluster_k: 40,
                cluster_iters: 20,
            }
        }
    }

    fn clip_config(&self) -> ClipConfig {
        if self.quick {
            ClipConfig::tiny(self.clip_image_size)
        } else {
            ClipConfig::vit_b_32()
        }
    }

    fn model_name(&self) -> String {
        if self.quick {
            format!("tiny CLIP {} px", self.clip_image_size)
        } else {
            "ViT-B/32".into()
        }
    }
}

/// One line of the table. `higher_is_better`: images/s (ratio ours / reference); otherwise
/// seconds or bytes (ratio reference / ours). Either way a ratio >= 1 means ours is at least
/// as good.
#[derive(Debug)]
struct Row {
    what: String,
    unit: &'static str,
    ours: Option<f64>,
    reference: Option<f64>,
    higher_is_better: bool,
}

impl Row {
    fn new(what: impl Into<String>, unit: &'static str, ours: Option<f64>) -> Self {
        Row {
            what: what.into(),
            unit,
            ours,
            reference: None,
            higher_is_better: false,
        }
    }
    fn reference(mut self, r: Option<f64>) -> Self {
        self.reference = r;
        self
    }
    fn higher_is_better(mut self) -> Self {
        self.higher_is_better = true;
        self
    }
    fn ratio(&self) -> Option<f64> {
        let (o, r) = (self.ours?, self.reference?);
        let x = if self.higher_is_better { o / r } else { r / o };
        x.is_finite().then_some(x)
    }
    fn cell(&self, v: Option<f64>) -> String {
        match v {
            None => "—".into(),
            Some(v) if self.unit == "GiB" => three_figures(v / (1u64 << 30) as f64),
            Some(v) => three_figures(v),
        }
    }
    fn markdown(&self) -> String {
        let ratio = self.ratio().map_or("—".into(), |r| format!("{r:.2}x"));
        format!(
            "| {} | {} | {} | {} | {ratio} |",
            self.what,
            self.unit,
            self.cell(self.ours),
            self.cell(self.reference)
        )
    }
}

/// `v` with at least three significant figures (two decimals from 1 up, more below: a
/// --quick run's milliseconds must not print as 0.00).
fn three_figures(v: f64) -> String {
    let decimals = if v > 0.0 && v < 1.0 {
        (2 - v.log10().floor() as i32).clamp(2, 6) as usize
    } else {
        2
    };
    format!("{v:.decimals$}")
}

/// What every benchmark needs: the sizes, threads, the Python, scratch space, progress.
struct Ctx {
    sizes: Sizes,
    threads: usize,
    python: Option<PathBuf>,
    root: PathBuf,
    tmp: PathBuf,
    bar: ProgressBar,
}

impl Ctx {
    /// A command for one of our processes (rayon, hence candle, gemm and the mixture, on
    /// `threads`).
    fn ours(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("RAYON_NUM_THREADS", self.threads.to_string());
        c
    }

    /// A command running a reference script (OpenMP / BLAS pools on `threads` too).
    fn python(&self, script: &str) -> Option<Command> {
        let py = self.python.as_ref()?;
        let mut c = Command::new(py);
        c.arg(self.root.join(script));
        for var in ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"] {
            c.env(var, self.threads.to_string());
        }
        Some(c)
    }

    fn step(&self, msg: &str) {
        self.bar.set_message(msg.to_string());
    }

    fn done(&self, msg: String) {
        self.bar.inc(1);
        self.bar.println(msg);
    }
}

/// Runs `cmd` to completion with its output captured; its wall time. A failure is an error
/// quoting the end of its stderr.
fn timed(mut cmd: Command, what: &str) -> Result<(Output, Duration)> {
    let start = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{what}: starting {:?}", cmd.get_program()))?;
    let wall = start.elapsed();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "{what} failed ({}): {:?} {:?}\n{}",
            out.status,
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            tail.join("\n")
        );
    }
    Ok((out, wall))
}

/// The last line of a process's stdout, as JSON (the references print one JSON line).
fn last_json_line(out: &Output, what: &str) -> Result<Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.trim().lines().last().unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("{what} printed no JSON line: {text}"))
}

fn all(args: AllArgs) -> Result<()> {
    let threads = match args.threads {
        Some(0) => bail!("--threads 0: give at least 1 (default: all cores)"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if args.iters == Some(0) {
        bail!("--iters 0: give at least 1 timed iteration (default 3)");
    }
    let sizes = Sizes::new(args.quick, args.iters);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask's manifest folder has no parent (the workspace root)")?
        .to_path_buf();
    let append = match (&args.append, &args.out) {
        (Some(p), _) => Some(p.clone()),
        (None, None) if !args.quick => Some(root.join("docs/benchmarks.md")),
        _ => None,
    };
    let python = if args.no_reference {
        None
    } else {
        check_python(&args.python)?;
        Some(args.python.clone())
    };
    let wanted = |w: Which| args.only.is_empty() || args.only.contains(&w);
    let bench_clip = if wanted(Which::Step) {
        Some(build_example("cxr-clip", "bench_clip")?)
    } else {
        None
    };

    let tmp = tempfile::Builder::new()
        .prefix("cxr-bench-all-")
        .tempdir()
        .with_context(|| {
            format!(
                "creating a scratch folder under {} (set TMPDIR to a writable folder)",
                std::env::temp_dir().display()
            )
        })?;
    let load_before = load_average();
    let started = crate::train::utc_stamp();
    // Training step (PyTorch in the same child) and with checkpointing; inputs, embedding and
    // its reference; cluster and its reference.
    let refs = usize::from(python.is_some());
    let n_steps = usize::from(wanted(Which::Step)) * 2
        + usize::from(wanted(Which::Embed)) * (2 + refs)
        + usize::from(wanted(Which::Cluster)) * (1 + refs);
    let bar = ProgressBar::new(n_steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    let ctx = Ctx {
        sizes,
        threads,
        python,
        root,
        tmp: tmp.path().to_path_buf(),
        bar,
    };
    let mut details = Vec::new();
    let mut rows = Vec::new();
    let mut raw = serde_json::Map::new();
    let results = (|| -> Result<()> {
        let mut add = |key: &str, (r, d, j): Measured| {
            rows.extend(r);
            details.extend(d);
            raw.insert(key.into(), j);
        };
        if let Some(exe) = &bench_clip {
            add("clip_step", clip_step(&ctx, exe, args.recompute_layers)?);
        }
        if wanted(Which::Embed) {
            add("embed", embed(&ctx)?);
        }
        if wanted(Which::Cluster) {
            add("cluster", cluster(&ctx)?);
        }
        Ok(())
    })();
    ctx.bar.finish_and_clear();
    results?;
    let load_after = load_average();

    let mut command = "cargo xtask bench all".to_string();
    if args.quick {
        command += " --quick";
    }
    if args.no_reference {
        command += " --no-reference";
    }
    if let Some(n) = args.iters {
        command += &format!(" --iters {n}");
    }
    for w in &args.only {
        command += &format!(" --only {}", format!("{w:?}").to_lowercase());
    }
    let section = section(
        &ctx,
        &command,
        &started,
        &load_before,
        &load_after,
        &rows,
        &details,
    );
    println!("{section}");
    if let Some(path) = &args.out {
        std::fs::write(path, &section)
            .with_context(|| format!("writing --out {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &append {
        append_section(path, &section)?;
        eprintln!("appended the section to {}", path.display());
    }
    if let Some(path) = &args.json {
        let v = json!({
            "started": started, "quick": args.quick, "threads": threads,
            "load_before": load_before, "load_after": load_after,
            "rows": rows.iter().map(|r| json!({
                "what": r.what, "unit": r.unit, "ours": r.ours, "reference": r.reference,
                "ratio": r.ratio(),
            })).collect::<Vec<_>>(),
            "raw": raw,
        });
        std::fs::write(path, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("writing --json {}", path.display()))?;
    }
    Ok(())
}

/// Fails early, before any long work, when the Python cannot import what the references need.
fn check_python(python: &Path) -> Result<()> {
    let out = Command::new(python)
        .args([
            "-c",
            "import numpy, sklearn, torch, torchvision, transformers, PIL",
        ])
        .stdin(Stdio::null())
        .output();
    match out {
        Err(e) => bail!(
            "--python {}: cannot run it ({e}); pass --python PY (or set CXR_PYTHON) to a Python \
             with scripts/goldens/requirements.txt installed, or --no-reference to skip the references",
            python.display()
        ),
        Ok(o) if !o.status.success() => bail!(
            "--python {}: cannot import the references' packages:\n{}\ninstall \
             scripts/goldens/requirements.txt into it, pass another --python (or CXR_PYTHON), \
             or --no-reference to skip the references",
            python.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Ok(_) => Ok(()),
    }
}

/// Builds a crate's example in this binary's profile; the executable's path (from cargo's
/// JSON messages, so any target directory works).
fn build_example(package: &str, example: &str) -> Result<PathBuf> {
    let cargo = cargo();
    eprintln!("building {package}'s example {example} ...");
    let out = Command::new(&cargo)
        .args(["build", "--profile", build_profile()?.as_str()])
        // xtask selected too: the crate is then built with the features xtask gives it (cxr-clip's
        // `hub-download`), so the example links the library already built for this binary
        // instead of compiling it again with its own feature set.
        .args([
            "--package",
            "xtask",
            "--package",
            package,
            "--example",
            example,
        ])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", cargo.to_string_lossy()))?;
    if !out.status.success() {
        bail!(
            "building {package}'s example {example} failed ({})",
            out.status
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == example)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo built no executable for the example {example}"))
}

type Measured = (Vec<Row>, Vec<String>, Value);

fn gib(bytes: Option<f64>) -> String {
    bytes.map_or("?".into(), |b| {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    })
}

/// Benchmark 1, the contrastive training step, forward + backward: `bench_clip` as training
/// runs it (`loop.checkpoint_activations = false`; PyTorch in its own child process after
/// ours, unless `--no-reference`), then three variants without the reference, each compared
/// with the same PyTorch run: one `backward()` of the whole graph, every block recomputed, and
/// the lowest `recompute_layers` blocks of each tower recomputed.
fn clip_step(ctx: &Ctx, bench_clip: &Path, recompute_layers: usize) -> Result<Measured> {
    let s = ctx.sizes;
    let name = s.model_name();
    let run = |tag: &str, flags: &[String], reference: bool| -> Result<Value> {
        let json_path = ctx.tmp.join(format!("bench_clip_{tag}.json"));
        let mut cmd = ctx.ours(bench_clip);
        cmd.args(["--preset", s.clip_preset])
            .args(["--image-size", &s.clip_image_size.to_string()])
            .args(["--batch", &s.clip_batch.to_string()])
            .args(["--iters", &s.iters.to_string()])
            .args(["--threads", &ctx.threads.to_string()])
            .args(flags)
            .arg("--json")
            .arg(&json_path);
        match (&ctx.python, reference) {
            (Some(py), true) => {
                cmd.arg("--python").arg(py);
                for var in ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"] {
                    cmd.env(var, ctx.threads.to_string());
                }
            }
            _ => {
                cmd.arg("--no-torch");
            }
        }
        timed(cmd, "the training-step benchmark (bench_clip)")?;
        let text = std::fs::read_to_string(&json_path)
            .with_context(|| format!("bench_clip wrote no {}", json_path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", json_path.display()))
    };
    ctx.step(&format!(
        "{name} training step, ours{}",
        if ctx.python.is_some() {
            " then PyTorch"
        } else {
            ""
        }
    ));
    let plain = run("plain", &[], true)?;
    let c = &plain["candle"];
    let t = &plain["torch"];
    let (ours_total, ref_total) = (c["total_s"].as_f64(), t["total_s"].as_f64());
    let (ours_mem, ref_mem) = (c["peak_rss_bytes"].as_f64(), t["peak_rss_bytes"].as_f64());
    ctx.done(format!(
        "training step: ours {:.2} s, {}; reference {}",
        ours_total.unwrap_or(f64::NAN),
        gib(ours_mem),
        ref_total.map_or("skipped".into(), |r| format!("{r:.2} s, {}", gib(ref_mem)))
    ));
    let what = format!(
        "{name} batch-{} contrastive training step, forward + backward (median of {})",
        s.clip_batch, s.iters
    );
    let mut rows = vec![
        Row::new(what, "s", ours_total).reference(ref_total),
        Row::new("— forward", "s", c["forward_s"].as_f64()).reference(t["forward_s"].as_f64()),
        Row::new("— backward", "s", c["backward_s"].as_f64()).reference(t["backward_s"].as_f64()),
        Row::new("— peak resident memory of the process", "GiB", ours_mem).reference(ref_mem),
    ];
    let details = vec![format!(
        "Training step: cxr-clip's `bench_clip` example (random weights, f32, symmetric InfoNCE, \
         no optimiser) against `scripts/goldens/cxr-clip/bench_clip_torch.py` ({}); peak memory \
         is each process's own `VmHWM`, ours read before the PyTorch child starts. Ours takes \
         the gradients as training does with `loop.checkpoint_activations = false`: the loss's \
         gradient with respect to the embeddings, then each tower's backward pass block by \
         block, each block's activations freed once passed. The variants change only our side: \
         one `backward()` of the whole graph (`--whole-graph`), every block recomputed \
         (`loop.checkpoint_activations = true`), and the embedding stage and lowest \
         {recompute_layers} blocks of each tower recomputed (`= {recompute_layers}`); PyTorch \
         recomputes nothing.",
        match (t["torch"].as_str(), t["transformers"].as_str()) {
            (Some(a), Some(b)) => format!(
                "torch {a}, transformers {b}, {} attention",
                t["attn"].as_str().unwrap_or("default")
            ),
            _ => "skipped".into(),
        }
    )];
    let mut raw = json!({ "plain": plain });
    let variants = [
        (
            "whole_graph",
            vec!["--whole-graph".to_string()],
            "one backward() of the whole graph".to_string(),
        ),
        (
            "checkpoint_activations",
            vec!["--checkpoint-activations".to_string()],
            "every block recomputed".to_string(),
        ),
        (
            "recompute_layers",
            vec![
                "--recompute-layers".to_string(),
                recompute_layers.to_string(),
            ],
            format!("lowest {recompute_layers} blocks a tower recomputed"),
        ),
    ];
    for (tag, flags, label) in variants {
        ctx.step(&format!("{name} training step, {label}, ours"));
        let v = run(tag, &flags, false)?;
        let c = &v["candle"];
        let (total, mem) = (c["total_s"].as_f64(), c["peak_rss_bytes"].as_f64());
        ctx.done(format!(
            "training step, {label}: ours {:.2} s, {}",
            total.unwrap_or(f64::NAN),
            gib(mem)
        ));
        rows.push(
            Row::new(
                format!("— {label} (ours; PyTorch as above), forward + backward"),
                "s",
                total,
            )
            .reference(ref_total),
        );
        rows.push(
            Row::new(
                format!("— {label} (ours; PyTorch as above), peak memory"),
                "GiB",
                mem,
            )
            .reference(ref_mem),
        );
        raw[tag] = v;
    }
    Ok((rows, details, raw))
}

/// Benchmark 2, zero-shot image embedding: one random-weight CLIP written as a Hugging Face
/// folder, and gray JPEGs; `xtask embed --weights DIR --images ...` against
/// `bench_embed_torch.py` on the same folder and files, each timed as a whole process (start,
/// weights, decode, preprocess, forward, `.npy` written).
fn embed(ctx: &Ctx) -> Result<Measured> {
    let s = ctx.sizes;
    let name = s.model_name();
    ctx.step(&format!(
        "writing {name} weights and {} images",
        s.embed_images
    ));
    let cfg = s.clip_config();
    let weights = ctx.tmp.join("clip-weights");
    write_random_weights(&cfg, &weights)?;
    let images = write_images(&ctx.tmp.join("images"), s.embed_images)?;
    ctx.done(format!(
        "wrote {name} weights and {} images (384 x 320 gray JPEGs)",
        s.embed_images
    ));

    ctx.step(&format!(
        "zero-shot embedding of {} images, ours",
        s.embed_images
    ));
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let mut cmd = ctx.ours(&exe);
    cmd.arg("embed")
        .arg("--weights")
        .arg(&weights)
        .args(["--batch-size", &s.embed_batch.to_string()])
        .arg("--out")
        .arg(ctx.tmp.join("embed-ours"))
        .arg("--images")
        .args(&images);
    let (_, wall) = timed(cmd, "xtask embed")?;
    let n = s.embed_images as f64;
    let ours = n / wall.as_secs_f64();
    check_embeddings(&ctx.tmp.join("embed-ours/image_embeds.npy"), s.embed_images)?;
    ctx.done(format!(
        "zero-shot embedding: ours {:.2} s for {} images",
        wall.as_secs_f64(),
        s.embed_images
    ));

    let mut reference = None;
    let mut raw = json!({ "ours_wall_s": wall.as_secs_f64(), "images": s.embed_images });
    let mut details = Vec::new();
    if let Some(mut cmd) = ctx.python("scripts/goldens/cxr-clip/bench_embed_torch.py") {
        ctx.step(&format!(
            "zero-shot embedding of {} images, transformers",
            s.embed_images
        ));
        cmd.arg("--weights")
            .arg(&weights)
            .arg("--out")
            .arg(ctx.tmp.join("embed-torch"))
            .args(["--threads", &ctx.threads.to_string()])
            .args(["--batch-size", &s.embed_batch.to_string()])
            .args(&images);
        let (out, rwall) = timed(cmd, "the embedding reference (bench_embed_torch.py)")?;
        let j = last_json_line(&out, "bench_embed_torch.py")?;
        check_embeddings(
            &ctx.tmp.join("embed-torch/image_embeds.npy"),
            s.embed_images,
        )?;
        reference = Some(n / rwall.as_secs_f64());
        details.push(format!(
            "Zero-shot embedding: `xtask embed` against \
             `scripts/goldens/cxr-clip/bench_embed_torch.py` (`CLIPModel.get_image_features` \
             under `torch.inference_mode()`, torch {}, transformers {}), the same random \
             weights folder and images, CheXzero preprocessing to {} px, batches of {}; whole \
             processes. The reference's own phases: import {:.2} s, load {:.2} s, \
             decode + preprocess + embed {:.2} s.",
            j["torch"].as_str().unwrap_or("?"),
            j["transformers"].as_str().unwrap_or("?"),
            cfg.vision_config.image_size,
            s.embed_batch,
            j["import_s"].as_f64().unwrap_or(f64::NAN),
            j["load_s"].as_f64().unwrap_or(f64::NAN),
            j["embed_s"].as_f64().unwrap_or(f64::NAN),
        ));
        raw["reference"] = j;
        raw["reference_wall_s"] = json!(rwall.as_secs_f64());
        ctx.done(format!(
            "zero-shot embedding: transformers {:.2} s",
            rwall.as_secs_f64()
        ));
    }
    let row = Row::new(
        format!(
            "zero-shot image embedding, {name}, {} images, whole process",
            s.embed_images
        ),
        "images/s",
        Some(ours),
    )
    .reference(reference)
    .higher_is_better();
    Ok((vec![row], details, raw))
}

/// A seeded random CLIP as a Hugging Face folder (config.json + model.safetensors), which
/// `xtask embed` and transformers' `from_pretrained` both read.
fn write_random_weights(cfg: &ClipConfig, dir: &Path) -> Result<()> {
    let varmap = candle_nn::VarMap::new();
    let vb = cxr_train::init::SeededVarMap::builder(&varmap, 0, DType::F32, &Device::Cpu);
    ClipModel::new(vb, cfg).context("building the random CLIP for the embedding benchmark")?;
    cxr_clip::save_pretrained(&varmap, cfg, dir)
        .with_context(|| format!("writing random CLIP weights to {}", dir.display()))?;
    Ok(())
}

/// `n` 384 x 320 gray JPEGs (smooth gradients, a bright ellipse and noise: chest-film-like
/// statistics are irrelevant to speed, but flat images would decode unrealistically fast).
fn write_images(dir: &Path, n: usize) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (w, h) = (384u32, 320u32);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let noise = Normal::new(0.0f32, 12.0).context("noise distribution")?;
    let mut paths = Vec::with_capacity(n);
    for i in 0..n {
        let (cx, cy) = (
            rng.gen_range(0.3f32..0.7) * w as f32,
            rng.gen_range(0.3f32..0.7) * h as f32,
        );
        let mut px = Vec::with_capacity((w * h) as usize);
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = ((x as f32 - cx) / 90.0, (y as f32 - cy) / 120.0);
                let v = 60.0 + 0.2 * y as f32 + 120.0 * (-(dx * dx + dy * dy)).exp();
                px.push((v + noise.sample(&mut rng)).clamp(0.0, 255.0) as u8);
            }
        }
        let bytes = cxr_data::image::encode_jpeg_gray(&px, w, h, 90)?;
        let path = dir.join(format!("img-{i:04}.jpg"));
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// The embeddings a side wrote: `n` rows of unit norm (a side that skipped work would fail).
fn check_embeddings(path: &Path, n: usize) -> Result<()> {
    let (shape, data) = cxr_data::npy::read_f32(path)?;
    let (rows, cols) = (
        shape.first().copied().unwrap_or(0),
        shape.get(1).copied().unwrap_or(0),
    );
    if rows != n || cols == 0 {
        bail!(
            "{} holds {rows} x {cols} embeddings, expected {n} rows",
            path.display()
        );
    }
    for r in data.chunks(cols) {
        let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt();
        if (norm - 1.0).abs() > 1e-3 {
            bail!("{}: an embedding of norm {norm}, not 1", path.display());
        }
    }
    Ok(())
}

/// Benchmark 3, the mixture command: N x D points drawn as `bench_cluster.py`'s `embeddings`
/// draws them (unit centres, noise of scale 3 * 0.7 / sqrt(D), rows L2-normalised; seeded
/// ChaCha here, so not its numbers), written once as float32 `.npy`; the command
/// `xtask cluster --model gmm --cov diag --n-init 1 --tol 0` and `bench_cluster.py
/// --sklearn-only` (`GaussianMixture(K, "diag", max_iter, tol=0).fit`), each timed as a whole
/// process on that file.
fn cluster(ctx: &Ctx) -> Result<Measured> {
    let s = ctx.sizes;
    let (n, d, k, iters) = (s.cluster_n, s.cluster_d, s.cluster_k, s.cluster_iters);
    ctx.step(&format!("xtask cluster on {n} x {d}, K = {k}, ours"));
    let x = ctx.tmp.join("cluster-x.npy");
    cxr_data::npy::write_f32(&x, &[n, d], &cluster_data(n, d, k, 0))?;
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let mut cmd = ctx.ours(&exe);
    cmd.arg("cluster")
        .arg("--input")
        .arg(&x)
        .args(["--k", &k.to_string(), "--model", "gmm", "--cov", "diag"])
        .args([
            "--n-init",
            "1",
            "--max-iter",
            &iters.to_string(),
            "--tol",
            "0",
        ])
        .arg("--out")
        .arg(ctx.tmp.join("cluster-out.json"));
    let (_, wall) = timed(cmd, "xtask cluster")?;
    let fit: Value = serde_json::from_str(
        &std::fs::read_to_string(ctx.tmp.join("cluster-out.json"))
            .context("xtask cluster wrote no --out")?,
    )
    .context("parsing xtask cluster's JSON")?;
    ctx.done(format!("xtask cluster: ours {:.2} s", wall.as_secs_f64()));
    let mut raw = json!({ "ours_wall_s": wall.as_secs_f64(), "n": n, "d": d, "k": k,
        "max_iter": iters, "ours_n_iter": fit.get("n_iter").cloned().unwrap_or(Value::Null) });
    let mut reference = None;
    let mut details = Vec::new();
    if let Some(mut cmd) = ctx.python("scripts/goldens/cxr-mixture/bench_cluster.py") {
        ctx.step(&format!(
            "GaussianMixture.fit on {n} x {d}, K = {k}, scikit-learn"
        ));
        cmd.arg("--sklearn-only").arg(&x).args([
            "--k",
            &k.to_string(),
            "--max-iter",
            &iters.to_string(),
        ]);
        let (out, rwall) = timed(
            cmd,
            "the mixture reference (bench_cluster.py --sklearn-only)",
        )?;
        let j = last_json_line(&out, "bench_cluster.py --sklearn-only")?;
        reference = Some(rwall.as_secs_f64());
        details.push(format!(
            "Mixture: whole `xtask cluster` process against a whole Python process running \
             scikit-learn {} `GaussianMixture({k}, covariance_type=\"diag\", max_iter={iters}, \
             tol=0).fit(X)` (`bench_cluster.py --sklearn-only`), both with their default k-means \
             initialisation on the same float32 `.npy`; the fit alone took {:.2} s \
             ({:.2} CPU s) of the reference's {:.2} s.",
            j["sklearn"].as_str().unwrap_or("?"),
            j["fit_s"].as_f64().unwrap_or(f64::NAN),
            j["fit_cpu_s"].as_f64().unwrap_or(f64::NAN),
            rwall.as_secs_f64(),
        ));
        raw["reference"] = j;
        raw["reference_wall_s"] = json!(rwall.as_secs_f64());
        ctx.done(format!("scikit-learn: {:.2} s", rwall.as_secs_f64()));
    }
    let row = Row::new(
        format!(
            "`xtask cluster` diag GMM, N = {n}, D = {d}, K = {k}, {iters} iterations, whole process"
        ),
        "s",
        Some(wall.as_secs_f64()),
    )
    .reference(reference);
    Ok((vec![row], details, raw))
}

/// `bench_cluster.py`'s `embeddings(n, d, k)` recipe with a seeded ChaCha stream.
fn cluster_data(n: usize, d: usize, k: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let std = Normal::new(0.0f64, 1.0).expect("unit normal");
    let mut centres: Vec<f64> = (0..k * d).map(|_| std.sample(&mut rng)).collect();
    for c in centres.chunks_mut(d) {
        let norm = c.iter().map(|v| v * v).sum::<f64>().sqrt();
        c.iter_mut().for_each(|v| *v /= norm);
    }
    let scale = 3.0 * 0.7 / (d as f64).sqrt();
    let mut out = Vec::with_capacity(n * d);
    let mut row = vec![0.0f64; d];
    for _ in 0..n {
        let c = rng.gen_range(0..k);
        for (j, v) in row.iter_mut().enumerate() {
            *v = centres[c * d + j] + scale * std.sample(&mut rng);
        }
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        out.extend(row.iter().map(|v| (v / norm) as f32));
    }
    out
}

/// `/proc/loadavg`'s 1, 5 and 15 minute figures, or "unknown".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The CPU's model name from /proc/cpuinfo.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// `git rev-parse --short HEAD`, with a note when tracked files differ from it.
fn git_commit(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        None => "unknown (not a git checkout)".into(),
        Some(head) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if !s.is_empty() => format!("`{head}` with uncommitted changes"),
            _ => format!("`{head}`"),
        },
    }
}

/// The dated Markdown section.
fn section(
    ctx: &Ctx,
    command: &str,
    started: &str,
    load_before: &str,
    load_after: &str,
    rows: &[Row],
    details: &[String],
) -> String {
    let when = format!(
        "{}-{}-{} {}:{} UTC",
        &started[0..4],
        &started[4..6],
        &started[6..8],
        &started[9..11],
        &started[11..13]
    );
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut s = String::new();
    let _ = writeln!(s, "## Run of {when}\n");
    let _ = writeln!(
        s,
        "`{command}` (profile `{}`).\n",
        build_profile().unwrap_or_else(|_| "?".into())
    );
    let _ = writeln!(
        s,
        "- Machine: {}, {cores} cores available, {} threads on both sides",
        cpu_model(),
        ctx.threads
    );
    let _ = writeln!(
        s,
        "- Load average (1, 5, 15 min): {load_before} before, {load_after} after"
    );
    let _ = writeln!(s, "- Commit: {}", git_commit(&ctx.root));
    if ctx.sizes.quick {
        let _ = writeln!(
            s,
            "- **--quick**: tiny shapes that check the command; the figures mean nothing"
        );
    }
    let _ = writeln!(
        s,
        "- Ratio: reference time / ours (or memory; images/s: ours / reference), so >= 1.00x \
         means ours is as fast or as small\n"
    );
    let _ = writeln!(s, "| measurement | unit | ours | reference | ratio |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(s, "{}", r.markdown());
    }
    if !details.is_empty() {
        s.push('\n');
        for d in details {
            let _ = writeln!(s, "- {d}");
        }
    }
    s
}

/// Appends `section` after a blank line (the file is created when missing).
fn append_section(path: &Path, section: &str) -> Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let sep = if existing.is_empty() || existing.ends_with("\n\n") {
        ""
    } else if existing.ends_with('\n') {
        "\n"
    } else {
        "\n\n"
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening --append {}", path.display()))?;
    f.write_all(format!("{sep}{section}").as_bytes())
        .with_context(|| format!("appending to {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_read_as_ours_versus_reference() {
        let slower = Row::new("t", "s", Some(2.0)).reference(Some(1.0));
        assert_eq!(slower.ratio(), Some(0.5));
        let faster = Row::new("ips", "images/s", Some(30.0))
            .reference(Some(20.0))
            .higher_is_better();
        assert_eq!(faster.ratio(), Some(1.5));
        let missing = Row::new("t", "s", Some(2.0));
        assert_eq!(missing.ratio(), None);
        assert_eq!(missing.markdown(), "| t | s | 2.00 | — | — |");
        let mem = Row::new("m", "GiB", Some(2.0 * (1u64 << 30) as f64))
            .reference(Some(3.0 * (1u64 << 30) as f64));
        assert_eq!(mem.markdown(), "| m | GiB | 2.00 | 3.00 | 1.50x |");
        assert_eq!(three_figures(14.93), "14.93");
        assert_eq!(three_figures(0.5), "0.500");
        assert_eq!(three_figures(0.00437), "0.00437");
        assert_eq!(three_figures(0.0), "0.00");
    }

    #[test]
    fn cluster_data_rows_are_unit_vectors_and_seeded() {
        let a = cluster_data(50, 16, 3, 1);
        assert_eq!(a.len(), 50 * 16);
        for r in a.chunks(16) {
            let norm: f32 = r.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        }
        assert_eq!(a, cluster_data(50, 16, 3, 1));
        assert_ne!(a, cluster_data(50, 16, 3, 2));
    }
}
