//! Where a CLIP training step's CPU time goes: each tower's forward and backward (a surrogate
//! loss `sum(embedding^2)`, random weights, f32) against the same dense-layer matrix products
//! run alone on the same shapes, i.e. the GEMM floor of the step. The difference is everything
//! else: attention, LayerNorm / softmax / activations, bias adds, reshapes, gradient sums and
//! allocation. `CXR_OPS=reference` runs the primitive-op layers instead of cxr-ops' fused ones.
//!
//! `cargo run -p cxr-clip --example profile_clip -- --threads 2` (docs/benchmarks.md has a run).

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clap::Parser;
use cxr_clip::{ClipConfig, ClipModel, CLIP_EOT_ID};

#[derive(Parser, Debug)]
#[command(name = "profile_clip")]
struct Args {
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Timed iterations after one warm-up; the median is reported.
    #[arg(long, default_value_t = 3)]
    iters: usize,
    /// Threads (sets RAYON_NUM_THREADS unless it is set).
    #[arg(long)]
    threads: Option<usize>,
}

/// Seconds since `t`.
fn since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Forward and backward seconds of `sum(f()^2)`.
fn time_tower(f: impl Fn() -> cxr_clip::Result<Tensor>) -> anyhow::Result<(f64, f64)> {
    let t = Instant::now();
    let loss = f()?.sqr()?.sum_all()?;
    loss.to_scalar::<f32>()?;
    let fwd = since(t);
    let t = Instant::now();
    std::hint::black_box(loss.backward()?);
    Ok((fwd, since(t)))
}

/// `(rows, in, out, count)` of a tower's dense layers: q, k, v, out projections, fc1, fc2.
fn dense_layers(
    rows: usize,
    width: usize,
    mlp: usize,
    layers: usize,
) -> [(usize, usize, usize, usize); 3] {
    [
        (rows, width, width, 4 * layers),
        (rows, width, mlp, layers),
        (rows, mlp, width, layers),
    ]
}

/// Forward (`x W^T`) and backward (`g W`, `g^T x`: what `cxr_ops::dense`'s backward runs)
/// seconds of the given matmuls run alone.
fn gemm_floor(shapes: &[(usize, usize, usize, usize)], dev: &Device) -> anyhow::Result<(f64, f64)> {
    let (mut fwd, mut bwd) = (0.0, 0.0);
    for &(m, k, n, count) in shapes {
        let x = Tensor::randn(0f32, 1., (m, k), dev)?;
        let w = Tensor::randn(0f32, 1., (n, k), dev)?;
        let g = Tensor::randn(0f32, 1., (m, n), dev)?;
        for _ in 0..count {
            let t = Instant::now();
            std::hint::black_box(x.matmul(&w.t()?)?);
            fwd += since(t);
            let t = Instant::now();
            std::hint::black_box((g.matmul(&w)?, g.t()?.matmul(&x)?));
            bwd += since(t);
        }
    }
    Ok((fwd, bwd))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(n) = args.threads {
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        }
    }
    cxr_clip::memory::retain_freed_memory();
    let cfg = ClipConfig::vit_b_32();
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let model = ClipModel::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), &cfg)?;
    let b = args.batch;
    let (v, t) = (&cfg.vision_config, &cfg.text_config);
    let pixels = Tensor::randn(0f32, 1., (b, 3, v.image_size, v.image_size), &dev)?;
    // Full-length texts: every row ends at the last position, so nothing is truncated.
    let ctx = t.max_position_embeddings;
    let ids: Vec<u32> = (0..b * ctx)
        .map(|i| {
            if i % ctx == ctx - 1 {
                CLIP_EOT_ID
            } else {
                1 + (i * 7919 % 40_000) as u32
            }
        })
        .collect();
    let ids = Tensor::from_vec(ids, (b, ctx), &dev)?;

    let mut runs = vec![Vec::new(); 4];
    for it in 0..=args.iters {
        let (fi, bi) = time_tower(|| model.encode_image(&pixels))?;
        let (ft, bt) = time_tower(|| model.encode_text(&ids))?;
        eprintln!("iter {it}: image {fi:.3} + {bi:.3} s, text {ft:.3} + {bt:.3} s");
        if it > 0 {
            for (r, x) in runs.iter_mut().zip([fi, bi, ft, bt]) {
                r.push(x);
            }
        }
    }
    let [fi, bi, ft, bt] = [0, 1, 2, 3].map(|i| median(runs[i].clone()));

    let tokens = v.num_positions();
    let mut image = dense_layers(
        b * tokens,
        v.hidden_size,
        v.intermediate_size,
        v.num_hidden_layers,
    )
    .to_vec();
    let patch = 3 * v.patch_size * v.patch_size;
    image.push((b * (tokens - 1), patch, v.hidden_size, 1));
    let (gfi, gbi) = gemm_floor(&image, &dev)?;
    let text = dense_layers(
        b * ctx,
        t.hidden_size,
        t.intermediate_size,
        t.num_hidden_layers,
    );
    let (gft, gbt) = gemm_floor(&text, &dev)?;

    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!(
        "ViT-B/32, batch {b}, {threads} threads, medians of {} iterations",
        args.iters
    );
    println!("| part | step (s) | dense GEMMs alone (s) | everything else (s) | GEMM share |");
    println!("|---|---|---|---|---|");
    for (name, step, gemm) in [
        ("image forward", fi, gfi),
        ("image backward", bi, gbi),
        ("text forward", ft, gft),
        ("text backward", bt, gbt),
        ("total", fi + bi + ft + bt, gfi + gbi + gft + gbt),
    ] {
        println!(
            "| {name} | {step:.2} | {gemm:.2} | {:.2} | {:.0}% |",
            step - gemm,
            100.0 * gemm / step
        );
    }
    Ok(())
}
