//! From a config to tensors-ready data: the dataset (real or synthetic), the image cache, the
//! class groups and the patient-level splits.

use std::path::{Path, PathBuf};

use cxr_data::cache::ImageCache;
use cxr_data::classes::{CXR_LT_CLASSES, PAPER_RARE_CLASSES};
use cxr_data::image::{Preprocess, PreprocessMode};
use cxr_data::{Dataset, LabelTable, MissingPolicy, ViewFilter};
use cxr_eval::ClassGroup;
use ndarray::{Array2, ArrayView1};
use serde::{Deserialize, Serialize};

use crate::config::{
    DataConfig, ModelPreset, PatientSplit, RareSet, TrainConfig, Uncertain, Views,
};
use crate::{Result, TrainError};

/// Train / validation / test indices into [`Prepared::table`]'s records. No patient appears in
/// two parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

/// A dataset ready for training: records, labels, cached pixels and class groups.
pub struct Prepared {
    /// The data root image paths are relative to.
    pub root: PathBuf,
    pub reports_root: PathBuf,
    pub table: LabelTable,
    /// `N x C` labels under `data.uncertain` ([`label_matrix`]): 1 positive, 0 negative or
    /// blank, NaN unknown (an uncertain label under `ignore`, skipped by the AUCs).
    pub labels: Array2<f32>,
    pub cache: ImageCache,
    /// Records whose image decoded (the others are skipped, counted and listed).
    pub usable: Vec<usize>,
    pub image_size: usize,
    pub mode: PreprocessMode,
    /// Malformed label-file rows left out (CXR-LT label files are read leniently).
    pub skipped_rows: Vec<cxr_data::SkippedRow>,
}

impl Prepared {
    /// Write every skipped item, label rows then images, as `kind<TAB>item<TAB>reason` lines
    /// under a header line (`skipped.tsv` in each run folder); returns how many.
    pub fn write_skipped(&self, path: &Path) -> Result<usize> {
        let clean = |s: &str| s.replace(['\n', '\t'], " ");
        let mut text = String::from("kind\titem\treason\n");
        for r in &self.skipped_rows {
            let item = format!("{}:{}", r.file.display(), r.line);
            text.push_str(&format!("row\t{}\t{}\n", clean(&item), clean(&r.reason)));
        }
        for (p, why) in self.cache.skipped() {
            text.push_str(&format!(
                "image\t{}\t{}\n",
                clean(&p.display().to_string()),
                clean(why)
            ));
        }
        cxr_data::write_atomic(path, text.as_bytes())?;
        Ok(self.skipped_rows.len() + self.cache.skipped().len())
    }

    pub fn classes(&self) -> &[String] {
        &self.table.classes
    }

    /// The classes named in record `i`'s meta-label text: its positives under
    /// `data.uncertain` (see [`named_classes`]).
    pub fn named_classes(&self, i: usize) -> Vec<&str> {
        named_classes(&self.table.classes, self.labels.row(i))
    }

    pub fn subjects(&self) -> Vec<u64> {
        self.table.records.iter().map(|r| r.subject_id).collect()
    }

    /// The patient-level train/test split of the paper (80/20 by default), with a validation
    /// part carved out of the training patients; `data.split = "stratified"` draws the three
    /// parts at once by iterative stratification (every part gets its share of every class).
    pub fn patient_split(&self, cfg: &DataConfig, seed: u64) -> Split {
        let subjects: Vec<u64> = self
            .usable
            .iter()
            .map(|&i| self.table.records[i].subject_id)
            .collect();
        if cfg.split == PatientSplit::Stratified {
            let (t, v) = (cfg.test_fraction, cfg.val_fraction);
            let labels = self.labels.select(ndarray::Axis(0), &self.usable);
            let parts = cxr_data::split::patient_stratified_split(
                &subjects,
                labels.view(),
                &[(1.0 - t) * (1.0 - v), (1.0 - t) * v, t],
                seed,
            )
            .expect("validated fractions in [0, 1) that sum to 1, one label row per record");
            let [train, val, test] = [0, 1, 2].map(|k| {
                parts[k]
                    .iter()
                    .map(|&p| self.usable[p])
                    .collect::<Vec<usize>>()
            });
            return Split { train, val, test };
        }
        let (train_pos, test_pos) =
            cxr_data::split::patient_train_test(&subjects, cfg.test_fraction, seed);
        let test = test_pos.iter().map(|&p| self.usable[p]).collect();
        let trainval: Vec<usize> = train_pos.iter().map(|&p| self.usable[p]).collect();
        self.carve_validation(trainval, test, cfg.val_fraction, seed)
    }

    /// Split `trainval` (record indices) into training and validation patients.
    pub fn carve_validation(
        &self,
        trainval: Vec<usize>,
        test: Vec<usize>,
        val_fraction: f64,
        seed: u64,
    ) -> Split {
        if val_fraction <= 0.0 {
            return Split {
                train: trainval,
                val: Vec::new(),
                test,
            };
        }
        let subjects: Vec<u64> = trainval
            .iter()
            .map(|&i| self.table.records[i].subject_id)
            .collect();
        let (tr, va) =
            cxr_data::split::patient_train_test(&subjects, val_fraction, seed.wrapping_add(1));
        Split {
            train: tr.iter().map(|&p| trainval[p]).collect(),
            val: va.iter().map(|&p| trainval[p]).collect(),
            test,
        }
    }

    /// Positive counts per class over the given records.
    pub fn positive_counts(&self, idx: &[usize]) -> Vec<usize> {
        let c = self.labels.ncols();
        let mut counts = vec![0usize; c];
        for &i in idx {
            for j in 0..c {
                if self.labels[[i, j]] > 0.5 {
                    counts[j] += 1;
                }
            }
        }
        counts
    }

    /// Base / rare group per class, as `data.rare_set` says (see [`rare_set`]).
    pub fn class_groups(&self, cfg: &DataConfig, train_idx: &[usize]) -> Vec<ClassGroup> {
        let counts = self.positive_counts(train_idx);
        let rare_set = rare_set(cfg);
        self.table
            .classes
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let rare = match rare_set {
                    RareSet::Paper => PAPER_RARE_CLASSES
                        .iter()
                        .any(|r| r.eq_ignore_ascii_case(name)),
                    RareSet::Official => CXR_LT_CLASSES
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(name))
                        .map(|c| (c.train_count as usize) < cfg.rare_threshold)
                        .unwrap_or(counts[j] < cfg.rare_threshold),
                    RareSet::Counts => counts[j] < cfg.rare_threshold,
                };
                if rare {
                    ClassGroup::Rare
                } else {
                    ClassGroup::Base
                }
            })
            .collect()
    }
}

/// The split of a run, by image id, as written into the run folder before step 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitIds {
    pub train: Vec<String>,
    pub val: Vec<String>,
    pub test: Vec<String>,
}

pub const SPLIT_FILE: &str = "split.json";

impl SplitIds {
    pub fn of(data: &Prepared, split: &Split) -> Self {
        let ids = |idx: &[usize]| {
            idx.iter()
                .map(|&i| data.table.records[i].dicom_id.clone())
                .collect()
        };
        Self {
            train: ids(&split.train),
            val: ids(&split.val),
            test: ids(&split.test),
        }
    }

    /// Back to record indices; every id must be in `data`.
    pub fn resolve(&self, data: &Prepared) -> Result<Split> {
        let index: std::collections::HashMap<&str, usize> = data
            .table
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.dicom_id.as_str(), i))
            .collect();
        let map = |ids: &[String]| -> Result<Vec<usize>> {
            ids.iter()
                .map(|id| {
                    index.get(id.as_str()).copied().ok_or_else(|| {
                        TrainError::Dataset(format!("image {id} of the run's split is not in the dataset: is this the same label CSV?"))
                    })
                })
                .collect()
        };
        Ok(Split {
            train: map(&self.train)?,
            val: map(&self.val)?,
            test: map(&self.test)?,
        })
    }
}

/// The rare set in force: the paper's 12 rare classes are CXR-LT classes, so on another
/// dataset `paper` means this run's training counts below `data.rare_threshold` (`counts`).
pub fn rare_set(cfg: &DataConfig) -> RareSet {
    match (cfg.rare_set, cfg.dataset) {
        (RareSet::Paper, Dataset::CxrLt) => RareSet::Paper,
        (RareSet::Paper, _) => RareSet::Counts,
        (set, _) => set,
    }
}

/// Where the synthetic demo dataset lives for this config.
pub fn synth_dir(cfg: &DataConfig) -> PathBuf {
    cfg.synth_dir.clone().unwrap_or_else(|| {
        PathBuf::from(".cache").join(format!(
            "synth-v{}-p{}-s{}-i{}",
            cxr_data::synth::GENERATOR_VERSION,
            cfg.synth_patients,
            cfg.synth_seed,
            cfg.synth_image_size
        ))
    })
}

/// Generate the synthetic dataset unless a complete one is already there. Completion is
/// marked by a file written last, so an interrupted generation is redone, never half-used.
pub fn ensure_synthetic(cfg: &DataConfig) -> Result<PathBuf> {
    let dir = synth_dir(cfg);
    let marker = dir.join(".complete");
    if marker.exists() {
        tracing::info!("reusing synthetic dataset in {}", dir.display());
        return Ok(dir);
    }
    tracing::info!(
        "generating synthetic dataset ({} patients) in {}",
        cfg.synth_patients,
        dir.display()
    );
    let synth = cxr_data::synth::SynthConfig {
        patients: cfg.synth_patients,
        seed: cfg.synth_seed,
        image_size: cfg.synth_image_size,
        ..Default::default()
    };
    cxr_data::synth::generate(&dir, &synth)?;
    std::fs::write(&marker, b"ok\n").map_err(|source| TrainError::Io {
        path: marker,
        source,
    })?;
    Ok(dir)
}

/// What a dataset's root holds, for error messages.
fn root_hint(dataset: Dataset) -> &'static str {
    match dataset {
        Dataset::CxrLt | Dataset::Mimic => "the MIMIC-CXR-JPG folder holding files/",
        Dataset::CheXpert => "the folder holding CheXpert-v1.0-small/ (or CheXpert-v1.0/)",
        Dataset::Nih => "the ChestX-ray14 folder holding the image folders",
    }
}

/// The data root, label CSV and reports root this config points at (generating the
/// synthetic dataset when no root is given).
pub fn resolve_paths(cfg: &DataConfig) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let dataset = cfg.dataset;
    let root = match (&cfg.root, dataset) {
        (Some(root), _) => root.clone(),
        (None, Dataset::CxrLt) => ensure_synthetic(cfg)?,
        (None, _) => {
            return Err(TrainError::Dataset(format!(
                "data.dataset = {dataset} needs a data root (--data-root): {}; \
                 `cargo xtask synth --dataset {dataset} --out DIR` writes a synthetic one",
                root_hint(dataset)
            )))
        }
    };
    if !root.is_dir() {
        return Err(TrainError::Dataset(format!(
            "data root {} is not a folder: point data.root (--data-root) at {}",
            root.display(),
            root_hint(dataset)
        )));
    }
    let labels = match &cfg.labels {
        Some(labels) => labels.clone(),
        None => cxr_data::default_labels(dataset, &root).map_err(|e| {
            TrainError::Dataset(format!("{e}: pass the {dataset} label CSV with --labels"))
        })?,
    };
    if !labels.is_file() {
        return Err(TrainError::Dataset(format!(
            "label CSV {} not found: pass the {dataset} label CSV with --labels",
            labels.display()
        )));
    }
    let reports = cfg.reports_root.clone().unwrap_or_else(|| root.clone());
    Ok((root, labels, reports))
}

/// Read labels, keep the configured views, build (or reuse) the preprocessed image cache.
pub fn prepare(cfg: &TrainConfig) -> Result<Prepared> {
    let (root, labels_csv, reports_root) = resolve_paths(&cfg.data)?;
    // Malformed rows of a CXR-LT label file are skipped and listed, not fatal.
    let (mut table, skipped_rows) = if cfg.data.dataset == Dataset::CxrLt {
        cxr_data::read_cxr_lt_lenient(&labels_csv)?
    } else {
        let t = cxr_data::load_table(cfg.data.dataset, &root, Some(&labels_csv))?;
        (t, Vec::new())
    };
    if !skipped_rows.is_empty() {
        tracing::warn!(
            "{} malformed rows of {} are skipped (listed in each run folder's skipped.tsv)",
            skipped_rows.len(),
            labels_csv.display()
        );
    }
    if rare_set(&cfg.data) != cfg.data.rare_set {
        tracing::info!(
            "data.rare_set = paper names CXR-LT classes: on {} the rare classes are those with fewer than {} training images",
            cfg.data.dataset,
            cfg.data.rare_threshold
        );
    }
    if cfg.data.views == Views::Frontal {
        let removed = table.filter_views(&ViewFilter::frontal());
        tracing::info!(
            "kept {} frontal images, dropped {removed} other views",
            table.records.len()
        );
    }
    if table.records.is_empty() {
        return Err(TrainError::Dataset(format!(
            "{} has no usable rows",
            labels_csv.display()
        )));
    }
    let labels = label_matrix(&table, cfg.data.uncertain);
    let mode = cfg.data.preprocess.mode();
    let image_size = model_image_size(cfg)?;
    let preprocess = Preprocess {
        mode,
        size: image_size as u32,
    };
    let cache_dir = cfg
        .data
        .cache_dir
        .clone()
        .unwrap_or_else(|| default_cache_dir(&root, &labels_csv, &cfg.data, image_size));
    let cache = ImageCache::build(
        &root,
        &table.records,
        &preprocess,
        &cache_dir,
        cfg.train_loop.progress,
    )?;
    let usable: Vec<usize> = (0..table.records.len())
        .filter(|&i| cache.pixels(i).is_some())
        .collect();
    let skipped = table.records.len() - usable.len();
    if skipped > 0 {
        tracing::warn!(
            "{skipped} images could not be read and are skipped (listed in the cache folder {} and in each run folder's skipped.tsv)",
            cache_dir.display()
        );
    }
    if usable.len() < 4 {
        return Err(TrainError::Dataset(format!(
            "only {} readable images under {}",
            usable.len(),
            root.display()
        )));
    }
    Ok(Prepared {
        root,
        reports_root,
        table,
        labels,
        cache,
        usable,
        image_size,
        mode,
        skipped_rows,
    })
}

/// `N x C` labels under the uncertain policy: 1 positive (and uncertain under `positive`),
/// 0 negative or blank (and uncertain under `negative`), NaN for uncertain under `ignore`:
/// `cxr_eval::evaluate` leaves NaN labels out of each class's AUC, and counts and folds read
/// labels as `> 0.5`, so an ignored label is never a positive.
pub fn label_matrix(table: &LabelTable, uncertain: Uncertain) -> Array2<f32> {
    let policy = uncertain.policy();
    let mut labels = table.multi_hot(policy);
    if uncertain == Uncertain::Ignore {
        let known = table.mask(policy, MissingPolicy::AsNegative);
        labels.zip_mut_with(&known, |l, &k| {
            if k == 0.0 {
                *l = f32::NAN;
            }
        });
    }
    labels
}

/// The classes a meta-label text names for one row of [`label_matrix`]: its positives, in
/// class order (an uncertain finding is named only under `data.uncertain = "positive"`).
pub fn named_classes<'a>(classes: &'a [String], labels: ArrayView1<'_, f32>) -> Vec<&'a str> {
    classes
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l > 0.5)
        .map(|(c, _)| c.as_str())
        .collect()
}

/// The input side the model expects: that of the initial weights (`model.weights`, whose
/// config decides the architecture; a tiny test checkpoint under the `paper` preset is not
/// 224 px), else the preset's.
pub fn model_image_size(cfg: &TrainConfig) -> Result<usize> {
    if let Some(spec) = &cfg.model.weights {
        // Reads the weights once more (build_model reads them for each method): seconds for
        // a ViT-B/32 checkpoint, next to hours of training.
        let weights = cxr_clip::ClipWeights::resolve(spec)?;
        return Ok(weights.config.vision_config.image_size);
    }
    Ok(if cfg.model.preset == ModelPreset::Tiny {
        cfg.model.image_size
    } else {
        224
    })
}

fn default_cache_dir(root: &Path, labels: &Path, data: &DataConfig, size: usize) -> PathBuf {
    // Key the cache by what determines its contents, so different datasets never share one.
    let key = format!(
        "{}|{}|{}|{}|{}",
        root.display(),
        labels.display(),
        data.views,
        data.preprocess,
        size
    );
    let hash = cxr_data::stable_hash(&key);
    PathBuf::from(".cache")
        .join("images")
        .join(format!("{}-{size}-{hash:016x}", data.preprocess))
}

#[cfg(test)]
mod tests {
    use cxr_data::{LabelState, LabelTable, Record};

    use super::{label_matrix, named_classes};
    use crate::config::Uncertain;

    /// Two records over classes a, b, c: (positive, uncertain, negative) and
    /// (uncertain, blank, positive).
    fn table() -> LabelTable {
        use LabelState::*;
        let record = |labels: Vec<LabelState>| Record {
            dicom_id: "d".into(),
            subject_id: 1,
            study_id: 1,
            view_position: Some("PA".into()),
            path: "x.jpg".into(),
            labels,
        };
        LabelTable {
            classes: vec!["a".into(), "b".into(), "c".into()],
            records: vec![
                record(vec![Positive, Uncertain, Negative]),
                record(vec![Uncertain, Missing, Positive]),
            ],
        }
    }

    #[test]
    fn each_uncertain_policy_sets_the_labels_and_the_named_classes() {
        let t = table();
        let names = |u: Uncertain| -> Vec<Vec<String>> {
            let l = label_matrix(&t, u);
            l.rows()
                .into_iter()
                .map(|r| {
                    named_classes(&t.classes, r)
                        .into_iter()
                        .map(String::from)
                        .collect()
                })
                .collect()
        };
        let neg = label_matrix(&t, Uncertain::Negative);
        assert_eq!(neg.row(0).to_vec(), [1.0, 0.0, 0.0]);
        assert_eq!(neg.row(1).to_vec(), [0.0, 0.0, 1.0]);
        assert_eq!(names(Uncertain::Negative), [vec!["a"], vec!["c"]]);

        let pos = label_matrix(&t, Uncertain::Positive);
        assert_eq!(pos.row(0).to_vec(), [1.0, 1.0, 0.0]);
        assert_eq!(pos.row(1).to_vec(), [1.0, 0.0, 1.0]);
        assert_eq!(names(Uncertain::Positive), [vec!["a", "b"], vec!["a", "c"]]);

        let ign = label_matrix(&t, Uncertain::Ignore);
        assert_eq!(ign[[0, 0]], 1.0);
        assert!(ign[[0, 1]].is_nan() && ign[[1, 0]].is_nan());
        assert_eq!((ign[[0, 2]], ign[[1, 1]], ign[[1, 2]]), (0.0, 0.0, 1.0));
        assert_eq!(names(Uncertain::Ignore), [vec!["a"], vec!["c"]]);

        // The default equals the multi-hot matrix the labels were before the setting existed.
        assert_eq!(neg, t.multi_hot(cxr_data::UncertainPolicy::default()));
    }

    /// An ignored label is left out of its class's AUC: with NaN in place of the uncertain
    /// labels, the AUC is the one over the known labels alone.
    #[test]
    fn ignored_labels_are_left_out_of_the_auc() {
        let scores = ndarray::array![[0.9f32], [0.1], [0.8], [0.2]];
        let labels = ndarray::array![[1.0f32], [0.0], [f32::NAN], [1.0]];
        let known_scores = ndarray::array![[0.9f32], [0.1], [0.2]];
        let known_labels = ndarray::array![[1.0f32], [0.0], [1.0]];
        let names = vec!["a".to_string()];
        let groups = vec![cxr_eval::ClassGroup::Base];
        let opts = cxr_eval::EvalOptions::default();
        let with_nan = cxr_eval::evaluate(scores.view(), labels.view(), &names, &groups, &opts);
        let known = cxr_eval::evaluate(
            known_scores.view(),
            known_labels.view(),
            &names,
            &groups,
            &opts,
        );
        assert_eq!(with_nan.unwrap().macro_all, known.unwrap().macro_all);
    }
}
