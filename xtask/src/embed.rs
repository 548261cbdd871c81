//! `cargo xtask embed`: image and text embeddings of a CLIP checkpoint, written as `.npy`.
//!
//! `--weights` is a Hugging Face folder (`config.json` + `model.safetensors`), an OpenAI-layout
//! `.pt` state dict (CheXzero's releases), or a hub id found in the local hf-hub cache.
//! Images go through cxr-data's CheXzero or CLIP preprocessing at the model's input size, texts
//! through the bundled CLIP tokenizer at the model's context length.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use cxr_clip::{l2_normalize, ClipModel, ClipWeights};
use cxr_data::image::{load_gray, normalise_into, preprocess_u8, Preprocess, PreprocessMode};
use cxr_text::ClipTokenizer;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PreprocessArg {
    /// CheXzero: pad to 320 square, bicubic resize, gray mean/std on the 0-255 scale.
    Chexzero,
    /// OpenAI CLIP: shortest side resize, centre crop, CLIP's RGB mean/std.
    Clip,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder with config.json + model.safetensors, an OpenAI-layout .pt, or a hub id
    /// (`openai/clip-vit-base-patch32`) already in the local hf-hub cache.
    #[arg(long)]
    weights: String,
    /// Image preprocessing.
    #[arg(long, value_enum, default_value = "chexzero")]
    preprocess: PreprocessArg,
    /// Image files (JPEG or PNG).
    #[arg(long, num_args = 1..)]
    images: Vec<PathBuf>,
    /// Texts to embed.
    #[arg(long, num_args = 1..)]
    texts: Vec<String>,
    /// Output folder for image_embeds.npy and text_embeds.npy.
    #[arg(long)]
    out: PathBuf,
    /// Write the raw projections instead of L2-normalised embeddings.
    #[arg(long)]
    raw: bool,
    /// Images or texts per forward pass.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.images.is_empty() && args.texts.is_empty() {
        bail!("nothing to embed: pass --images FILE... and/or --texts TEXT...");
    }
    let batch = args.batch_size.max(1);
    let device = Device::Cpu;
    let weights = ClipWeights::resolve(&args.weights)
        .with_context(|| format!("loading CLIP weights from {}", args.weights))?;
    let model = weights.model(DType::F32, &device)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let finish =
        |t: Tensor| -> anyhow::Result<Tensor> { Ok(if args.raw { t } else { l2_normalize(&t)? }) };

    if !args.images.is_empty() {
        let emb = finish(embed_images(
            &model,
            &args.images,
            args.preprocess,
            batch,
            &device,
        )?)?;
        write_npy(&args.out.join("image_embeds.npy"), &emb)?;
    }
    if !args.texts.is_empty() {
        let emb = finish(embed_texts(&model, &args.texts, batch, &device)?)?;
        write_npy(&args.out.join("text_embeds.npy"), &emb)?;
    }
    Ok(())
}

/// An N x D float32 embedding matrix as `.npy`.
fn write_npy(path: &Path, emb: &Tensor) -> anyhow::Result<()> {
    let (n, d) = emb.dims2()?;
    cxr_data::npy::write(path, &[n, d], &emb.flatten_all()?.to_vec1::<f32>()?)?;
    tracing::info!("wrote {} ({n} x {d})", path.display());
    Ok(())
}

fn embed_images(
    model: &ClipModel,
    paths: &[PathBuf],
    mode: PreprocessArg,
    batch: usize,
    device: &Device,
) -> anyhow::Result<Tensor> {
    let size = model.config().vision_config.image_size;
    let mode = match mode {
        PreprocessArg::Chexzero => PreprocessMode::CheXzero,
        PreprocessArg::Clip => PreprocessMode::Clip,
    };
    let pre = Preprocess {
        mode,
        size: u32::try_from(size).context("image size does not fit u32")?,
    };
    let mut out = Vec::new();
    for chunk in paths.chunks(batch) {
        let mut pixels = Vec::with_capacity(chunk.len() * 3 * size * size);
        for path in chunk {
            let img = load_gray(path).with_context(|| format!("reading {}", path.display()))?;
            normalise_into(&preprocess_u8(&img, &pre), mode, &mut pixels);
        }
        let px = Tensor::from_vec(pixels, (chunk.len(), 3, size, size), device)?;
        out.push(model.encode_image(&px)?);
    }
    Ok(Tensor::cat(&out, 0)?)
}

fn embed_texts(
    model: &ClipModel,
    texts: &[String],
    batch: usize,
    device: &Device,
) -> anyhow::Result<Tensor> {
    let tokenizer = ClipTokenizer::bundled()?;
    let vocab = model.config().text_config.vocab_size;
    if vocab < 49408 {
        bail!(
            "the model's text vocabulary has {vocab} tokens, fewer than the CLIP tokenizer's \
             49,408: these weights were not trained with CLIP's BPE, so --texts cannot be used"
        );
    }
    let context = model.config().text_config.max_position_embeddings;
    let mut out = Vec::new();
    for chunk in texts.chunks(batch) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let tb = tokenizer.encode_batch(&refs, context)?;
        let ids = Tensor::from_vec(tb.ids, (tb.batch, tb.context_length), device)?;
        out.push(model.encode_text(&ids)?);
    }
    Ok(Tensor::cat(&out, 0)?)
}
