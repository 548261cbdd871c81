//! One forward + backward pass of a CLIP contrastive step (ViT-B/32, batch 32 by default,
//! random weights, f32, CPU) in cxr-clip against transformers' `CLIPModel` in PyTorch
//! (`scripts/goldens/cxr-clip/bench_clip_torch.py`) on the same machine in the same run, with
//! the same thread count. Never part of the test suite.
//!
//! `cargo xtask bench clip [FLAGS]`, i.e. `cargo run -p cxr-clip --example bench_clip -- [FLAGS]`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use clap::Parser;
use cxr_clip::{l2_normalize, ClipConfig, ClipModel, Recompute, CLIP_EOT_ID};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Precision {
    F32,
    /// bf16 mixed precision (`ClipModel::with_compute_dtype(BF16)`, f32 weights and loss).
    Bf16,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Preset {
    VitB32,
    VitB16,
    /// `ClipConfig::tiny(--image-size)`.
    Tiny,
}

/// CLIP forward + backward vs PyTorch / transformers (`cargo xtask bench clip` runs this example).
#[derive(Parser, Debug)]
#[command(name = "bench_clip")]
struct Args {
    #[arg(long, value_enum, default_value = "vit-b32")]
    preset: Preset,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Timed iterations (after one warm-up); medians are reported.
    #[arg(long, default_value_t = 3)]
    iters: usize,
    /// Threads for both sides (default: all cores). Sets RAYON_NUM_THREADS for candle only if
    /// it is not already set, so pass the same value there when you set it yourself.
    #[arg(long)]
    threads: Option<usize>,
    /// Python with torch + transformers.
    #[arg(long, env = "CXR_PYTHON", default_value = "python3")]
    python: PathBuf,
    /// Skip the PyTorch side.
    #[arg(long)]
    no_torch: bool,
    /// Image side of the tiny preset (the demo trains it at 64).
    #[arg(long, default_value_t = 224)]
    image_size: usize,
    /// Arithmetic of the candle side: f32, or bf16 mixed precision (needs --no-torch: the
    /// PyTorch side is f32).
    #[arg(long, value_enum, default_value = "f32")]
    precision: Precision,
    /// Activation checkpointing on the candle side (`loop.checkpoint_activations = true`):
    /// the forward keeps only the block boundaries, the backward recomputes one block at a
    /// time. Less memory, one more forward pass of compute (counted in "backward"). The
    /// PyTorch side never checkpoints.
    #[arg(long, conflicts_with_all = ["recompute_layers", "whole_graph"])]
    checkpoint_activations: bool,
    /// Selective checkpointing (`loop.checkpoint_activations = N`): only the embedding stage
    /// and the lowest N encoder layers of each tower are recomputed in backward. Without this
    /// flag (and without --checkpoint-activations) nothing is recomputed.
    #[arg(long, value_name = "N", conflicts_with = "whole_graph")]
    recompute_layers: Option<usize>,
    /// One `backward()` of the whole graph, which holds every activation until it ends, instead
    /// of what training does (`cxr_train::step`, every setting of
    /// `loop.checkpoint_activations`): the loss's gradient with respect to the embeddings,
    /// then each tower's backward pass block by block (`ClipModel::checkpoint_image` /
    /// `checkpoint_text`), freeing each block's activations once it is passed.
    #[arg(long)]
    whole_graph: bool,
    /// Also write the results as JSON here (`cargo xtask bench all` reads it): medians and
    /// peak resident memory of each side.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// This process's peak resident set size so far (`VmHWM` of /proc/self/status), or `None`
/// where /proc is not there. Not `getrusage(RUSAGE_SELF).ru_maxrss`: Linux carries a parent's
/// peak across exec into it (a child spawned with vfork reports its parent's peak).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

fn gib(bytes: Option<u64>) -> String {
    bytes.map_or("?".into(), |b| {
        format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
    })
}

impl Preset {
    fn config(self, image_size: usize) -> ClipConfig {
        match self {
            Preset::VitB32 => ClipConfig::vit_b_32(),
            Preset::VitB16 => ClipConfig::vit_b_16(),
            Preset::Tiny => ClipConfig::tiny(image_size),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Preset::VitB32 => "vit-b-32",
            Preset::VitB16 => "vit-b-16",
            Preset::Tiny => "tiny",
        }
    }
}

/// Symmetric InfoNCE over matching pairs (what both sides compute).
fn loss(model: &ClipModel, px: &Tensor, ids: &Tensor) -> anyhow::Result<Tensor> {
    loss_of(model, &model.encode_image(px)?, &model.encode_text(ids)?)
}

/// The same loss from image and text embeddings.
fn loss_of(model: &ClipModel, img: &Tensor, txt: &Tensor) -> anyhow::Result<Tensor> {
    let img = l2_normalize(img)?;
    let txt = l2_normalize(txt)?;
    let logits = img
        .matmul(&txt.t()?)?
        .broadcast_mul(&model.logit_scale().exp()?)?;
    let n = logits.dim(0)?;
    let eye = Tensor::eye(n, DType::F32, logits.device())?;
    let ce = |l: &Tensor| -> candle_core::Result<Tensor> {
        (candle_nn::ops::log_softmax(l, D::Minus1)? * &eye)?
            .sum_all()?
            .neg()?
            / n as f64
    };
    Ok(((ce(&logits)? + ce(&logits.t()?)?)? / 2.0)?)
}

/// Token rows: start, pseudo-random words, end at lengths spread over 8..=77, zero padding.
fn token_ids(batch: usize, context: usize, vocab: usize) -> Vec<u32> {
    let mut ids = vec![0u32; batch * context];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for row in 0..batch {
        let len = 8 + (row * 37) % (context - 7);
        let r = &mut ids[row * context..(row + 1) * context];
        r[0] = 49406.min(vocab as u32 - 2);
        for slot in r.iter_mut().take(len - 1).skip(1) {
            *slot = rng.gen_range(1..vocab as u32 - 2);
        }
        r[len - 1] = CLIP_EOT_ID.min(vocab as u32 - 1);
    }
    ids
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // As `cargo xtask` does: without it a step page-faults its activations in afresh.
    cxr_clip::memory::retain_freed_memory();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    if matches!(args.precision, Precision::Bf16) && !args.no_torch {
        bail!("--precision bf16 needs --no-torch (the PyTorch side runs f32)");
    }
    let cfg = args.preset.config(args.image_size);
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let model = ClipModel::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), &cfg)?;
    let model = match args.precision {
        Precision::F32 => model,
        Precision::Bf16 => model.with_compute_dtype(DType::BF16)?,
    };
    let n_params: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
    let s = cfg.vision_config.image_size;
    let ctx = cfg.text_config.max_position_embeddings;
    let px = Tensor::randn(0f32, 1f32, (args.batch, 3, s, s), &dev)?;
    let ids = Tensor::from_vec(
        token_ids(args.batch, ctx, cfg.text_config.vocab_size),
        (args.batch, ctx),
        &dev,
    )?;

    let recompute = match (
        args.whole_graph,
        args.checkpoint_activations,
        args.recompute_layers,
    ) {
        (true, _, _) => None,
        (false, true, _) => Some(Recompute::All),
        (false, false, n) => Some(Recompute::Lowest(n.unwrap_or(0))),
    };
    let (mut fwd, mut bwd) = (Vec::new(), Vec::new());
    for it in 0..=args.iters {
        let t0 = Instant::now();
        // Segmented (as training): both towers kept as `Checkpointed`, and the loss taken on
        // their embeddings as variables (their gradients then go into the towers).
        let (l, kept) = if let Some(recompute) = recompute {
            let (image, text) = (
                model.checkpoint_image(&px, recompute)?,
                model.checkpoint_text(&ids, recompute)?,
            );
            let img = Var::from_tensor(image.embedding())?;
            let txt = Var::from_tensor(text.embedding())?;
            let l = loss_of(&model, img.as_tensor(), txt.as_tensor())?;
            (l, Some((image, text, img, txt)))
        } else {
            (loss(&model, &px, &ids)?, None)
        };
        let _ = l.to_scalar::<f32>()?;
        let t1 = Instant::now();
        let grads = l.backward()?;
        if let Some((image, text, img, txt)) = kept {
            let embedding_grad = |v: &Var| grads.get(v.as_tensor()).context("embedding gradient");
            let image_grads = image.backward(embedding_grad(&img)?)?;
            let text_grads = text.backward(embedding_grad(&txt)?)?;
            if image_grads.get_ids().count() + text_grads.get_ids().count() + 1
                != varmap.all_vars().len()
            {
                bail!("a parameter got no gradient through the checkpointed towers");
            }
        }
        let t2 = Instant::now();
        if grads.get(model.logit_scale()).is_none() {
            bail!("logit_scale got no gradient");
        }
        if it > 0 {
            fwd.push((t1 - t0).as_secs_f64());
            bwd.push((t2 - t1).as_secs_f64());
        }
        eprintln!(
            "candle iter {it}: forward {:.3}s backward {:.3}s",
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64()
        );
    }
    let (rf, rb) = (median(fwd), median(bwd));
    // Before the PyTorch child starts (a child is not counted in this process's figure anyway).
    let candle_peak = peak_rss_bytes();
    println!(
        "cxr-clip (candle 0.11.1) {} {}px {:?}{} batch {} threads {threads}: {:.1}M params, \
         forward {rf:.3}s, backward {rb:.3}s, total {:.3}s, peak memory {}",
        args.preset.name(),
        cfg.vision_config.image_size,
        args.precision,
        match recompute {
            Some(Recompute::All) => " every block recomputed".to_string(),
            Some(Recompute::Lowest(0)) => String::new(),
            Some(Recompute::Lowest(n)) => format!(" lowest {n} blocks recomputed"),
            None => " whole-graph backward".to_string(),
        },
        args.batch,
        n_params as f64 / 1e6,
        rf + rb,
        gib(candle_peak)
    );
    let mut report = serde_json::json!({
        "preset": args.preset.name(),
        "image_size": cfg.vision_config.image_size,
        "batch": args.batch,
        "iters": args.iters,
        "threads": threads,
        "precision": format!("{:?}", args.precision).to_lowercase(),
        "recompute": match recompute {
            Some(Recompute::All) => serde_json::json!("all"),
            Some(Recompute::Lowest(n)) => serde_json::json!(n),
            None => serde_json::Value::Null,
        },
        "whole_graph": args.whole_graph,
        "params": n_params,
        "candle": {
            "forward_s": rf, "backward_s": rb, "total_s": rf + rb,
            "peak_rss_bytes": candle_peak,
        },
        "torch": null,
    });
    let write_json = |report: &serde_json::Value| -> anyhow::Result<()> {
        if let Some(path) = &args.json {
            std::fs::write(path, serde_json::to_string_pretty(report)? + "\n")
                .with_context(|| format!("writing --json {}", path.display()))?;
        }
        Ok(())
    };
    if args.no_torch {
        return write_json(&report);
    }

    let python = &args.python;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/goldens/cxr-clip/bench_clip_torch.py");
    let out = Command::new(python)
        .arg(&script)
        .args(["--preset", args.preset.name()])
        .args(["--batch", &args.batch.to_string()])
        .args(["--iters", &args.iters.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--image-size", &cfg.vision_config.image_size.to_string()])
        .output()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    if !out.status.success() {
        bail!(
            "PyTorch benchmark failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(line.trim().lines().last().unwrap_or(""))
        .context("PyTorch benchmark printed no JSON line")?;
    let tf = json["forward_s"].as_f64().context("forward_s")?;
    let tb = json["backward_s"].as_f64().context("backward_s")?;
    println!(
        "PyTorch {} / transformers {} ({}): forward {tf:.3}s, backward {tb:.3}s, total {:.3}s",
        json["torch"].as_str().unwrap_or("?"),
        json["transformers"].as_str().unwrap_or("?"),
        json["attn"].as_str().unwrap_or("?"),
        tf + tb
    );
    println!(
        "ratio candle / PyTorch: forward {:.2}x, backward {:.2}x, total {:.2}x",
        rf / tf,
        rb / tb,
        (rf + rb) / (tf + tb)
    );
    let torch_peak = json["peak_rss_bytes"].as_u64();
    println!(
        "peak resident memory: candle {}, PyTorch {} (each process's VmHWM)",
        gib(candle_peak),
        gib(torch_peak)
    );
    report["torch"] = serde_json::json!({
        "forward_s": tf, "backward_s": tb, "total_s": tf + tb,
        "peak_rss_bytes": torch_peak,
        "torch": json["torch"], "transformers": json["transformers"], "attn": json["attn"],
    });
    println!(
        "| {} | {} | {threads} | {rf:.2} | {rb:.2} | {:.2} | {tf:.2} | {tb:.2} | {:.2} | {:.2}x |",
        args.preset.name(),
        args.batch,
        rf + rb,
        tf + tb,
        (rf + rb) / (tf + tb)
    );
    write_json(&report)
}
