//! Batches: the order of an epoch, each record's training text and a batch as tensors.
//!
//! Determinism: the epoch's batch order and any text shuffling are derived from
//! `(seed, epoch, step)`, never from a running RNG, so a resumed run replays the same batches.

use candle_core::{Device, Tensor};
use cxr_text::{ClipTokenizer, MetaLabelText};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::{MetaLabelStyle, Method, TrainConfig};
use crate::prepare::Prepared;
use crate::{Result, TrainError};

/// Where each record's training text comes from.
pub enum TextSource {
    MetaLabels {
        writer: MetaLabelText,
        shuffle: bool,
    },
    /// Report impressions, one per record (`None` when the report is missing or empty).
    Reports(Vec<Option<String>>),
}

impl TextSource {
    pub fn new(cfg: &TrainConfig, data: &Prepared) -> Result<Self> {
        if cfg.method == Method::Baseline {
            return Ok(TextSource::Reports(read_reports(data)?));
        }
        let writer = match cfg.text.meta_label {
            MetaLabelStyle::ReleasedCode => MetaLabelText::released_code(),
            MetaLabelStyle::Paper => MetaLabelText::paper(),
        };
        Ok(TextSource::MetaLabels {
            writer,
            shuffle: cfg.text.shuffle_order,
        })
    }

    pub fn text(&self, data: &Prepared, record: usize, rng: &mut ChaCha8Rng) -> String {
        match self {
            TextSource::Reports(texts) => texts[record].clone().unwrap_or_default(),
            TextSource::MetaLabels { writer, shuffle } => {
                let names = data.named_classes(record);
                if *shuffle {
                    writer.render_shuffled(&names, rng)
                } else {
                    writer.render(&names)
                }
            }
        }
    }

    /// The records of `idx` this source trains on, in order: all of them for meta-labels; for
    /// report text those with a report (CheXzero skips the others: an empty text would be a
    /// false negative of every other empty text in its batch). The split stays the same for
    /// every method; only the baseline's training batches leave these images out.
    pub fn trainable(&self, idx: &[usize]) -> Vec<usize> {
        match self {
            TextSource::MetaLabels { .. } => idx.to_vec(),
            TextSource::Reports(texts) => idx
                .iter()
                .copied()
                .filter(|&i| texts[i].is_some())
                .collect(),
        }
    }
}

/// The report impression of every record (`None`: no report, or an empty impression), for
/// the report-text baseline (a dataset without reports is refused by
/// [`TrainConfig::validate`]).
fn read_reports(data: &Prepared) -> Result<Vec<Option<String>>> {
    let texts = data
        .table
        .records
        .iter()
        .map(|r| {
            let text =
                cxr_data::read_report_impression(&data.reports_root, r.subject_id, r.study_id)?;
            Ok(text.filter(|t| !t.trim().is_empty()))
        })
        .collect::<Result<Vec<Option<String>>>>()?;
    let missing = texts.iter().filter(|t| t.is_none()).count();
    if missing == data.table.records.len() {
        return Err(TrainError::Dataset(format!(
            "the baseline trains on report text, but no report was found under {} (files/pXX/pSUBJECT/sSTUDY.txt): set data.reports_root (--reports-root) to the MIMIC-CXR reports folder",
            data.reports_root.display()
        )));
    }
    if missing > 0 {
        tracing::warn!(
            "{missing} of {} images have no report: the baseline does not train on them",
            texts.len()
        );
    }
    Ok(texts)
}

/// One batch as tensors: pixels `B x 3 x S x S` and token ids `B x context_length`.
pub fn batch_tensors(
    data: &Prepared,
    texts: &TextSource,
    tokenizer: &ClipTokenizer,
    idx: &[usize],
    context_length: usize,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    HostBatch::build(data, texts, tokenizer, idx, context_length, rng)?.into_tensors(device)
}

/// A batch in host memory, before it becomes tensors: everything a batch costs besides the
/// copy to the device (cache read, normalisation, text, tokens), so that a second thread can
/// build it while a step runs ([`crate::prefetch`]).
#[derive(Clone, Debug, PartialEq)]
pub struct HostBatch {
    /// `B x 3 x S x S` normalised pixels, row-major.
    pub pixels: Vec<f32>,
    /// `B x context_length` token ids, row-major.
    pub ids: Vec<u32>,
    pub batch: usize,
    pub image_size: usize,
    pub context_length: usize,
}

impl HostBatch {
    /// The pixels and token ids of records `idx`; `rng` shuffles meta-label text.
    pub fn build(
        data: &Prepared,
        texts: &TextSource,
        tokenizer: &ClipTokenizer,
        idx: &[usize],
        context_length: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        let pixels = data.cache.batch_f32(idx);
        let strings: Vec<String> = idx.iter().map(|&i| texts.text(data, i, rng)).collect();
        let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
        let tokens = tokenizer.encode_batch(&refs, context_length)?;
        Ok(Self {
            pixels,
            ids: tokens.ids,
            batch: tokens.batch,
            image_size: data.image_size,
            context_length: tokens.context_length,
        })
    }

    /// The training batch of optimisation step `step` on records `idx`: its text shuffled by
    /// an RNG seeded from `(seed, step)` alone, so the batch does not depend on which thread
    /// builds it, or when.
    pub fn for_step(
        data: &Prepared,
        texts: &TextSource,
        tokenizer: &ClipTokenizer,
        idx: &[usize],
        context_length: usize,
        seed: u64,
        step: usize,
    ) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(step as u64));
        Self::build(data, texts, tokenizer, idx, context_length, &mut rng)
    }

    /// Pixels `B x 3 x S x S` and token ids `B x context_length` on `device` (on the CPU the
    /// buffers are moved, not copied).
    pub fn into_tensors(self, device: &Device) -> Result<(Tensor, Tensor)> {
        let s = self.image_size;
        let pixels = Tensor::from_vec(self.pixels, (self.batch, 3, s, s), device)?;
        let ids = Tensor::from_vec(self.ids, (self.batch, self.context_length), device)?;
        Ok((pixels, ids))
    }
}

/// The cached pixels of records `idx` as a `B x 3 x S x S` tensor.
pub fn image_batch(data: &Prepared, idx: &[usize], device: &Device) -> Result<Tensor> {
    let s = data.image_size;
    Ok(Tensor::from_vec(
        data.cache.batch_f32(idx),
        (idx.len(), 3, s, s),
        device,
    )?)
}

/// The batch order of one epoch, derived from `(seed, epoch)` alone.
pub fn epoch_order(train: &[usize], seed: u64, epoch: usize) -> Vec<usize> {
    let mut order = train.to_vec();
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(epoch as u64 + 1)));
    order.shuffle(&mut rng);
    order
}
