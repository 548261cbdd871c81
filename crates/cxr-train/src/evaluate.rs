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

    /// Every prompt text, in the order [`prompt_embeddings`](Self::prompt_embeddings) embeds
    /// them: per class, its positive prompts then its negative ones (a complement class,
    /// "Normal", has no negative prompt: it is scored from its positive prompts alone).
    pub fn prompt_rows(&self) -> Vec<PromptRow> {
        let mut rows = Vec::new();
        for (class, name) in self.classes.iter().enumerate() {
            let (pos, neg) = self.prompts.prompts(&name.to_lowercase());
            let complement = self.prompts.is_complement(name);
            rows.extend(pos.into_iter().map(|text| PromptRow {
                class,
                positive: true,
                text,
            }));
            if !complement {
                rows.extend(neg.into_iter().map(|text| PromptRow {
                    class,
                    positive: false,
                    text,
                }));
            }
        }
        rows
    }

    /// The prompt rows and their text embeddings (`P x D`, L2-normalised rows), encoded in
    /// batched passes of up to [`TEXT_BATCH`] texts (one pass for a usual class list), not one
    /// text-encoder call per class.
    pub fn prompt_embeddings(
        &self,
        model: &ClipModel,
        device: &Device,
    ) -> Result<(Vec<PromptRow>, Array2<f32>)> {
        let rows = self.prompt_rows();
        let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
        let mut values = Vec::new();
        let mut dim = 0;
        for chunk in texts.chunks(TEXT_BATCH) {
            let emb = embed_texts(model, &self.tokenizer, chunk, self.context_length, device)?;
            dim = emb.ncols();
            values.extend(emb.iter().copied());
        }
        let emb = Array2::from_shape_vec((texts.len(), dim), values).expect("embedding shape");
        Ok((rows, emb))
    }

    /// Class text embeddings `C x D` for the positive and negative prompts, each averaged over
    /// a class's prompts and renormalised; all prompts are encoded in batched passes.
    pub fn class_embeddings(
        &self,
        model: &ClipModel,
        device: &Device,
    ) -> Result<(Array2<f32>, Array2<f32>)> {
        let (rows, emb) = self.prompt_embeddings(model, device)?;
        Ok(class_embeddings_from(self.classes.len(), &rows, &emb))
    }

    /// Per-class probabilities `N x C` for the records `idx`.
    pub fn scores(&self, model: &ClipModel, data: &Prepared, idx: &[usize]) -> Result<Array2<f32>> {
        let device = crate::device::of_model(model);
        let img = embed_images(model, data, idx, self.batch, &device)?;
        self.scores_from(model, &img)
    }

    /// Per-class probabilities `N x C` for image embeddings already computed (`N x D`,
    /// L2-normalised rows, as [`embed_images`] returns them).
    pub fn scores_from(&self, model: &ClipModel, images: &Array2<f32>) -> Result<Array2<f32>> {
        let device = crate::device::of_model(model);
        let (pos, neg) = self.class_embeddings(model, &device)?;
        Ok(cxr_eval::zero_shot_probabilities(
            images.view(),
            pos.view(),
            neg.view(),
        )?)
    }

    /// Images embedded in batches of this many.
    pub fn image_batch(&self) -> usize {
        self.batch
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

/// Texts per text-encoder pass in [`ZeroShot::prompt_embeddings`]: the 40 CXR-LT classes with
/// CheXzero's two prompts are 80 texts, one pass.
pub const TEXT_BATCH: usize = 256;

/// One zero-shot prompt: its class (index into the class list), side and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRow {
    pub class: usize,
    /// `true` for a positive ("{}") prompt, `false` for a negative ("no {}") one.
    pub positive: bool,
    pub text: String,
}

/// Class embeddings `(positive, negative)`, `C x D` each, from prompt embeddings (`P x D`,
/// L2-normalised, one row per [`PromptRow`]): per class and side, the mean of its rows,
/// renormalised (CheXzero). A class with no negative row (a complement class, "Normal") gets
/// a zero negative row, so its probability, `1 / (1 + exp(-cos))`, depends on its positive
/// prompts alone.
/// This is what `scripts/examples/rescore_from_embeddings.py` does in numpy.
pub fn class_embeddings_from(
    n_classes: usize,
    rows: &[PromptRow],
    emb: &Array2<f32>,
) -> (Array2<f32>, Array2<f32>) {
    let side = |class: usize, positive: bool| -> Option<Vec<f32>> {
        let picked: Vec<usize> = (0..rows.len())
            .filter(|&r| rows[r].class == class && rows[r].positive == positive)
            .collect();
        (!picked.is_empty()).then(|| mean_normalised(&emb.select(Axis(0), &picked)))
    };
    let pos_rows: Vec<Vec<f32>> = (0..n_classes)
        .map(|c| side(c, true).expect("every class has a positive prompt"))
        .collect();
    // A class without negative prompts (a complement, "Normal") gets a zero negative row: its
    // probability is then 1 / (1 + exp(-cos)), a function of its positive prompts alone.
    let dim = emb.ncols();
    let neg_rows: Vec<Vec<f32>> = (0..n_classes)
        .map(|c| side(c, false).unwrap_or_else(|| vec![0.0; dim]))
        .collect();
    (stack(&pos_rows), stack(&neg_rows))
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    fn tiny_model() -> ClipModel {
        let varmap = candle_nn::VarMap::new();
        let vb = crate::init::SeededVarMap::builder(&varmap, 7, DType::F32, &Device::Cpu);
        ClipModel::new(vb, &cxr_clip::ClipConfig::tiny(32)).unwrap()
    }

    fn zero_shot(prompts: PromptSet, classes: &[&str]) -> ZeroShot {
        ZeroShot {
            tokenizer: ClipTokenizer::bundled().unwrap(),
            prompts,
            classes: classes.iter().map(|c| c.to_string()).collect(),
            context_length: 77,
            batch: 32,
        }
    }

    /// The class embeddings as computed before prompts were batched: one text-encoder call
    /// per class and side.
    fn per_class_reference(zs: &ZeroShot, model: &ClipModel) -> (Array2<f32>, Array2<f32>) {
        let dev = Device::Cpu;
        let mut pos_rows = Vec::new();
        let mut neg_rows = Vec::new();
        for class in &zs.classes {
            let (pos, neg) = zs.prompts.prompts(&class.to_lowercase());
            let p = embed_texts(model, &zs.tokenizer, &pos, 77, &dev).unwrap();
            let n = embed_texts(model, &zs.tokenizer, &neg, 77, &dev).unwrap();
            pos_rows.push(mean_normalised(&p));
            neg_rows.push(mean_normalised(&n));
        }
        for (j, class) in zs.classes.iter().enumerate() {
            if zs.prompts.is_complement(class) {
                neg_rows[j] = vec![0.0; neg_rows[j].len()];
            }
        }
        (stack(&pos_rows), stack(&neg_rows))
    }

    fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
        assert_eq!(a.dim(), b.dim());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn batched_prompts_match_per_class_encoding() {
        let model = tiny_model();
        let classes = ["Atelectasis", "Pleural Effusion", "Normal", "Lung Lesion"];
        let with_aliases = PromptSet::chexzero()
            .with_pair("{} is seen", "there is no {}")
            .unwrap()
            .with_alias("Pleural Effusion", "effusion")
            .with_alias("Lung Lesion", "nodule")
            .with_alias("Lung Lesion", "mass");
        for prompts in [
            PromptSet::chexzero(),
            with_aliases,
            PromptSet::present_absent(),
        ] {
            let zs = zero_shot(prompts, &classes);
            let (pos, neg) = zs.class_embeddings(&model, &Device::Cpu).unwrap();
            let (pos_ref, neg_ref) = per_class_reference(&zs, &model);
            assert!(
                max_abs_diff(&pos, &pos_ref) < 1e-6,
                "positive {}",
                max_abs_diff(&pos, &pos_ref)
            );
            assert!(
                max_abs_diff(&neg, &neg_ref) < 1e-6,
                "negative {}",
                max_abs_diff(&neg, &neg_ref)
            );
            // And the scores built on them.
            let img = Array2::from_shape_fn((5, pos.ncols()), |(i, j)| ((i * 7 + j) % 5) as f32);
            let img = cxr_eval::l2_normalize_rows(img.view());
            let s = cxr_eval::zero_shot_probabilities(img.view(), pos.view(), neg.view()).unwrap();
            let s_ref =
                cxr_eval::zero_shot_probabilities(img.view(), pos_ref.view(), neg_ref.view())
                    .unwrap();
            assert!(max_abs_diff(&s, &s_ref) < 1e-6, "scores");
        }
    }

    #[test]
    fn complement_classes_have_no_negative_prompt_row() {
        let zs = zero_shot(PromptSet::present_absent(), &["Normal", "Edema"]);
        let rows = zs.prompt_rows();
        let texts: Vec<(usize, bool, &str)> = rows
            .iter()
            .map(|r| (r.class, r.positive, r.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                (0, true, "normal is present"),
                (0, true, cxr_text::NORMAL_REPORT_TEXT),
                (1, true, "edema is present"),
                (1, false, "edema is absent"),
            ]
        );
        // Its negative class embedding is zero: its probability is a sigmoid of the cosine
        // to its positive prompts, whatever the other classes' prompts are.
        let model = tiny_model();
        let (pos, neg) = zs.class_embeddings(&model, &Device::Cpu).unwrap();
        assert!(neg.row(0).iter().all(|&v| v == 0.0));
        assert!(neg.row(1).iter().any(|&v| v != 0.0));
        let img = cxr_eval::l2_normalize_rows(
            Array2::from_shape_fn((3, pos.ncols()), |(i, j)| ((i * 5 + j) % 7) as f32).view(),
        );
        let s = cxr_eval::zero_shot_probabilities(img.view(), pos.view(), neg.view()).unwrap();
        for i in 0..3 {
            let cos = img.row(i).dot(&pos.row(0));
            assert!((s[[i, 0]] - 1.0 / (1.0 + (-cos).exp())).abs() < 1e-6);
        }
    }
}
