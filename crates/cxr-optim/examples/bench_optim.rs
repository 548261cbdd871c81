//! One AdamW step over ViT-B/32's parameter set (151M parameters, OpenAI CLIP shapes), fused
//! `cxr_optim::AdamW` against `candle_nn::AdamW`, optionally against `torch.optim.AdamW`
//! (foreach and fused) run by a given Python in the same session.
//!
//! Target (issue 6): at most 1 s per step on 2 cores, where candle_nn takes about 9 s.
//!
//! `cargo xtask bench optim [FLAGS]`, i.e.
//! `cargo run -p cxr-optim --example bench_optim -- [FLAGS]`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer;
use clap::Parser;
use cxr_optim::{default_decay_filter, AdamW, AdamWConfig, Optimizer as _};

/// Fused AdamW vs candle_nn's AdamW (`cargo xtask bench optim` runs this example).
#[derive(Parser, Debug)]
#[command(name = "bench_optim")]
struct Args {
    /// Timed steps of the fused optimiser (after one warm-up step).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Timed steps of candle_nn::AdamW (several seconds each on 2 cores); 0 skips it.
    #[arg(long, default_value_t = 2)]
    candle_steps: usize,
    /// Threads for the fused optimiser and torch (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Fraction of each tensor's leading dimension to keep (1.0 = the full 151M parameters);
    /// smaller values give a quick smoke run.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// A Python with torch: also time torch.optim.AdamW (foreach and fused=True) on the same
    /// shapes, for the ratio against the reference.
    #[arg(long)]
    torch_python: Option<PathBuf>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// OpenAI CLIP ViT-B/32 parameter names and shapes (visual width 768, 12 layers, patch 32;
/// text width 512, 12 layers, vocabulary 49,408, context 77; embedding 512).
fn vit_b32_shapes() -> Vec<(String, Vec<usize>)> {
    let mut s: Vec<(String, Vec<usize>)> = Vec::new();
    let mut push = |n: String, d: &[usize]| s.push((n, d.to_vec()));
    push("visual.conv1.weight".into(), &[768, 3, 32, 32]);
    push("visual.class_embedding".into(), &[768]);
    push("visual.positional_embedding".into(), &[50, 768]);
    push("visual.ln_pre.weight".into(), &[768]);
    push("visual.ln_pre.bias".into(), &[768]);
    for (tower, w) in [("visual.transformer", 768usize), ("transformer", 512)] {
        for l in 0..12 {
            let p = format!("{tower}.resblocks.{l}");
            push(format!("{p}.attn.in_proj_weight"), &[3 * w, w]);
            push(format!("{p}.attn.in_proj_bias"), &[3 * w]);
            push(format!("{p}.attn.out_proj.weight"), &[w, w]);
            push(format!("{p}.attn.out_proj.bias"), &[w]);
            push(format!("{p}.ln_1.weight"), &[w]);
            push(format!("{p}.ln_1.bias"), &[w]);
            push(format!("{p}.mlp.c_fc.weight"), &[4 * w, w]);
            push(format!("{p}.mlp.c_fc.bias"), &[4 * w]);
            push(format!("{p}.mlp.c_proj.weight"), &[w, 4 * w]);
            push(format!("{p}.mlp.c_proj.bias"), &[w]);
            push(format!("{p}.ln_2.weight"), &[w]);
            push(format!("{p}.ln_2.bias"), &[w]);
        }
    }
    push("visual.ln_post.weight".into(), &[768]);
    push("visual.ln_post.bias".into(), &[768]);
    push("visual.proj".into(), &[768, 512]);
    push("token_embedding.weight".into(), &[49408, 512]);
    push("positional_embedding".into(), &[77, 512]);
    push("ln_final.weight".into(), &[512]);
    push("ln_final.bias".into(), &[512]);
    push("text_projection".into(), &[512, 512]);
    push("logit_scale".into(), &[1]);
    s
}

fn scaled(shapes: &[(String, Vec<usize>)], scale: f64) -> Vec<(String, Vec<usize>)> {
    shapes
        .iter()
        .map(|(n, d)| {
            let mut d = d.clone();
            d[0] = ((d[0] as f64 * scale).ceil() as usize).max(1);
            (n.clone(), d)
        })
        .collect()
}

/// Fresh parameters and matching gradients (uniform values; the content does not matter for
/// the timing, only that it is finite and varied).
fn make(shapes: &[(String, Vec<usize>)]) -> anyhow::Result<(Vec<(String, Var)>, GradStore)> {
    let dev = Device::Cpu;
    let mut vars = Vec::with_capacity(shapes.len());
    let mut grads = GradStore::default();
    for (n, d) in shapes {
        let v = Var::from_tensor(&Tensor::rand(-0.05f32, 0.05, d.as_slice(), &dev)?)?;
        grads.insert(
            v.as_tensor(),
            Tensor::rand(-1e-3f32, 1e-3, d.as_slice(), &dev)?,
        );
        vars.push((n.clone(), v));
    }
    Ok((vars, grads))
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 0 => 0.5 * (v[n / 2 - 1] + v[n / 2]),
        n => v[n / 2],
    }
}

fn time_steps(n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Vec<f64>> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f()?;
            Ok(t.elapsed().as_secs_f64())
        })
        .collect()
}

const TORCH_SCRIPT: &str = r#"
import json, sys, time, torch
shapes = json.loads(sys.argv[1]); steps = int(sys.argv[2]); threads = int(sys.argv[3])
if threads > 0:
    torch.set_num_threads(threads)
out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
for mode in ["foreach", "fused"]:
    ps = [torch.nn.Parameter(torch.empty(*s).uniform_(-0.05, 0.05)) for _, s in shapes]
    for p in ps:
        p.grad = torch.empty_like(p).uniform_(-1e-3, 1e-3)
    kw = {"foreach": True} if mode == "foreach" else {"fused": True}
    try:
        opt = torch.optim.AdamW(ps, lr=1e-3, **kw)
        opt.step()
    except Exception as e:
        out[mode] = {"error": str(e)}
        continue
    ts = []
    for _ in range(steps):
        t = time.perf_counter(); opt.step(); ts.append(time.perf_counter() - t)
    out[mode] = {"steps_s": ts}
    del opt, ps
print(json.dumps(out))
"#;

fn run_torch(
    python: &PathBuf,
    shapes: &[(String, Vec<usize>)],
    steps: usize,
    threads: usize,
) -> anyhow::Result<serde_json::Value> {
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(TORCH_SCRIPT)
        .arg(serde_json::to_string(shapes)?)
        .arg(steps.to_string())
        .arg(threads.to_string())
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "torch benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8(out.stdout)?;
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("parsing torch output {last:?}"))
}

/// Runs the benchmark and prints a table (and JSON when asked).
fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(args.scale > 0.0 && args.scale <= 1.0) {
        bail!("--scale must be in (0, 1], got {}", args.scale);
    }
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let shapes = scaled(&vit_b32_shapes(), args.scale);
    let n_params: usize = shapes
        .iter()
        .map(|(_, d)| d.iter().product::<usize>())
        .sum();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()?;
    let threads = pool.current_num_threads();
    println!(
        "bench-optim: {} tensors, {:.1}M parameters (f32), {} threads",
        shapes.len(),
        n_params as f64 / 1e6,
        threads
    );

    // Fused AdamW: one warm-up step (first touch of the moment buffers), then timed steps.
    let fused = {
        let (vars, grads) = make(&shapes)?;
        let mut opt = AdamW::new(vars, AdamWConfig::default(), default_decay_filter)?;
        pool.install(|| -> anyhow::Result<Vec<f64>> {
            opt.step(&grads)?;
            time_steps(args.steps, || Ok(opt.step(&grads)?))
        })?
    };
    let fused_med = median(&fused);
    println!(
        "fused cxr_optim::AdamW   median {:8.3} s/step  ({fused:.3?})",
        fused_med
    );

    let candle = if args.candle_steps > 0 {
        let (vars, grads) = make(&shapes)?;
        let vars: Vec<Var> = vars.into_iter().map(|(_, v)| v).collect();
        let mut opt = candle_nn::AdamW::new(vars, candle_nn::ParamsAdamW::default())?;
        time_steps(args.candle_steps, || Ok(opt.step(&grads)?))?
    } else {
        Vec::new()
    };
    let candle_med = median(&candle);
    if !candle.is_empty() {
        println!(
            "candle_nn::AdamW          median {:8.3} s/step  ({candle:.3?})",
            candle_med
        );
        println!(
            "speed-up fused vs candle_nn: {:.1}x",
            candle_med / fused_med
        );
    }

    let torch = match &args.torch_python {
        Some(py) => {
            let t = run_torch(py, &shapes, args.steps, args.threads)?;
            for mode in ["foreach", "fused"] {
                match t[mode]["steps_s"].as_array() {
                    Some(ts) => {
                        let ts: Vec<f64> = ts.iter().filter_map(|x| x.as_f64()).collect();
                        let m = median(&ts);
                        println!(
                            "torch AdamW {mode:8}      median {m:8.3} s/step  (torch {}, {} threads); fused/torch = {:.2}",
                            t["torch"], t["threads"], fused_med / m
                        );
                    }
                    None => println!("torch AdamW {mode}: {}", t[mode]),
                }
            }
            Some(t)
        }
        None => None,
    };
    let target_met = fused_med <= 1.0 || args.scale < 1.0;
    println!(
        "target <= 1 s/step on the full set: {}",
        if args.scale < 1.0 {
            "n/a (scaled run)"
        } else if target_met {
            "met"
        } else {
            "NOT met"
        }
    );
    if let Some(path) = &args.json {
        let v = serde_json::json!({
            "params": n_params, "tensors": shapes.len(), "threads": threads,
            "fused_steps_s": fused, "candle_nn_steps_s": candle,
            "fused_median_s": fused_med, "candle_nn_median_s": candle_med,
            "speedup_vs_candle_nn": candle_med / fused_med, "torch": torch,
            "dtype": format!("{:?}", DType::F32),
        });
        std::fs::write(path, serde_json::to_string_pretty(&v)?)?;
    }
    Ok(())
}
