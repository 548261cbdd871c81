//! One optimisation step: the objective (CLIP InfoNCE, plus for CXR-CML the metric loss on
//! pseudo-labels that the mixture model assigns to the detached, L2-normalised image
//! embeddings), its gradient (whole batch, or GradCache micro-batches), clipping and the
//! optimiser update.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use cxr_clip::{ClipModel, Recompute};
use cxr_losses::{TripletConfig, WeightedMetricConfig};
use cxr_mixture::{MixtureKind, NuPolicy, PseudoLabelConfig, PseudoLabelSource, PseudoLabeler};
use cxr_optim::Optimizer;

use crate::config::{
    ActivationCheckpointing, ClipLoss, LabelSource, Method, MetricLoss, MixtureModel, TrainConfig,
};
use crate::Result;

/// The mixture pseudo-labeler a config asks for.
pub fn pseudo_labeler(cfg: &TrainConfig) -> Result<PseudoLabeler> {
    let m = &cfg.mixture;
    let source = match m.source {
        LabelSource::PerBatch => PseudoLabelSource::PerBatch,
        LabelSource::Epoch => PseudoLabelSource::Epoch,
        LabelSource::MemoryBank => PseudoLabelSource::MemoryBank {
            capacity: m.bank_capacity,
        },
    };
    let kind = match m.kind {
        MixtureModel::Gaussian => MixtureKind::Gaussian,
        MixtureModel::StudentTOnePass => MixtureKind::StudentTOnePass { nu: m.nu },
        MixtureModel::StudentT => MixtureKind::StudentT {
            nu: NuPolicy::Fixed(m.nu),
        },
    };
    let pcfg = PseudoLabelConfig {
        source,
        k: m.k,
        k_rule: m.k_rule,
        kind,
        covariance: m.covariance,
        reg_covar: m.reg_covar,
        max_iter: m.max_iter,
        tol: m.tol,
        n_init: m.n_init,
        seed: cfg.seed,
        device: crate::device::mixture(&m.device)?,
        // The epoch source's bank before its first refit is the configured bank too.
        epoch_bootstrap_capacity: m.bank_capacity,
    };
    Ok(PseudoLabeler::new(pcfg)?)
}

/// The training objective of a run: the CLIP loss, and for CXR-CML the metric loss with its
/// pseudo-labeler and (weighted loss) learnable log temperature.
pub struct Objective<'a> {
    cfg: &'a TrainConfig,
    /// CXR-CML only.
    pub labeler: Option<PseudoLabeler>,
    log_temperature: Option<Tensor>,
    triplet: TripletConfig,
}

/// The losses of one step (scalars) and the parameter gradients.
pub struct StepLoss {
    pub total: Tensor,
    pub clip: Tensor,
    /// The unweighted metric loss (CXR-CML only).
    pub metric: Option<Tensor>,
    pub grads: GradStore,
}

/// One batch's pseudo-label targets for the metric loss.
enum Targets {
    /// Cluster ids, for the triplet loss.
    Hard(Vec<usize>),
    /// Sharpened, mass-reweighted posteriors (`batch x clusters`), for the weighted loss.
    Soft(Tensor),
}

impl<'a> Objective<'a> {
    pub fn new(cfg: &'a TrainConfig, log_temperature: Option<Tensor>) -> Result<Self> {
        let labeler = match cfg.method {
            Method::CxrCml => Some(pseudo_labeler(cfg)?),
            Method::Baseline | Method::MetaLabels | Method::ZeroShot => None,
        };
        Ok(Self {
            cfg,
            labeler,
            log_temperature,
            triplet: TripletConfig {
                margin: cfg.loss.margin as f32,
                mining: cfg.loss.mining,
                normalise: true,
            },
        })
    }

    /// The same losses and gradients as [`Objective::loss_and_grads`] in one forward pass and
    /// one `backward()` of the whole graph, whatever `loop.checkpoint_activations` says: the
    /// plain formulation, kept as the reference that the segmented path is tested against
    /// (bit for bit) and for A/B measurements. It holds every activation of the batch until
    /// the backward pass ends. With `loop.accumulate` the embeddings are computed per
    /// micro-batch, as the segmented path computes them, and concatenated.
    pub fn loss_and_grads_whole_graph(
        &mut self,
        model: &ClipModel,
        pixels: &Tensor,
        ids: &Tensor,
    ) -> Result<StepLoss> {
        let (mut imgs, mut txts) = (Vec::new(), Vec::new());
        for (s, len) in micro_batches(pixels.dim(0)?, self.cfg.train_loop.accumulate) {
            imgs.push(model.encode_image(&pixels.narrow(0, s, len)?)?);
            txts.push(model.encode_text(&ids.narrow(0, s, len)?)?);
        }
        let img = Tensor::cat(&imgs, 0)?;
        let txt = Tensor::cat(&txts, 0)?;
        let targets = self.targets(&img)?;
        let groups = self.text_groups(ids)?;
        let (total, clip, metric) = self.losses(
            &img,
            &txt,
            model.logit_scale(),
            self.log_temperature.as_ref(),
            targets.as_ref(),
            groups.as_deref(),
        )?;
        let grads = total.backward()?;
        Ok(StepLoss {
            total,
            clip,
            metric,
            grads,
        })
    }

    /// With `loss.clip = "multi-positive"`: one group id per row of the batch's token ids,
    /// equal for identical texts. `None` for InfoNCE.
    fn text_groups(&self, ids: &Tensor) -> Result<Option<Vec<usize>>> {
        match self.cfg.loss.clip {
            ClipLoss::InfoNce => Ok(None),
            ClipLoss::MultiPositive => {
                let rows: Vec<Vec<u32>> = ids.to_dtype(DType::U32)?.to_vec2()?;
                Ok(Some(cxr_losses::groups_of(&rows)))
            }
        }
    }

    /// Pseudo-labels of a batch from its detached, L2-normalised image embeddings; the fit is
    /// updated as the source says, then hard (triplet) or soft (weighted) targets are read off
    /// it. `None` without a labeler.
    fn targets(&mut self, img: &Tensor) -> Result<Option<Targets>> {
        let Some(labeler) = self.labeler.as_mut() else {
            return Ok(None);
        };
        let n = img.dim(0)?;
        let flat: Vec<f32> = cxr_losses::l2_normalise(&img.detach())?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        let view =
            ndarray::ArrayView2::from_shape((n, flat.len() / n), &flat).expect("embedding shape");
        match self.cfg.loss.metric {
            MetricLoss::Triplet => Ok(Some(Targets::Hard(labeler.assign(view)?))),
            MetricLoss::Weighted => {
                let proba = labeler.assign_proba(view)?;
                let k = proba.ncols();
                let posteriors =
                    Tensor::from_vec(proba.iter().copied().collect(), (n, k), img.device())?;
                let soft = cxr_losses::soft_pseudo_labels(&posteriors, self.cfg.loss.sharpen)?;
                Ok(Some(Targets::Soft(soft.to_dtype(img.dtype())?)))
            }
        }
    }

    /// The step objective from embeddings: the CLIP loss (InfoNCE, or with text `groups` the
    /// multi-positive loss) plus, with pseudo-labels, the metric loss (triplet on hard
    /// targets; the released code's weighted loss on soft targets, with distances divided by
    /// `exp(log_temperature)`). Returns (total, clip, metric).
    fn losses(
        &self,
        img: &Tensor,
        txt: &Tensor,
        logit_scale: &Tensor,
        log_temperature: Option<&Tensor>,
        targets: Option<&Targets>,
        groups: Option<&[usize]>,
    ) -> cxr_losses::Result<(Tensor, Tensor, Option<Tensor>)> {
        let clip = match groups {
            Some(groups) => cxr_losses::multi_positive_clip_loss(img, txt, logit_scale, groups)?,
            None => cxr_losses::clip_loss(img, txt, logit_scale)?,
        };
        let metric = match (targets, log_temperature) {
            (None, _) => return Ok((clip.clone(), clip, None)),
            (Some(Targets::Hard(labels)), _) => {
                cxr_losses::triplet_loss(img, labels, &self.triplet)?
            }
            (Some(Targets::Soft(soft)), Some(log_t)) => {
                let wcfg = WeightedMetricConfig {
                    base_margin: self.cfg.loss.margin,
                    min_temperature: self.cfg.loss.temperature_min,
                    max_temperature: self.cfg.loss.temperature_max,
                };
                cxr_losses::weighted_metric_loss(img, txt, soft, &log_t.exp()?, &wcfg)?
            }
            (Some(Targets::Soft(_)), None) => {
                return Err(cxr_losses::LossError::Config(
                    "the weighted metric loss needs its learnable temperature".into(),
                ))
            }
        };
        let total = (&clip + (&metric * self.cfg.loss.metric_weight)?)?;
        Ok((total, clip, Some(metric)))
    }

    /// Losses and gradients of one batch; `params` are the parameters whose gradients are
    /// kept.
    ///
    /// The towers' gradients are taken segment by segment (`cxr_clip::Checkpointed`): the loss
    /// and its gradient with respect to the embeddings first, then each tower's backward pass
    /// from that gradient, block by block, each block's activations freed as soon as the pass
    /// has gone through it (one whole-graph `backward()` would hold every activation until it
    /// ends, on top of the parameter gradients). `loop.checkpoint_activations` says which
    /// blocks are recomputed instead of kept. The gradients are bit-identical in every setting.
    ///
    /// With `loop.accumulate`, micro-batches whose parameter gradient equals the full batch's
    /// exactly: the batch loss is taken on the embeddings of every micro-batch, then its
    /// gradient with respect to the embeddings is sent back through each micro-batch's towers.
    /// With one micro-batch, or when every block is recomputed (`loop.checkpoint_activations
    /// = true`), the towers run forward once, kept as `Checkpointed` (every micro-batch's
    /// block boundaries plus whatever `recompute` keeps). With several micro-batches and kept
    /// blocks, GradCache: the first pass embeds without a graph and each micro-batch runs
    /// forward again, kept, just before its backward pass, so that peak activation memory is
    /// one micro-batch's.
    pub fn loss_and_grads(
        &mut self,
        model: &ClipModel,
        pixels: &Tensor,
        ids: &Tensor,
        params: &[Var],
    ) -> Result<StepLoss> {
        let parts = micro_batches(pixels.dim(0)?, self.cfg.train_loop.accumulate);
        let recompute = recompute(self.cfg.train_loop.checkpoint_activations);
        let keep_first_pass = parts.len() == 1 || recompute == Recompute::All;
        let mut imgs = Vec::new();
        let mut txts = Vec::new();
        // Each micro-batch's (image, text) towers from the first pass, when they are kept.
        let mut kept = Vec::new();
        for &(s, len) in &parts {
            let (px, tok) = (pixels.narrow(0, s, len)?, ids.narrow(0, s, len)?);
            if keep_first_pass {
                let image = model.checkpoint_image(&px, recompute)?;
                let text = model.checkpoint_text(&tok, recompute)?;
                imgs.push(image.embedding().clone());
                txts.push(text.embedding().clone());
                kept.push((image, text));
            } else {
                imgs.push(model.encode_image(&px)?.detach());
                txts.push(model.encode_text(&tok)?.detach());
            }
        }
        let img = Tensor::cat(&imgs, 0)?;
        let txt = Tensor::cat(&txts, 0)?;
        let targets = self.targets(&img)?;
        let groups = self.text_groups(ids)?;
        let scale = model.logit_scale();
        let log_temperature = self.log_temperature.as_ref();
        // Batch-level inputs: the logit scale and, for the weighted loss, the log temperature.
        let mut inputs = vec![&img, &txt, scale];
        inputs.extend(log_temperature);
        let (_, input_grads) = cxr_losses::input_gradients(&inputs, |x| {
            self.losses(
                &x[0],
                &x[1],
                &x[2],
                x.get(3),
                targets.as_ref(),
                groups.as_deref(),
            )
            .map(|o| o.0)
        })?;
        let (total, clip, metric) = self.losses(
            &img,
            &txt,
            &scale.detach(),
            log_temperature.map(Tensor::detach).as_ref(),
            targets.as_ref(),
            groups.as_deref(),
        )?;
        let mut grads = GradStore::default();
        // The logit scale and temperature are used once per batch, not per micro-batch.
        let part =
            cxr_losses::surrogate(&inputs[2..], &input_grads[2..].iter().collect::<Vec<_>>())?
                .backward()?;
        add_grads(&mut grads, &part, params)?;
        let mut kept = kept.into_iter();
        for &(s, len) in &parts {
            let (image, text) = match kept.next() {
                Some(towers) => towers,
                None => (
                    model.checkpoint_image(&pixels.narrow(0, s, len)?, recompute)?,
                    model.checkpoint_text(&ids.narrow(0, s, len)?, recompute)?,
                ),
            };
            let part = image.backward(&input_grads[0].narrow(0, s, len)?)?;
            add_grads(&mut grads, &part, params)?;
            let part = text.backward(&input_grads[1].narrow(0, s, len)?)?;
            add_grads(&mut grads, &part, params)?;
        }
        Ok(StepLoss {
            total,
            clip,
            metric,
            grads,
        })
    }
}

/// `(start, length)` of each of `micro` (at least one) micro-batches of a batch of `n`, all
/// of the same length but the last.
fn micro_batches(n: usize, micro: usize) -> Vec<(usize, usize)> {
    let size = n.div_ceil(micro.max(1)).max(1);
    (0..n).step_by(size).map(|s| (s, size.min(n - s))).collect()
}

/// The towers' recomputation for `loop.checkpoint_activations`.
fn recompute(setting: ActivationCheckpointing) -> Recompute {
    match setting {
        ActivationCheckpointing::Off => Recompute::Lowest(0),
        ActivationCheckpointing::All => Recompute::All,
        ActivationCheckpointing::Lowest(n) => Recompute::Lowest(n),
    }
}

/// `total += part` for the gradients of `params`.
fn add_grads(total: &mut GradStore, part: &GradStore, params: &[Var]) -> Result<()> {
    for p in params {
        if let Some(g) = part.get(p.as_tensor()) {
            let sum = match total.get(p.as_tensor()) {
                Some(t) => (t + g)?,
                None => g.clone(),
            };
            total.insert(p.as_tensor(), sum);
        }
    }
    Ok(())
}

/// Clip the gradient norm of `params` when the config asks for it, then update. Returns the
/// norm before clipping.
pub fn apply(
    cfg: &TrainConfig,
    opt: &mut dyn Optimizer,
    grads: &mut GradStore,
    params: &[Var],
) -> Result<Option<f64>> {
    let grad_norm = match cfg.optim.grad_clip {
        Some(max) => Some(cxr_optim::clip_grad_norm(params, grads, max)?),
        None => None,
    };
    opt.step(grads)?;
    Ok(grad_norm)
}
