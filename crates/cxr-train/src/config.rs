//! The run configuration: one TOML document nesting data, model, text, mixture, loss,
//! optimiser, schedule, loop and evaluation settings.
//!
//! Presets (`demo`, `paper`, `released-code`) are complete configs; a TOML file or CLI
//! overrides (`key.path=value`) change single keys on top of a preset. The resolved config is
//! written into the run directory before step 0 and the run name is derived from it.

use std::path::PathBuf;

use cxr_data::image::PreprocessMode;
use cxr_data::Dataset;
use cxr_losses::Mining;
use cxr_mixture::{ComponentRule, CovarianceType};
use serde::{Deserialize, Serialize};

use crate::{Result, TrainError};

/// What is trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// CLIP loss on report text (IMPRESSION section), as CheXzero was trained; spelled
    /// `baseline` in configs and on the command line.
    Baseline,
    /// CLIP loss on meta-label text ("adenopathy is present, ...").
    MetaLabels,
    /// Meta-labels plus a triplet loss on mixture-model pseudo-labels (the paper's method).
    CxrCml,
    /// No training: the initial weights (`model.weights`) scored zero-shot on the test split,
    /// the paper's first Table 2 row (CheXzero as released).
    ZeroShot,
}

impl Method {
    pub const ALL: [Method; 4] = [
        Method::Baseline,
        Method::MetaLabels,
        Method::CxrCml,
        Method::ZeroShot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Baseline => "baseline",
            Method::MetaLabels => "meta-labels",
            Method::CxrCml => "cxr-cml",
            Method::ZeroShot => "zero-shot",
        }
    }

    /// The row label used in AUC tables when the initial weights have no name
    /// (`model.weights_name`; see [`Method::row_name`]).
    pub fn display_name(self) -> &'static str {
        match self {
            Method::Baseline => "CLIP + report text",
            Method::MetaLabels => "CLIP + meta labels",
            Method::CxrCml => "CXR-CML",
            Method::ZeroShot => "initial weights (zero-shot)",
        }
    }

    /// The row label of this method in a run of `cfg`, named after the initial weights: with
    /// `model.weights_name = "CheXzero"` (the `paper` preset) the rows are the paper's
    /// "CheXzero (as released)", "CheXzero + meta labels", "CheXzero + report text" and
    /// "CXR-CML"; unnamed weights give "<file name> (zero-shot)"; without weights, the
    /// [`Method::display_name`].
    pub fn row_name(self, cfg: &TrainConfig) -> String {
        let named = cfg.model.weights_name.as_deref().filter(|n| !n.is_empty());
        match (self, named) {
            (Method::CxrCml, _) => self.display_name().to_string(),
            (Method::ZeroShot, Some(name)) => format!("{name} (as released)"),
            (Method::ZeroShot, None) => match cfg.model.weights.as_deref() {
                Some(w) => {
                    let w = w.trim_end_matches(['/', '\\']);
                    let file = w.rsplit(['/', '\\']).next().unwrap_or(w);
                    format!("{file} (zero-shot)")
                }
                None => "random init (zero-shot)".to_string(),
            },
            (Method::Baseline, Some(name)) => format!("{name} + report text"),
            (Method::MetaLabels, Some(name)) => format!("{name} + meta labels"),
            (Method::Baseline | Method::MetaLabels, None) => self.display_name().to_string(),
        }
    }

    /// Whether this method trains (every method but [`Method::ZeroShot`]).
    pub fn trains(self) -> bool {
        self != Method::ZeroShot
    }
}

impl std::str::FromStr for Method {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "unknown method `{s}`: expected baseline, meta-labels, cxr-cml or zero-shot"
                ))
            })
    }
}

/// Declares a config-side enum whose TOML spelling is given per variant, with `as_str` (the
/// spelling) and `ALL` (every variant, for messages and tests). Serde reads and writes the same
/// spellings, so an unknown value is an error that lists the valid ones.
macro_rules! config_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling in TOML files and `--set` overrides.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

config_enum! {
    /// What the bootstrap of the test set resamples.
    BootstrapUnit {
        /// Patients with replacement, each with all its images (they share labels and are not
        /// independent draws).
        Patient = "patient",
        /// Images with replacement (CheXzero's bootstrap).
        Image = "image",
    }
}

config_enum! {
    /// How patients are split into train / validation / test.
    PatientSplit {
        /// Patients drawn at random (the paper's patient-level split; the default).
        Random = "random",
        /// Iterative stratification over the 40 labels, still by patient
        /// (`cxr_data::split::patient_stratified_split`): each part gets its share of every
        /// class, so a rare class cannot be missing from a small validation or test part (the
        /// demo's setting).
        Stratified = "stratified",
    }
}

config_enum! {
    /// Which images of a study are used.
    Views {
        /// PA and AP only (the paper).
        Frontal = "frontal",
        All = "all",
    }
}

config_enum! {
    /// What an uncertain (-1) label is (`cxr_data::UncertainPolicy`).
    Uncertain {
        /// A negative: not named in the meta-label text, a negative in the metrics (CheXzero;
        /// the default).
        Negative = "negative",
        /// A positive: named in the meta-label text, a positive in the metrics.
        Positive = "positive",
        /// Unknown: not named in the meta-label text and left out of the metrics (its label
        /// is NaN, which the AUCs skip per class).
        Ignore = "ignore",
    }
}

impl Uncertain {
    pub fn policy(self) -> cxr_data::UncertainPolicy {
        match self {
            Uncertain::Negative => cxr_data::UncertainPolicy::AsNegative,
            Uncertain::Positive => cxr_data::UncertainPolicy::AsPositive,
            Uncertain::Ignore => cxr_data::UncertainPolicy::Ignore,
        }
    }
}

config_enum! {
    /// Image preprocessing (`cxr_data::image::PreprocessMode`).
    Preprocessing {
        /// CheXzero: aspect-preserving resize, zero padding, CheXzero's mean / std.
        CheXzero = "chexzero",
        /// OpenAI CLIP: resize the short side, centre crop, CLIP's mean / std.
        Clip = "clip",
    }
}

impl Preprocessing {
    pub fn mode(self) -> PreprocessMode {
        match self {
            Preprocessing::CheXzero => PreprocessMode::CheXzero,
            Preprocessing::Clip => PreprocessMode::Clip,
        }
    }
}

config_enum! {
    /// Which classes count as rare in the base / rare macro AUCs.
    RareSet {
        /// The paper's fixed 12 rare classes.
        Paper = "paper",
        /// CXR-LT 2024 training counts below `data.rare_threshold` (other datasets' classes
        /// fall back to this run's counts).
        Official = "official",
        /// This run's training counts below `data.rare_threshold`.
        Counts = "counts",
    }
}

config_enum! {
    /// The arithmetic of the CLIP forward and backward (`loop.precision`).
    Precision {
        /// Everything in f32 (the default; bit-reproducible on the CPU).
        F32 = "f32",
        /// bf16 mixed precision: f32 master weights and optimiser state; matmuls and the
        /// activations between them in bf16; LayerNorm, softmax, the residual stream, the
        /// losses and the mixture fit in f32 (`cxr_clip::ClipModel::with_compute_dtype`).
        Bf16 = "bf16",
    }
}

config_enum! {
    /// The CLIP architecture.
    ModelPreset {
        /// A few-layer CLIP for the demo and tests (`model.image_size` px).
        Tiny = "tiny",
        VitB32 = "vit-b-32",
        VitB16 = "vit-b-16",
        VitL14 = "vit-l-14",
    }
}

config_enum! {
    /// How meta-label training text is written.
    MetaLabelStyle {
        /// "adenopathy is present, pleural effusion is present".
        Paper = "paper",
        /// "Adenopathy is present. Pleural Effusion is present."
        ReleasedCode = "released-code",
    }
}

config_enum! {
    /// The zero-shot prompt pairs.
    PromptStyle {
        /// CheXzero's "{}" / "no {}".
        CheXzero = "chexzero",
        /// "{} is present" / "{} is absent".
        PresentAbsent = "present-absent",
    }
}

config_enum! {
    /// The mixture model whose assignments are the pseudo-labels (`cxr_mixture::MixtureKind`,
    /// whose Student-t variants take `mixture.nu`).
    MixtureModel {
        /// A GMM refined by Student-t EM with fixed `nu` (the paper).
        StudentT = "student-t",
        Gaussian = "gaussian",
        /// The released code: the GMM's parameters score one pass of Student-t densities.
        StudentTOnePass = "student-t-one-pass",
    }
}

config_enum! {
    /// Which embeddings each pseudo-label fit sees (`cxr_mixture::PseudoLabelSource`, whose
    /// memory bank takes `mixture.bank_capacity`).
    LabelSource {
        MemoryBank = "memory-bank",
        /// The paper's wording; K is clipped to the batch.
        PerBatch = "per-batch",
        /// Refit on all training embeddings after each epoch (a memory bank of
        /// `mixture.bank_capacity` labels the first epoch).
        Epoch = "epoch",
    }
}

config_enum! {
    /// The CLIP loss between images and their training texts (every method).
    ClipLoss {
        /// Symmetric InfoNCE with one positive per image, its own text (CLIP; the paper).
        InfoNce = "infonce",
        /// Pairs whose texts are identical (same token ids: every "normal" study of a batch)
        /// are positives of each other, with targets uniform over them
        /// (`cxr_losses::multi_positive_clip_loss`). Identical texts embed identically, so this
        /// equals InfoNCE in value and gradient up to rounding (tested); kept as an ablation.
        MultiPositive = "multi-positive",
    }
}

config_enum! {
    /// The metric loss on pseudo-labels (CXR-CML).
    MetricLoss {
        /// Triplet margin loss on hard assignments (the paper).
        Triplet = "triplet",
        /// The released code's weighted metric loss on soft assignments.
        Weighted = "weighted",
    }
}

config_enum! {
    /// The optimiser.
    OptimizerKind {
        AdamW = "adamw",
        /// SGD with momentum (CheXzero).
        Sgd = "sgd",
    }
}

config_enum! {
    /// The learning-rate schedule.
    ScheduleKind {
        /// ReduceLROnPlateau on the validation loss (the paper).
        Plateau = "plateau",
        /// Cosine decay with linear warmup over the run's steps.
        Cosine = "cosine",
        Constant = "constant",
    }
}

config_enum! {
    /// A CLIP tower.
    Tower {
        /// The image encoder and its projection.
        Vision = "vision",
        /// The text encoder and its projection.
        Text = "text",
    }
}

impl Tower {
    /// Whether the parameter `name` (Hugging Face naming) belongs to this tower.
    pub fn owns(self, name: &str) -> bool {
        match self {
            Tower::Vision => {
                name.starts_with("vision_model.") || name.starts_with("visual_projection")
            }
            Tower::Text => name.starts_with("text_model.") || name.starts_with("text_projection"),
        }
    }
}

/// Where images, labels and reports come from and how they are split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// The label format: `cxr-lt` (CXR-LT 2024, the paper), `mimic` (MIMIC-CXR-JPG's CheXpert
    /// labels with its metadata), `chexpert` or `nih` (ChestX-ray14). Datasets without reports
    /// (CheXpert, NIH) train the meta-label methods only.
    pub dataset: Dataset,
    /// Dataset root: image paths in the label file are relative to it (MIMIC-CXR-JPG: the
    /// folder holding `files/`). `None`: the synthetic demo dataset (CXR-LT only), generated
    /// into `synth_dir` (or reused from there).
    pub root: Option<PathBuf>,
    /// Label CSV. Default: the dataset's usual file under the root (CXR-LT:
    /// `train_labeled.csv`; CheXpert: `CheXpert-v1.0-small/train.csv`; NIH:
    /// `Data_Entry_2017_v2020.csv`; MIMIC: `mimic-cxr-2.0.0-chexpert.csv`).
    pub labels: Option<PathBuf>,
    /// Folder holding MIMIC-CXR report texts (`files/pXX/pSUBJECT/sSTUDY.txt`), needed by the
    /// baseline. Default: the data root.
    pub reports_root: Option<PathBuf>,
    /// Synthetic dataset: patients, seed and folder (used when `root` is `None`).
    pub synth_patients: usize,
    pub synth_seed: u64,
    pub synth_image_size: u32,
    pub synth_dir: Option<PathBuf>,
    /// `frontal` (PA/AP, the paper) or `all`.
    pub views: Views,
    /// Uncertain (-1) labels: `negative` (default, CheXzero), `positive`, or `ignore` (not
    /// named in the meta-label text and left out of the AUCs). Blank labels are negatives.
    pub uncertain: Uncertain,
    /// Patient-level test fraction (paper: 0.2) and validation fraction of the training part.
    pub test_fraction: f64,
    pub val_fraction: f64,
    /// `random` (the paper) or `stratified` (every part gets its share of every class).
    pub split: PatientSplit,
    /// Preprocessing: `chexzero` or `clip`; the output side equals the model's image size.
    pub preprocess: Preprocessing,
    /// Preprocessed image cache folder. Default: `.cache/images/<key>` under the working dir.
    pub cache_dir: Option<PathBuf>,
    /// Rare classes: `paper` (the paper's fixed 12), `official` (CXR-LT 2024 training counts
    /// below `rare_threshold`), or `counts` (this run's training counts below the threshold).
    pub rare_set: RareSet,
    pub rare_threshold: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: Dataset::CxrLt,
            root: None,
            labels: None,
            reports_root: None,
            synth_patients: 400,
            synth_seed: 0,
            synth_image_size: 128,
            synth_dir: None,
            views: Views::Frontal,
            uncertain: Uncertain::Negative,
            test_fraction: 0.2,
            val_fraction: 0.1,
            split: PatientSplit::Random,
            preprocess: Preprocessing::CheXzero,
            cache_dir: None,
            rare_set: RareSet::Paper,
            rare_threshold: 1000,
        }
    }
}

/// The CLIP architecture and its initial weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// `tiny`, `vit-b-32`, `vit-b-16` or `vit-l-14`. Ignored for the architecture when
    /// `weights` is a folder or hub id with its own `config.json`.
    pub preset: ModelPreset,
    /// Input side for the `tiny` preset (the ViT presets use 224).
    pub image_size: usize,
    /// Initial weights: a folder with `config.json` + `model.safetensors`, a Hugging Face id
    /// found in the local hub cache, or an OpenAI/CheXzero `.pt`. `None`: random init. With
    /// weights, the architecture, input size and context length are the weights' own.
    pub weights: Option<String>,
    /// What the initial weights are called in tables: "CheXzero" gives the rows "CheXzero (as
    /// released)" (zero-shot, no training) and "CheXzero + meta labels" (`paper` and
    /// `released-code` presets). `None`: "CLIP + meta labels" and the weights' file name.
    pub weights_name: Option<String>,
    /// Text context length (CLIP: 77).
    pub context_length: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            preset: ModelPreset::Tiny,
            image_size: 64,
            weights: None,
            weights_name: None,
            context_length: 77,
        }
    }
}

/// How training text and zero-shot prompts are written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextConfig {
    /// `paper` ("adenopathy is present, pleural effusion is present") or `released-code`
    /// ("Adenopathy is present. Pleural Effusion is present.").
    pub meta_label: MetaLabelStyle,
    /// Shuffle the class order inside each meta-label text (seeded per step).
    pub shuffle_order: bool,
    /// Zero-shot prompt pairs: `chexzero` ("{}" / "no {}") or `present-absent`.
    pub prompts: PromptStyle,
}

impl Default for TextConfig {
    fn default() -> Self {
        Self {
            meta_label: MetaLabelStyle::Paper,
            shuffle_order: false,
            prompts: PromptStyle::CheXzero,
        }
    }
}

/// The mixture model whose cluster assignments are the triplet loss's pseudo-labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MixtureConfig {
    /// Number of components (paper: 40).
    pub k: usize,
    /// `fixed` (K clipped to the points of a fit) or `released-code` (the released code's
    /// per-batch rule: min(5, N/3) below 50 points, else min(K, N/4); 5 at batch 32).
    pub k_rule: ComponentRule,
    /// `student-t` (GMM refined by a Student-t mixture, the paper), `gaussian`, or
    /// `student-t-one-pass` (the released code: the GMM's parameters score one pass of
    /// Student-t densities with `nu`, no Student-t EM).
    pub kind: MixtureModel,
    /// Degrees of freedom of the Student-t mixture (paper best: 6).
    pub nu: f64,
    /// `memory-bank` (default), `per-batch` (the paper's wording; K is clipped to the batch)
    /// or `epoch` (refit on all training embeddings each epoch).
    pub source: LabelSource,
    /// Memory-bank capacity in embeddings; also the bank the `epoch` source labels from
    /// before its first refit.
    pub bank_capacity: usize,
    /// `diag` or `full` (full on 512-d embeddings needs many more points than a batch).
    pub covariance: CovarianceType,
    pub reg_covar: f64,
    pub max_iter: usize,
    /// Convergence threshold on the mean log-likelihood of each fit.
    pub tol: f64,
    /// Initialisations of each cold (not warm-started) fit, best kept (released code: 3).
    pub n_init: usize,
    /// Where the E-step runs: `cpu`, or `cuda` / `cuda:N` (a build with the `cuda` feature).
    pub device: String,
}

impl Default for MixtureConfig {
    fn default() -> Self {
        Self {
            k: 40,
            k_rule: ComponentRule::Fixed,
            kind: MixtureModel::StudentT,
            nu: 6.0,
            source: LabelSource::MemoryBank,
            bank_capacity: 1024,
            covariance: CovarianceType::Diag,
            reg_covar: 1e-4,
            max_iter: 20,
            tol: 1e-3,
            n_init: 1,
            device: "cpu".into(),
        }
    }
}

/// Loss weights and the metric loss on pseudo-labels (CXR-CML only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// `infonce` (CLIP, the paper; default) or `multi-positive` (identical texts of a batch
    /// are positives of each other).
    pub clip: ClipLoss,
    /// `triplet` (the paper: triplet margin loss on hard cluster assignments) or `weighted`
    /// (the released code: weighted metric loss on image-text distances with soft
    /// pseudo-labels and a learnable temperature; a documented reconstruction).
    pub metric: MetricLoss,
    /// Weight of the metric loss (triplet or weighted) next to the CLIP loss (paper: equal,
    /// 1.0). Configs written before it weighted either loss call it `triplet_weight`.
    #[serde(alias = "triplet_weight")]
    pub metric_weight: f64,
    /// Triplet margin alpha (not stated in the paper; 0.2 on unit-norm embeddings); with
    /// `metric = "weighted"`, the base margin `m` of `m * (1 + exp(-mean_pos))` (released: 0.3).
    pub margin: f64,
    /// `batch-all`, `batch-hard` or `semi-hard` (triplet only).
    pub mining: Mining,
    /// Sharpening temperature of the soft pseudo-labels, `softmax(log p / sharpen)`
    /// (weighted only; released code: 0.05).
    pub sharpen: f64,
    /// Initial value of the learnable distance temperature (weighted only; stored as the
    /// parameter `metric_loss.log_temperature` and checkpointed with the model).
    pub temperature_init: f64,
    /// Bounds of the distance temperature (weighted only): the loss clamps
    /// `exp(log_temperature)` to `[temperature_min, temperature_max]` in the forward pass, as
    /// CLIP clamps its logit scale, so the gradient stops at a bound. Without the lower bound
    /// the temperature collapses to 0 whenever positives are closer than negatives (the loss
    /// then reaches 0 without moving an embedding). Defaults 0.01 (the temperature of CLIP's
    /// largest logit scale, 100) and 100.
    pub temperature_min: f64,
    pub temperature_max: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            clip: ClipLoss::InfoNce,
            metric: MetricLoss::Triplet,
            metric_weight: 1.0,
            margin: 0.2,
            mining: Mining::BatchAll,
            sharpen: 0.05,
            temperature_init: 1.0,
            temperature_min: cxr_losses::MIN_TEMPERATURE,
            temperature_max: cxr_losses::MAX_TEMPERATURE,
        }
    }
}

/// The optimiser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// `adamw` or `sgd` (CheXzero: SGD, momentum 0.9).
    pub kind: OptimizerKind,
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub momentum: f64,
    /// Clip the global gradient norm to this value (`None`: no clipping).
    pub grad_clip: Option<f64>,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            kind: OptimizerKind::AdamW,
            lr: 5e-4,
            weight_decay: 0.05,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-6,
            momentum: 0.9,
            grad_clip: Some(1.0),
        }
    }
}

/// The learning-rate schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// `plateau` (ReduceLROnPlateau on validation loss, the paper), `cosine` or `constant`.
    pub kind: ScheduleKind,
    pub factor: f64,
    pub patience: usize,
    pub warmup_steps: usize,
    pub min_lr: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Plateau,
            factor: 0.1,
            patience: 2,
            warmup_steps: 0,
            min_lr: 0.0,
        }
    }
}

/// The training loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoopConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Stop after this many optimiser steps in total (tests, smoke runs).
    pub max_steps: Option<usize>,
    /// Checkpoints kept besides `best` (the newest ones).
    pub keep_last: usize,
    /// Stop when validation mean AUC has not improved for this many epochs.
    pub early_stop_patience: Option<usize>,
    /// Show progress bars.
    pub progress: bool,
    /// Towers kept frozen (not updated): any of `vision`, `text`.
    pub freeze: Vec<Tower>,
    /// Split each batch into this many micro-batches with the exact full-batch gradient
    /// (GradCache: the contrastive and triplet losses still see the whole batch); saves memory.
    pub accumulate: usize,
    /// Also score validation zero-shot AUC every this many steps (logged as `validation`
    /// records in `metrics.jsonl`); the per-epoch validation still selects `best/`.
    pub validate_every: Option<usize>,
    /// Also write a checkpoint every this many steps inside an epoch (an epoch of real data
    /// takes hours); a resume from it replays the rest of the epoch exactly. Runtime only.
    pub checkpoint_every: Option<usize>,
    /// Where the model trains: `cpu`, `cuda` or `cuda:N` (CUDA needs a build with the `cuda`
    /// feature). Runtime only: a run may resume on another device.
    pub device: String,
    /// `f32` (default) or `bf16` mixed precision for the model's forward and backward, in
    /// training and evaluation (f32 master weights, optimiser state, losses and mixture fit).
    pub precision: Precision,
    /// Also write the metrics as TensorBoard scalars (`events.out.tfevents.*` beside
    /// `metrics.jsonl`; `tensorboard --logdir runs/`). Runtime only.
    pub tensorboard: bool,
    /// Build the next batch (cache read, normalisation, text, tokens) on a second thread while
    /// a step runs; the batches, and so the run, are bit-identical either way (`false`: build
    /// each batch just before its step). Runtime only.
    pub prefetch: bool,
    /// Activation checkpointing: `true` keeps only each transformer block's input and the
    /// backward pass recomputes every block (a step's activation memory is then one block's
    /// plus the block boundaries, for one more forward pass of compute); a number `N`
    /// recomputes only the embedding stage and the lowest `N` blocks of each tower, the
    /// blocks above keeping their activations. Either way, and with `false` (nothing
    /// recomputed), each tower's backward pass runs block by block and frees a block's
    /// activations as soon as it has passed it. Combines with `accumulate`; the gradients
    /// are bit-identical in every setting. Runtime only.
    pub checkpoint_activations: ActivationCheckpointing,
}

/// `loop.checkpoint_activations`: which transformer blocks the backward pass recomputes
/// instead of keeping their activations from the forward pass. In TOML `false`, `true` or a
/// number of blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ActivationCheckpointing {
    /// `false`: nothing is recomputed.
    #[default]
    Off,
    /// `true`: every block is recomputed.
    All,
    /// `N`: the embedding stage and the lowest `N` blocks of each tower are recomputed
    /// (`0` is `false`).
    Lowest(usize),
}

impl Serialize for ActivationCheckpointing {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match *self {
            ActivationCheckpointing::Off => serializer.serialize_bool(false),
            ActivationCheckpointing::All => serializer.serialize_bool(true),
            ActivationCheckpointing::Lowest(n) => serializer.serialize_u64(n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for ActivationCheckpointing {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ActivationCheckpointing;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or a number of transformer blocks to recompute")
            }
            fn visit_bool<E: serde::de::Error>(
                self,
                v: bool,
            ) -> std::result::Result<Self::Value, E> {
                Ok(if v {
                    ActivationCheckpointing::All
                } else {
                    ActivationCheckpointing::Off
                })
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
                usize::try_from(v)
                    .map(ActivationCheckpointing::Lowest)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl LoopConfig {
    /// Whether the parameter `name` belongs to a frozen tower.
    pub fn is_frozen(&self, name: &str) -> bool {
        self.freeze.iter().any(|tower| tower.owns(name))
    }
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            epochs: 8,
            batch_size: 32,
            max_steps: None,
            keep_last: 2,
            early_stop_patience: None,
            progress: true,
            freeze: Vec::new(),
            accumulate: 1,
            validate_every: None,
            checkpoint_every: None,
            device: "cpu".into(),
            precision: Precision::F32,
            tensorboard: true,
            prefetch: true,
            checkpoint_activations: ActivationCheckpointing::Off,
        }
    }
}

/// Evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Bootstrap resamples for the 95% CIs (0: none).
    pub bootstrap: usize,
    /// What the bootstrap resamples: patients (default) or images.
    pub bootstrap_unit: BootstrapUnit,
    /// Write the figures (ROC, long-tail AUC, t-SNE) with the test evaluation.
    pub figures: bool,
    /// t-SNE is exact (quadratic): at most this many test images, a seeded sample.
    pub tsne_max_points: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            bootstrap: 1000,
            bootstrap_unit: BootstrapUnit::Patient,
            figures: true,
            tsne_max_points: 2000,
        }
    }
}

/// A complete run configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub method: Method,
    pub seed: u64,
    /// Repeat the whole job (train, cv, ablation) with this many seeds, `seed`, `seed + 1`,
    /// ..., each in `seed-<i>/` of the output folder, on the split (and folds) of `seed`;
    /// `seeds.json` and `report.md` then give mean ± std across seeds and the paired
    /// differences from the first method (`cxr_train::seeds`; `--seeds`). 1 (the default): one
    /// run in today's layout; not written to a run's `config.toml` then.
    #[serde(default = "one_seed", skip_serializing_if = "is_one_seed")]
    pub seeds: usize,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub text: TextConfig,
    pub mixture: MixtureConfig,
    pub loss: LossConfig,
    pub optim: OptimConfig,
    pub schedule: ScheduleConfig,
    #[serde(rename = "loop")]
    pub train_loop: LoopConfig,
    pub eval: EvalConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::demo()
    }
}

fn one_seed() -> usize {
    1
}

fn is_one_seed(n: &usize) -> bool {
    *n == 1
}

/// Named presets.
pub const PRESETS: [&str; 3] = ["demo", "paper", "released-code"];

impl TrainConfig {
    /// Synthetic data, a tiny CLIP, minutes on 2 CPU cores.
    /// Zero-shot prompts are "{} is present" / "{} is absent": a CLIP trained from scratch has
    /// never seen CheXzero's bare "{}" / "no {}", which lean on pretrained CLIP's language.
    pub fn demo() -> Self {
        Self {
            method: Method::CxrCml,
            seed: 0,
            seeds: 1,
            // Stratified by patient, with a larger validation part: every one of the 40
            // classes has positives in train, validation and test (the synthetic data gives
            // each enough positive patients), so no class drops out of the table.
            data: DataConfig {
                split: PatientSplit::Stratified,
                val_fraction: 0.15,
                ..DataConfig::default()
            },
            model: ModelConfig::default(),
            text: TextConfig {
                prompts: PromptStyle::PresentAbsent,
                ..TextConfig::default()
            },
            mixture: MixtureConfig {
                bank_capacity: 512,
                ..MixtureConfig::default()
            },
            loss: LossConfig::default(),
            optim: OptimConfig::default(),
            schedule: ScheduleConfig::default(),
            train_loop: LoopConfig::default(),
            eval: EvalConfig::default(),
        }
    }

    /// The paper's setting: ViT-B/32 initialised from a CheXzero checkpoint (`model.weights`,
    /// which the CLI requires: [`TrainConfig::require_weights`]), 224 px, batch 32, K = 40,
    /// Student-t nu = 6, equal loss weights, ReduceLROnPlateau(0.1, patience 2). Its Table 2
    /// rows are CheXzero scored zero-shot as released, CheXzero + meta labels and CXR-CML.
    /// The learning rate is not stated in the paper; 1e-5 is our choice (documented).
    pub fn paper() -> Self {
        let mut c = Self::demo();
        c.data.rare_set = RareSet::Paper;
        // The paper's random patient-level split (the demo stratifies its tiny data).
        c.data.split = PatientSplit::Random;
        c.data.val_fraction = DataConfig::default().val_fraction;
        c.model = ModelConfig {
            preset: ModelPreset::VitB32,
            image_size: 224,
            weights: None,
            weights_name: Some("CheXzero".into()),
            context_length: 77,
        };
        c.mixture = MixtureConfig::default();
        c.text = TextConfig::default();
        c.optim = OptimConfig {
            lr: 1e-5,
            weight_decay: 0.1,
            ..OptimConfig::default()
        };
        c.train_loop.epochs = 10;
        c
    }

    /// The released CXR-CML implementation's values (see the reference notes): AdamW lr 1e-6,
    /// weight decay 1e-4, 10 epochs, plateau patience 3, per-batch full-covariance GMM with
    /// the released K rule (5 at batch 32) scored by one Student-t pass with nu = 8, the weighted metric loss on soft pseudo-labels (base margin 0.3),
    /// "Adenopathy is present. ..." text, init from a CheXzero checkpoint (set `model.weights`).
    pub fn released_code() -> Self {
        let mut c = Self::paper();
        c.text.meta_label = MetaLabelStyle::ReleasedCode;
        c.mixture.source = LabelSource::PerBatch;
        c.mixture.kind = MixtureModel::StudentTOnePass;
        c.mixture.nu = 8.0;
        c.mixture.covariance = CovarianceType::Full;
        c.optim = OptimConfig {
            lr: 1e-6,
            weight_decay: 1e-4,
            beta2: 0.999,
            eps: 1e-8,
            ..OptimConfig::default()
        };
        c.schedule.patience = 3;
        // Per batch: min(5, N/3) below 50 points, so 5 clusters at batch 32; min(40, N/4) above.
        c.mixture.k = 40;
        c.mixture.k_rule = ComponentRule::ReleasedCode;
        c.mixture.max_iter = 100;
        c.mixture.n_init = 3;
        c.loss.metric = MetricLoss::Weighted;
        c.loss.margin = 0.3;
        c
    }

    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "demo" => Ok(Self::demo()),
            "paper" => Ok(Self::paper()),
            "released-code" => Ok(Self::released_code()),
            other => Err(TrainError::Config(format!(
                "unknown preset `{other}`: expected one of {}",
                PRESETS.join(", ")
            ))),
        }
    }

    /// The methods a run compares when none are named. With initial weights (`model.weights`)
    /// they are the paper's Table 2 rows, all from that checkpoint: the weights scored
    /// zero-shot as they are, fine-tuned on meta-labels, and CXR-CML. Without (random init,
    /// the demo) a zero-shot row would score an untrained model, so the rows are training on
    /// report text (where the dataset has reports), on meta-labels, and CXR-CML.
    pub fn default_methods(&self) -> Vec<Method> {
        if self.model.weights.is_some() {
            return vec![Method::ZeroShot, Method::MetaLabels, Method::CxrCml];
        }
        if self.data.dataset.has_reports() {
            vec![Method::Baseline, Method::MetaLabels, Method::CxrCml]
        } else {
            vec![Method::MetaLabels, Method::CxrCml]
        }
    }

    /// The presets that fine-tune a checkpoint (`paper`, `released-code`: CheXzero) refuse to
    /// start without one, rather than train ViT-B/32 from random weights.
    pub fn require_weights(&self, preset: &str) -> Result<()> {
        if matches!(preset, "paper" | "released-code") && self.model.weights.is_none() {
            return Err(TrainError::Config(format!(
                "--preset {preset} fine-tunes a CheXzero checkpoint and scores it zero-shot: pass \
                 --weights PATH.pt (one of the best_*.pt files CheXzero releases, see \
                 github.com/rajpurkarlab/CheXzero) or set model.weights; any CLIP weights the \
                 tool reads work (a Hugging Face folder or hub id, an OpenAI-format .pt)"
            )));
        }
        Ok(())
    }

    /// Parse a TOML document. Keys it omits take the values of `base`.
    pub fn from_toml_over(base: &Self, text: &str) -> Result<Self> {
        let mut value = toml::Value::try_from(base)
            .map_err(|e| TrainError::Config(format!("cannot serialise config: {e}")))?;
        let patch: toml::Value =
            toml::from_str(text).map_err(|e| TrainError::Config(format!("invalid TOML: {e}")))?;
        merge(&mut value, patch);
        rename_old_keys(&mut value);
        let cfg: Self = value
            .try_into()
            .map_err(|e| TrainError::Config(format!("invalid config: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Apply one `dotted.key=value` override; the value is parsed as a TOML literal, falling
    /// back to a string (`data.root=/mnt/mimic` works without quotes).
    pub fn set(&mut self, assignment: &str) -> Result<()> {
        let (key, raw) = assignment.split_once('=').ok_or_else(|| {
            TrainError::Config(format!(
                "override `{assignment}` is not of the form key=value"
            ))
        })?;
        let key = key.trim();
        let raw = raw.trim();
        let literal = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        let mut value = toml::Value::try_from(&*self)
            .map_err(|e| TrainError::Config(format!("cannot serialise config: {e}")))?;
        let mut slot = &mut value;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let table = slot.as_table_mut().ok_or_else(|| {
                TrainError::Config(format!("`{}` is not a section", parts[..i].join(".")))
            })?;
            if i + 1 == parts.len() {
                // Optional keys serialise as absent, so allow creating them.
                table.insert(part.to_string(), literal.clone());
                break;
            }
            slot = table.get_mut(*part).ok_or_else(|| {
                TrainError::Config(format!("unknown config section `{part}` in `{key}`"))
            })?;
        }
        rename_old_keys(&mut value);
        let cfg: Self = value
            .try_into()
            .map_err(|e| TrainError::Config(format!("override `{assignment}`: {e}")))?;
        cfg.validate()?;
        *self = cfg;
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("TrainConfig always serialises")
    }

    /// A readable run name derived from the settings that matter for comparisons.
    pub fn run_name(&self) -> String {
        let mut name = format!(
            "{}-{}-bs{}-e{}-s{}",
            self.method.as_str(),
            self.model.preset.as_str(),
            self.train_loop.batch_size,
            self.train_loop.epochs,
            self.seed
        );
        if self.method == Method::CxrCml {
            let mix = match self.mixture.kind {
                MixtureModel::Gaussian => "gauss".to_string(),
                MixtureModel::StudentTOnePass => format!("nu{}onepass", self.mixture.nu),
                MixtureModel::StudentT => format!("nu{}", self.mixture.nu),
            };
            let k = match self.mixture.k_rule {
                ComponentRule::ReleasedCode => format!("released{}", self.mixture.k),
                ComponentRule::Fixed => self.mixture.k.to_string(),
            };
            name.push_str(&format!("-k{k}-{mix}-{}", self.mixture.source));
        }
        if self.loss.clip == ClipLoss::MultiPositive {
            name.push_str("-multipos");
        }
        if self.train_loop.precision != Precision::F32 {
            name.push_str(&format!("-{}", self.train_loop.precision));
        }
        name
    }

    /// Checks that cannot be expressed in the types; run before any work.
    // `!(x > 0.0)` on purpose: it also rejects NaN.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn validate(&self) -> Result<()> {
        let err = |m: String| Err(TrainError::Config(m));
        if !(0.0..1.0).contains(&self.data.test_fraction) || self.data.test_fraction == 0.0 {
            return err(format!(
                "data.test_fraction = {} must be in (0, 1)",
                self.data.test_fraction
            ));
        }
        if !(0.0..1.0).contains(&self.data.val_fraction) {
            return err(format!(
                "data.val_fraction = {} must be in [0, 1)",
                self.data.val_fraction
            ));
        }
        if self.train_loop.batch_size < 2 {
            return err(
                "loop.batch_size must be at least 2 (the contrastive loss needs negatives)".into(),
            );
        }
        crate::device::parse("loop.device", &self.train_loop.device)?;
        crate::device::parse("mixture.device", &self.mixture.device)?;
        if self.mixture.n_init == 0 || !(self.mixture.tol >= 0.0) {
            return err(format!(
                "mixture.n_init = {} must be at least 1 and mixture.tol = {} non-negative",
                self.mixture.n_init, self.mixture.tol
            ));
        }
        if self.method == Method::Baseline && !self.data.dataset.has_reports() {
            return err(format!(
                "the baseline trains on MIMIC-CXR report text, which data.dataset = {} does not \
                 have: train meta-labels or cxr-cml on it (--method meta-labels --method cxr-cml)",
                self.data.dataset
            ));
        }
        if Tower::ALL
            .iter()
            .all(|t| self.train_loop.freeze.contains(t))
        {
            return err("loop.freeze cannot freeze both towers: nothing would train".into());
        }
        if self.train_loop.accumulate == 0
            || self.train_loop.accumulate > self.train_loop.batch_size
        {
            return err(format!(
                "loop.accumulate = {} must be between 1 and loop.batch_size",
                self.train_loop.accumulate
            ));
        }
        if self.train_loop.epochs == 0 {
            return err("loop.epochs must be at least 1".into());
        }
        if self.seeds == 0 {
            return err("seeds must be at least 1 (1: a single run)".into());
        }
        self.validate_objective()?;
        if self.model.context_length < 2 {
            return err("model.context_length must be at least 2".into());
        }
        Ok(())
    }

    /// The checks of the mixture, loss and optimiser sections (part of [`Self::validate`]).
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    fn validate_objective(&self) -> Result<()> {
        let err = |m: String| Err(TrainError::Config(m));
        if self.mixture.k < 2 {
            return err(format!("mixture.k = {} must be at least 2", self.mixture.k));
        }
        if !(self.mixture.nu > 0.0) {
            return err(format!("mixture.nu = {} must be positive", self.mixture.nu));
        }
        if !(self.optim.lr > 0.0 && self.optim.lr.is_finite()) {
            return err(format!("optim.lr = {} must be positive", self.optim.lr));
        }
        if !(self.loss.margin >= 0.0) || !(self.loss.metric_weight >= 0.0) {
            return err("loss.margin and loss.metric_weight must be non-negative".into());
        }
        if !(self.loss.sharpen > 0.0 && self.loss.sharpen.is_finite()) {
            return err(format!(
                "loss.sharpen = {} must be positive",
                self.loss.sharpen
            ));
        }
        if !(self.loss.temperature_init > 0.0 && self.loss.temperature_init.is_finite()) {
            return err(format!(
                "loss.temperature_init = {} must be positive",
                self.loss.temperature_init
            ));
        }
        let (lo, hi) = (self.loss.temperature_min, self.loss.temperature_max);
        if !(lo > 0.0 && hi.is_finite() && lo <= hi) {
            return err(format!(
                "loss.temperature_min = {lo} and loss.temperature_max = {hi} must satisfy \
                 0 < temperature_min <= temperature_max"
            ));
        }
        self.validate_per_batch_k()?;
        Ok(())
    }

    /// `mixture.source = "per-batch"` fits each batch alone. With `mixture.k_rule = "fixed"`
    /// and K at least the batch size, K is clipped to the batch and every image is its own
    /// cluster: no triplet exists and CXR-CML silently equals the meta-label run. Such a
    /// config is an error (rather than a silent clipping rule) that says what to set: K below
    /// `loop.batch_size` (a final short batch of an epoch may still clip K, warned once), the
    /// released code's K rule (5 at batch 32), or the memory-bank source.
    fn validate_per_batch_k(&self) -> Result<()> {
        let (m, batch) = (&self.mixture, self.train_loop.batch_size);
        if self.method == Method::CxrCml
            && m.source == LabelSource::PerBatch
            && m.k_rule == ComponentRule::Fixed
            && m.k >= batch
        {
            return Err(TrainError::Config(format!(
                "mixture.k = {} with mixture.source = \"per-batch\" and mixture.k_rule = \"fixed\" \
                 puts every image of a batch of {batch} in its own cluster, so no triplet exists: \
                 set mixture.k below loop.batch_size (e.g. mixture.k = {}), mixture.k_rule = \
                 \"released-code\", or mixture.source = \"memory-bank\"",
                m.k,
                (batch / 4).max(2)
            )));
        }
        Ok(())
    }
}

/// Moves keys written under an old name onto the current one, overriding it: a file or
/// override naming the old key sits beside the new key the base config serialised, which serde
/// would reject as a duplicate (its alias only covers documents that hold one of the two).
fn rename_old_keys(value: &mut toml::Value) {
    if let Some(loss) = value.get_mut("loss").and_then(|v| v.as_table_mut()) {
        if let Some(w) = loss.remove("triplet_weight") {
            loss.insert("metric_weight".into(), w);
        }
    }
}

/// Recursively overlay `patch` onto `base` (tables merge, everything else replaces).
fn merge(base: &mut toml::Value, patch: toml::Value) {
    match (base, patch) {
        (toml::Value::Table(b), toml::Value::Table(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_round_trip_through_toml() {
        for name in PRESETS {
            let cfg = TrainConfig::preset(name).unwrap();
            cfg.validate().unwrap();
            let back = TrainConfig::from_toml_over(&TrainConfig::demo(), &cfg.to_toml()).unwrap();
            assert_eq!(back, cfg, "preset {name}");
        }
    }

    #[test]
    fn only_the_demo_stratifies_its_split() {
        let demo = TrainConfig::demo();
        assert_eq!(demo.data.split, PatientSplit::Stratified);
        assert_eq!(demo.data.val_fraction, 0.15);
        for c in [TrainConfig::paper(), TrainConfig::released_code()] {
            assert_eq!(c.data.split, PatientSplit::Random);
            assert_eq!(c.data.val_fraction, DataConfig::default().val_fraction);
        }
        let mut c = TrainConfig::paper();
        c.set("data.split=stratified").unwrap();
        assert_eq!(c.data.split, PatientSplit::Stratified);
        let e = c.set("data.split=balanced").unwrap_err().to_string();
        assert!(e.contains("stratified"), "{e}");
    }

    #[test]
    fn paper_preset_has_the_papers_values() {
        let c = TrainConfig::paper();
        assert_eq!(c.train_loop.batch_size, 32);
        assert_eq!(c.mixture.k, 40);
        assert_eq!(c.mixture.nu, 6.0);
        assert_eq!(c.loss.metric_weight, 1.0);
        assert_eq!((c.schedule.factor, c.schedule.patience), (0.1, 2));
        assert_eq!(c.model.image_size, 224);
        assert_eq!(c.model.preset, ModelPreset::VitB32);
        let r = TrainConfig::released_code();
        assert_eq!(
            (r.optim.lr, r.schedule.patience, r.mixture.nu),
            (1e-6, 3, 8.0)
        );
        assert_eq!((r.mixture.k, r.mixture.n_init), (40, 3));
        assert_eq!(r.mixture.k_rule, ComponentRule::ReleasedCode);
        assert_eq!(r.mixture.kind, MixtureModel::StudentTOnePass);
        assert!(
            r.run_name().contains("-kreleased40-nu8onepass-"),
            "{}",
            r.run_name()
        );
        assert_eq!(r.loss.metric, MetricLoss::Weighted);
        assert_eq!((r.loss.margin, r.loss.sharpen), (0.3, 0.05));
        assert_eq!(c.loss.metric, MetricLoss::Triplet);
    }

    #[test]
    fn overrides_set_nested_and_optional_keys() {
        let mut c = TrainConfig::demo();
        c.set("loop.batch_size=16").unwrap();
        c.set("mixture.nu = 1.5").unwrap();
        c.set("data.root=/mnt/mimic").unwrap();
        c.set("method=\"baseline\"").unwrap();
        assert_eq!(c.train_loop.batch_size, 16);
        assert_eq!(c.mixture.nu, 1.5);
        assert_eq!(
            c.data.root.as_deref(),
            Some(std::path::Path::new("/mnt/mimic"))
        );
        assert_eq!(c.method, Method::Baseline);
        // The metric-loss weight under its old name, as an override and in a saved file.
        c.set("loss.triplet_weight=0.5").unwrap();
        assert_eq!(c.loss.metric_weight, 0.5);
        let old = TrainConfig::from_toml_over(&c, "[loss]\ntriplet_weight = 2.0").unwrap();
        assert_eq!(old.loss.metric_weight, 2.0);
    }

    #[test]
    fn bad_overrides_and_values_are_errors_that_name_the_key() {
        let mut c = TrainConfig::demo();
        let e = c.set("loop.batch_size=1").unwrap_err().to_string();
        assert!(e.contains("batch_size"), "{e}");
        let e = c.set("mixture.kind=\"cauchy\"").unwrap_err().to_string();
        assert!(e.contains("mixture.kind"), "{e}");
        let e = c.set("nosuch.key=1").unwrap_err().to_string();
        assert!(e.contains("nosuch"), "{e}");
        assert!(c.set("no-equals-sign").is_err());
        let e = TrainConfig::from_toml_over(&c, "[loop]\nbatchsize = 3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("batchsize"), "{e}");
        assert_eq!(
            c,
            TrainConfig::demo(),
            "a failed override leaves the config unchanged"
        );
    }

    #[test]
    fn freezing_names_towers_and_never_both() {
        let mut c = TrainConfig::demo();
        c.set("loop.freeze=[\"text\"]").unwrap();
        assert_eq!(c.train_loop.freeze, vec![Tower::Text]);
        assert!(c
            .train_loop
            .is_frozen("text_model.embeddings.token_embedding.weight"));
        assert!(c.train_loop.is_frozen("text_projection.weight"));
        assert!(!c.train_loop.is_frozen("vision_model.post_layernorm.weight"));
        assert!(!c.train_loop.is_frozen("logit_scale"));
        assert!(c.set("loop.freeze=[\"text\", \"vision\"]").is_err());
        assert!(c.set("loop.freeze=[\"audio\"]").is_err());
    }

    #[test]
    fn a_wrong_kind_is_an_error_that_lists_the_valid_values() {
        let mut c = TrainConfig::demo();
        let e = c.set("mixture.kind=cauchy").unwrap_err().to_string();
        for valid in MixtureModel::ALL {
            assert!(e.contains(valid.as_str()), "{e}");
        }
        assert!(e.contains("cauchy"), "{e}");
        let e = TrainConfig::from_toml_over(&c, "[optim]\nkind = \"adam\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`adamw` or `sgd`") && e.contains("optim.kind"),
            "{e}"
        );
        let e = TrainConfig::from_toml_over(&c, "[data]\ndataset = \"padchest\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`cxr-lt`") && e.contains("`chexpert`"), "{e}");
        let e = c.set("loss.mining=hardest").unwrap_err().to_string();
        assert!(e.contains("`semi-hard`"), "{e}");
        assert_eq!(c, TrainConfig::demo());
    }

    #[test]
    fn kinds_keep_their_toml_spellings() {
        let toml = TrainConfig::released_code().to_toml();
        for line in [
            "kind = \"student-t-one-pass\"",
            "k_rule = \"released-code\"",
            "covariance = \"full\"",
            "source = \"per-batch\"",
            "metric = \"weighted\"",
            "mining = \"batch-all\"",
            "kind = \"adamw\"",
            "kind = \"plateau\"",
            "meta_label = \"released-code\"",
            "prompts = \"chexzero\"",
            "views = \"frontal\"",
            "preprocess = \"chexzero\"",
            "rare_set = \"paper\"",
            "preset = \"vit-b-32\"",
            "dataset = \"cxr-lt\"",
        ] {
            assert!(toml.contains(line), "{line} not in\n{toml}");
        }
        let mut c = TrainConfig::demo();
        c.set("data.dataset=chexpert").unwrap();
        assert_eq!(c.data.dataset, Dataset::CheXpert);
        c.set("model.preset=vit-l-14").unwrap();
        assert_eq!(c.model.preset, ModelPreset::VitL14);
    }

    #[test]
    fn per_batch_k_must_be_below_the_batch_under_the_fixed_rule() {
        let mut c = TrainConfig::demo();
        // K = 40 at batch 32: every image its own cluster.
        let e = c.set("mixture.source=per-batch").unwrap_err().to_string();
        c.mixture.source = LabelSource::PerBatch;
        assert!(
            e.contains("mixture.k") && e.contains("loop.batch_size"),
            "{e}"
        );
        c.mixture.k = 32;
        assert!(c.validate().is_err());
        c.mixture.k = 8;
        c.validate().unwrap();
        c.mixture.k = 40;
        c.mixture.k_rule = ComponentRule::ReleasedCode;
        c.validate().unwrap();
        c.mixture.k_rule = ComponentRule::Fixed;
        c.method = Method::MetaLabels; // no mixture
        c.validate().unwrap();
        TrainConfig::released_code().validate().unwrap();
        TrainConfig::paper().validate().unwrap();
    }

    #[test]
    fn uncertain_policy_spellings() {
        let mut c = TrainConfig::demo();
        assert_eq!(c.data.uncertain, Uncertain::Negative);
        for u in Uncertain::ALL {
            c.set(&format!("data.uncertain={u}")).unwrap();
            assert_eq!(c.data.uncertain, *u);
        }
        assert_eq!(
            Uncertain::Ignore.policy(),
            cxr_data::UncertainPolicy::Ignore
        );
        let e = c.set("data.uncertain=maybe").unwrap_err().to_string();
        assert!(e.contains("`ignore`"), "{e}");
    }

    #[test]
    fn run_name_reflects_method_and_mixture() {
        let mut c = TrainConfig::demo();
        assert!(c.run_name().starts_with("cxr-cml-tiny-bs32"));
        assert!(c.run_name().contains("nu6"));
        c.method = Method::Baseline;
        assert!(!c.run_name().contains("nu6"));
    }

    #[test]
    fn checkpoint_presets_need_weights_and_name_their_rows_after_them() {
        for preset in ["paper", "released-code"] {
            let mut c = TrainConfig::preset(preset).unwrap();
            let e = c.require_weights(preset).unwrap_err().to_string();
            assert!(e.contains("--weights") && e.contains("CheXzero"), "{e}");
            c.model.weights = Some("ckpt/best_64.pt".into());
            c.require_weights(preset).unwrap();
            let rows: Vec<String> = [Method::ZeroShot, Method::MetaLabels, Method::CxrCml]
                .iter()
                .map(|m| m.row_name(&c))
                .collect();
            assert_eq!(
                rows,
                [
                    "CheXzero (as released)",
                    "CheXzero + meta labels",
                    "CXR-CML"
                ]
            );
            assert_eq!(Method::Baseline.row_name(&c), "CheXzero + report text");
        }
        let mut demo = TrainConfig::demo();
        demo.require_weights("demo").unwrap();
        assert_eq!(Method::ZeroShot.row_name(&demo), "random init (zero-shot)");
        assert_eq!(Method::Baseline.row_name(&demo), "CLIP + report text");
        demo.model.weights = Some("some/dir/tiny_openai.pt".into());
        assert_eq!(
            Method::ZeroShot.row_name(&demo),
            "tiny_openai.pt (zero-shot)"
        );
        // Old and new spellings parse; the report-text method keeps `baseline`.
        for m in Method::ALL {
            assert_eq!(m.as_str().parse::<Method>().unwrap(), m);
        }
        let c = TrainConfig::from_toml_over(&demo, "method = \"zero-shot\"").unwrap();
        assert_eq!(c.method, Method::ZeroShot);
        let c = TrainConfig::from_toml_over(&demo, "method = \"baseline\"").unwrap();
        assert_eq!(c.method, Method::Baseline);
    }
}
