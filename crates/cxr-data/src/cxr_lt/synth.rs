//! The CXR-LT 2024 challenge's evaluation files for a synthetic dataset, in the official
//! layouts ([`crate::cxr_lt`]): development and test files of the three tasks and the
//! combined `labels.csv`.
//!
//! Built from what [`crate::synth::generate`] wrote (`train_labeled.csv` and the MIMIC split file):
//! development is the `validate` split, test the `test` split. Task 1 files hold every image
//! of the split with the 40 classes; task 2's "gold standard" is a seeded half of them with
//! 26 of the 40 classes in a shuffled column order; task 3 reuses task 1's images with the
//! five unseen classes. Unseen labels are drawn per study (every image of a study shares
//! them) from the seed and the study id, so `labels.csv` and the task 3 files agree. They
//! are labels only: no sign is drawn for them and no report mentions them (a zero-shot model
//! scores them from their names). Note that the synthetic `train_labeled.csv` holds every
//! image, the task files' included; the real one holds the training split only. In a small
//! set, a class with no positive (or no negative) in a task file gets one by flipping its
//! label for one study in that file only, so every class of every file can be scored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::classes::CXR_LT_CLASSES;
use crate::cxr_lt::{write_cxr_lt_csv, CxrLtSplit, CxrLtTask, COMBINED_LABELS, UNSEEN_CLASSES};
use crate::readers::Csv;
use crate::table::{LabelState, LabelTable};
use crate::{DataError, Result};

/// Per-study probability of each unseen class.
const UNSEEN_PREVALENCE: [f64; 5] = [0.08, 0.12, 0.15, 0.1, 0.12];

/// What [`write_task_files`] wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskFilesSummary {
    /// Every file written, task files first, `labels.csv` last.
    pub files: Vec<PathBuf>,
    pub development_images: usize,
    pub test_images: usize,
    /// Images of task 2's development and test files.
    pub gold_images: (usize, usize),
    /// Task 2's classes in its files' column order.
    pub task2_classes: Vec<String>,
}

/// The unseen labels of a study: seeded by `seed` and the study id alone.
fn unseen_labels(seed: u64, study_id: u64) -> [bool; 5] {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7a5c_0003);
    rng.set_stream(study_id);
    std::array::from_fn(|k| rng.gen_bool(UNSEEN_PREVALENCE[k]))
}

/// Makes every column of `t` hold a positive and a negative (when it has two rows or more),
/// flipping the label of a whole study, so each class of a small file is scorable.
fn ensure_both_labels(t: &mut LabelTable) {
    if t.len() < 2 {
        return;
    }
    for k in 0..t.classes.len() {
        let pos = t
            .records
            .iter()
            .filter(|r| r.labels[k] == LabelState::Positive)
            .count();
        let flip_to = if pos == 0 {
            LabelState::Positive
        } else if pos == t.len() {
            LabelState::Negative
        } else {
            continue;
        };
        let study = t.records[k % t.len()].study_id;
        let studies_rows = t.records.iter().filter(|r| r.study_id == study).count();
        if studies_rows == t.len() {
            // One study: flip one image instead.
            t.records[0].labels[k] = flip_to;
            continue;
        }
        for r in t.records.iter_mut().filter(|r| r.study_id == study) {
            r.labels[k] = flip_to;
        }
    }
}

/// Writes the task files and `labels.csv` into `root`, where [`crate::synth::generate`] wrote a
/// dataset with the same `seed`.
pub fn write_task_files(root: &Path, seed: u64) -> Result<TaskFilesSummary> {
    let train = crate::read_cxr_lt(&root.join(crate::synth::LABELS_CSV))?;
    let split_csv = Csv::read(&root.join(crate::synth::SPLIT_CSV))?;
    let split_of: HashMap<String, String> = split_csv
        .strings("dicom_id")?
        .into_iter()
        .zip(split_csv.strings("split")?)
        .filter_map(|(d, s)| Some((d?, s?)))
        .collect();
    let split_name = |i: usize| -> &str {
        match split_of.get(&train.records[i].dicom_id).map(String::as_str) {
            Some("validate") => "development",
            Some("test") => "test",
            _ => "train",
        }
    };
    let rows = |split: CxrLtSplit| -> Vec<usize> {
        (0..train.len())
            .filter(|&i| split_name(i) == split.as_str())
            .collect()
    };
    let with_unseen = |t: &LabelTable, only_unseen: bool| -> LabelTable {
        let mut out = t.clone();
        if only_unseen {
            out.classes.clear();
        }
        out.classes
            .extend(UNSEEN_CLASSES.iter().map(|s| s.to_string()));
        for r in &mut out.records {
            if only_unseen {
                r.labels.clear();
            }
            r.labels.extend(unseen_labels(seed, r.study_id).map(|b| {
                if b {
                    LabelState::Positive
                } else {
                    LabelState::Negative
                }
            }));
        }
        out
    };

    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7a5c_0002);
    let mut task2: Vec<String> = CXR_LT_CLASSES.iter().map(|c| c.name.to_string()).collect();
    task2.shuffle(&mut rng);
    task2.truncate(crate::cxr_lt::TASK2_CLASS_COUNT);

    let mut files = Vec::new();
    let mut sizes = [0usize; 2];
    let mut gold = [0usize; 2];
    for (s, split) in [CxrLtSplit::Development, CxrLtSplit::Test]
        .into_iter()
        .enumerate()
    {
        let idx = rows(split);
        if idx.is_empty() {
            return Err(DataError::InvalidParam(format!(
                "the synthetic dataset in {} has no {split} image: generate more patients",
                root.display()
            )));
        }
        sizes[s] = idx.len();
        let mut t1 = train.select(&idx);
        ensure_both_labels(&mut t1);
        let name = |task: CxrLtTask| root.join(&task.file_names(split)[0]);
        write_cxr_lt_csv(&name(CxrLtTask::One), &t1)?;
        files.push(name(CxrLtTask::One));

        // Task 2: a seeded half of the split's studies, 26 classes in shuffled order.
        let mut studies: Vec<u64> = t1.records.iter().map(|r| r.study_id).collect();
        studies.sort_unstable();
        studies.dedup();
        studies.shuffle(&mut rng);
        studies.truncate(studies.len().div_ceil(2));
        let keep: Vec<usize> = (0..t1.len())
            .filter(|&i| studies.contains(&t1.records[i].study_id))
            .collect();
        let mut t2 = t1.select(&keep);
        t2.reorder_classes(&task2);
        ensure_both_labels(&mut t2);
        gold[s] = t2.len();
        write_cxr_lt_csv(&name(CxrLtTask::Two), &t2)?;
        files.push(name(CxrLtTask::Two));

        let mut t3 = with_unseen(&t1, true);
        ensure_both_labels(&mut t3);
        write_cxr_lt_csv(&name(CxrLtTask::Three), &t3)?;
        files.push(name(CxrLtTask::Three));
    }

    // labels.csv: every image, the 40 + 5 labels, and its split.
    let all = with_unseen(&train, false);
    let tmp = root.join(format!("{COMBINED_LABELS}.part"));
    write_cxr_lt_csv(&tmp, &all)?;
    let text = std::fs::read_to_string(&tmp).map_err(|e| DataError::io(&tmp, e))?;
    let mut combined = String::with_capacity(text.len() + 16 * all.len());
    for (i, line) in text.lines().enumerate() {
        combined.push_str(line);
        combined.push(',');
        combined.push_str(if i == 0 { "split" } else { split_name(i - 1) });
        combined.push('\n');
    }
    std::fs::remove_file(&tmp).map_err(|e| DataError::io(&tmp, e))?;
    let path = root.join(COMBINED_LABELS);
    crate::write_atomic(&path, combined.as_bytes())?;
    files.push(path);
    Ok(TaskFilesSummary {
        files,
        development_images: sizes[0],
        test_images: sizes[1],
        gold_images: (gold[0], gold[1]),
        task2_classes: task2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cxr_lt::read_task;

    #[test]
    fn synthetic_task_files_read_back_in_the_official_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::synth::SynthConfig {
            patients: 40,
            image_size: 32,
            ..Default::default()
        };
        crate::synth::generate(dir.path(), &cfg).unwrap();
        let s = write_task_files(dir.path(), cfg.seed).unwrap();
        assert_eq!(s.files.len(), 7);
        assert_eq!(s.task2_classes.len(), 26);
        for split in [CxrLtSplit::Development, CxrLtSplit::Test] {
            let t1 = read_task(dir.path(), CxrLtTask::One, split).unwrap();
            assert!(!t1.file.ends_with("labels.csv"));
            assert_eq!(t1.table.classes.len(), 40);
            let t2 = read_task(dir.path(), CxrLtTask::Two, split).unwrap();
            // Read by name: the official list is the file's 26 columns, in the file's order.
            assert_eq!(t2.table.classes, s.task2_classes);
            assert!(t2.table.len() < t1.table.len() || t1.table.len() < 3);
            let t3 = read_task(dir.path(), CxrLtTask::Three, split).unwrap();
            assert_eq!(t3.table.classes, UNSEEN_CLASSES.to_vec());
            let ids = |t: &LabelTable| -> Vec<String> {
                t.records.iter().map(|r| r.dicom_id.clone()).collect()
            };
            assert_eq!(
                ids(&t3.table),
                ids(&t1.table),
                "task 3 reuses task 1's images"
            );
            // The combined file gives the same task 1 rows.
            let f = crate::cxr_lt::read_task_file(
                &dir.path().join("labels.csv"),
                CxrLtTask::One,
                split,
                true,
            )
            .unwrap();
            assert_eq!(ids(&f.table), ids(&t1.table));
        }
        // Same seed, same files.
        let first = std::fs::read(&s.files[1]).unwrap();
        write_task_files(dir.path(), cfg.seed).unwrap();
        assert_eq!(std::fs::read(&s.files[1]).unwrap(), first);
    }
}
