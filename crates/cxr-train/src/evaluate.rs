//! Zero-shot evaluation of a model on a set of records, and the validation loss.

use candle_core::{Device, Tensor};
use cxr_clip::ClipModel;
use cxr_eval::{BootstrapConfig, ClassGroup, EvalOptions, EvalResults};
use cxr_text::{ClipTokenizer, PromptSet};
use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::batch::{batch_tensors, image_batch, TextSource};
use crate::config::{PromptStyle, TrainConfig};
use crate::prepare::Prepared;
use crate::Result;

/// Embed images in batches: `N x D`, L2-normalised rows.
pub fn embed_images(
    model: &ClipModel,
    data: &Prepared,
    idx: &[usize],
    batch: usize,
    device: &Device,
) -> Result<Array2<f32>> {
    let mut rows: Vec<f32> = Vec::new();
    let mut dim = 0;
    for chunk in idx.chunks(batch.max(1)) {
        let pixels = image_batch(data, chunk, device)?;
        let emb = cxr_losses::l2_normalise(&model.encode_image(&pixels)?.detach())?;
        dim = emb.dim(1)?;
        rows.extend(emb.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(Array2::from_shape_vec((idx.len(), dim), rows).expect("embedding shape"))
}

/// Embed texts: `N x D`, L2-normalised rows.
pub fn embed_texts(
    model: &ClipModel,
    tokenizer: &ClipTokenizer,
    texts: &[String],
    context_length: usize,
    device: &Device,
) -> Result<Array2<f32>> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens = tokenizer.encode_batch(&refs, context_length)?;
    let ids = Tensor::from_vec(tokens.ids, (tokens.batch, tokens.context_length), device)?;
    let emb = cxr_losses::l2_normalise(&model.encode_text(&ids)?.detach())?;
    let dim = emb.dim(1)?;
    Ok(
        Array2::from_shape_vec((texts.len(), dim), emb.flatten_all()?.to_vec1::<f32>()?)
            .expect("embedding shape"),
    )
}

/// The zero-shot classifier: positive / negative prompts per class (CheXzero).
pub struct ZeroShot {
    tokenizer: ClipTokenizer,
    prompts: PromptSet,
    classes: Vec<String>,
    context_length: usize,
    batch: usize,
}

impl ZeroShot {
    pub fn new(cfg: &TrainConfig, data: &Prepared) -> Result<Self> {
        let prompts = match cfg.text.prompts {
            PromptStyle::PresentAbsent => PromptSet::present_absent(),
            PromptStyle::CheXzero => PromptSet::chexzero(),
        };
        Self::with_prompts(cfg, data, prompts)
    }

    /// As [`ZeroShot::new`] with explicit prompts instead of `text.prompts`.
    pub fn with_prompts(cfg: &TrainConfig, data: &Prepared, prompts: PromptSet) -> Result<Self> {
        Ok(Self {
            tokenizer: ClipTokenizer::bundled()?,
            prompts,
            classes: data.classes().to_vec(),
            context_length: cfg.model.context_length,
            batch: cfg.train_loop.batch_size.max(32),
        })
    }

    /// Class text embeddings `C x D` for the positive and negative prompts, each averaged over
    /// templates and renormalised.
    pub fn class_embeddings(
        &self,
        model: &ClipModel,
        device: &Device,
    ) -> Result<(Array2<f32>, Array2<f32>)> {
        let mut pos_rows = Vec::new();
        let mut neg_rows = Vec::new();
        for class in &self.classes {
            let (pos, neg) = self.prompts.prompts(&class.to_lowercase());
            let p = embed_texts(model, &self.tokenizer, &pos, self.context_length, device)?;
            let n = embed_texts(model, &self.tokenizer, &neg, self.context_length, device)?;
            pos_rows.push(mean_normalised(&p));
            neg_rows.push(mean_normalised(&n));
        }
        // A no-finding class ("Normal") against "some finding": the mean of the other classes'
        // positive embeddings (`PromptSet::with_complement`).
        let findings: Vec<usize> = (0..self.classes.len())
            .filter(|&j| !self.prompts.is_complement(&self.classes[j]))
            .collect();
        for (j, class) in self.classes.iter().enumerate() {
            if self.prompts.is_complement(class) && !findings.is_empty() {
                let rows: Vec<Vec<f32>> = findings.iter().map(|&k| pos_rows[k].clone()).collect();
                neg_rows[j] = mean_normalised(&stack(&rows));
            }
        }
        Ok((stack(&pos_rows), stack(&neg_rows)))
    }

    /// Per-class probabilities `N x C` for the records `idx`.
    pub fn scores(&self, model: &ClipModel, data: &Prepared, idx: &[usize]) -> Result<Array2<f32>> {
        let device = crate::device::of_model(model);
        let (pos, neg) = self.class_embeddings(model, &device)?;
        let img = embed_images(model, data, idx, self.batch, &device)?;
        Ok(cxr_eval::zero_shot_probabilities(
            img.view(),
            pos.view(),
            neg.view(),
        )?)
    }

    /// Zero-shot AUCs on `idx`, with bootstrap CIs when `bootstrap > 0`.
    pub fn evaluate(
        &self,
        model: &ClipModel,
        data: &Prepared,
        idx: &[usize],
        groups: &[ClassGroup],
        train_counts: &[usize],
        bootstrap: usize,
        seed: u64,
    ) -> Result<EvalResults> {
        let scores = self.scores(model, data, idx)?;
        let labels = data.labels.select(Axis(0), idx);
        let opts = EvalOptions {
            bootstrap: (bootstrap > 0).then_some(BootstrapConfig {
                resamples: bootstrap,
                seed,
                level: 0.95,
            }),
        };
        let mut res =
            cxr_eval::evaluate(scores.view(), labels.view(), &self.classes, groups, &opts)?;
        for (c, n) in res.classes.iter_mut().zip(train_counts) {
            c.train_count = Some(*n);
        }
        Ok(res)
    }
}

fn mean_normalised(x: &Array2<f32>) -> Vec<f32> {
    let mean = x.mean_axis(Axis(0)).expect("at least one template");
    let norm = mean.dot(&mean).sqrt().max(1e-12);
    mean.iter().map(|v| v / norm).collect()
}

fn stack(rows: &[Vec<f32>]) -> Array2<f32> {
    let d = rows.first().map_or(0, Vec::len);
    Array2::from_shape_vec((rows.len(), d), rows.concat()).expect("rows of equal length")
}

/// Mean CLIP loss over the validation records (no optimiser step).
pub fn validation_loss(
    cfg: &TrainConfig,
    data: &Prepared,
    texts: &TextSource,
    tokenizer: &ClipTokenizer,
    model: &ClipModel,
    idx: &[usize],
    device: &Device,
) -> Result<f64> {
    let batch = cfg.train_loop.batch_size;
    let (mut sum, mut n) = (0f64, 0usize);
    for chunk in idx.chunks(batch) {
        if chunk.len() < 2 {
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let (pixels, ids) = batch_tensors(
            data,
            texts,
            tokenizer,
            chunk,
            cfg.model.context_length,
            &mut rng,
            device,
        )?;
        let img = model.encode_image(&pixels)?.detach();
        let txt = model.encode_text(&ids)?.detach();
        let loss = cxr_losses::clip_loss(&img, &txt, &model.logit_scale().detach())?;
        sum += loss.to_scalar::<f32>()? as f64;
        n += 1;
    }
    Ok(if n == 0 { f64::NAN } else { sum / n as f64 })
}
