//! Synthetic images for a real CheXpert or NIH ChestX-ray14 label file.
//!
//! [`generate_from_labels`] keeps the rows of a seeded sample of patients exactly as the file
//! has them (header, columns, 1 / 0 / -1 / blank cells, pipe-separated findings), writes them
//! where [`crate::default_labels`] looks, and draws one image per row at the path the reader
//! gives it: the scene of [`super::generate`] with one sign per positive finding, after mapping
//! the file's class names onto the CXR-LT ones ([`cxr_lt_index`]: "Effusion" -> "Pleural
//! Effusion", "Pleural_Thickening" -> "Pleural Thickening", CheXpert's names as they are).
//! Uncertain and blank labels draw nothing; neither do classes without a drawing ("No Finding")
//! or lateral views.
//!
//! Where things land under `out` (image paths relative to `out`, as for CXR-LT):
//! - CheXpert: `CheXpert-v1.0-small/train.csv` (or `CheXpert-v1.0/train.csv`, or `train.csv`,
//!   following the first component of the rows' `Path`), JPEGs at each row's `Path`;
//! - NIH: `Data_Entry_2017_v2020.csv`, PNGs (the real set's format) at `images/<Image Index>`.
//!
//! Determinism: the patient sample comes from ChaCha8 seeded by `seed`; the image of output
//! row `i` from ChaCha8 seeded by `seed` on stream `i + 1` (as in [`super::generate`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::classes::cxr_lt_index;
use crate::readers::read_bytes;
use crate::{DataError, Dataset, LabelState, Result};

/// What [`generate_from_labels`] draws.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelledSynthConfig {
    /// Patients to keep (all of them when the file has fewer); every row of each is kept.
    pub patients: usize,
    pub seed: u64,
    /// Side of the square images (at least 32).
    pub image_size: u32,
}

impl Default for LabelledSynthConfig {
    fn default() -> Self {
        Self {
            patients: 60,
            seed: 0,
            image_size: 128,
        }
    }
}

/// What [`generate_from_labels`] wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelledSynthSummary {
    /// The label file written under `out` (the one [`crate::default_labels`] finds).
    pub labels_csv: PathBuf,
    /// Images drawn: one per row.
    pub images: usize,
    pub patients: usize,
    /// Positive rows per class of the label file, in its column order.
    pub class_counts: Vec<(String, usize)>,
}

/// Keep the rows of `cfg.patients` patients (a seeded shuffle of the file's patients: CheXpert's
/// `patientNNNNN` in `Path`, NIH's `Patient ID`) of the real-format label file `labels` (plain or
/// `.gz`) of `dataset`, write them unchanged to the file [`crate::default_labels`] finds in
/// `out`, and draw one image per row at the path [`crate::load_table`] gives it (see the module
/// doc). Same inputs, same bytes. CXR-LT and MIMIC-CXR are refused: [`super::generate`] writes
/// those formats with labels of its own.
pub fn generate_from_labels(
    dataset: Dataset,
    labels: &Path,
    out: &Path,
    cfg: &LabelledSynthConfig,
) -> Result<LabelledSynthSummary> {
    super::check_patients_and_size(cfg.patients, cfg.image_size)?;
    let key_column = match dataset {
        Dataset::CheXpert => "Path",
        Dataset::Nih => "Patient ID",
        Dataset::CxrLt | Dataset::Mimic => {
            return Err(DataError::InvalidParam(format!(
                "generate_from_labels draws images for CheXpert and NIH label files, not \
                 {dataset:?}: use synth::generate, which writes the CXR-LT / MIMIC-CXR formats"
            )))
        }
    };
    let bytes = read_bytes(labels)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| DataError::csv(labels, e))?;
    let records = split_records(text);
    let Some((header, rows)) = records.split_first() else {
        return Err(DataError::csv(labels, "the file is empty"));
    };
    let col = split_fields(header)
        .iter()
        .position(|f| f.trim() == key_column)
        .ok_or_else(|| DataError::MissingColumn {
            path: labels.to_path_buf(),
            column: key_column.to_string(),
        })?;
    let rows: Vec<&str> = rows
        .iter()
        .copied()
        .filter(|r| !r.trim().is_empty())
        .collect();
    let keys = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            patient_key(dataset, r, col).ok_or_else(|| DataError::BadValue {
                path: labels.to_path_buf(),
                row: i + 2,
                column: key_column.to_string(),
                value: field(r, col),
                expected: "a patient (CheXpert .../patientNNNNN/studyM/...; NIH a Patient ID)",
            })
        })
        .collect::<Result<Vec<String>>>()?;
    let chosen = sample_patients(&keys, cfg.patients, cfg.seed);
    let kept: Vec<&str> = rows
        .iter()
        .zip(&keys)
        .filter(|(_, k)| chosen.contains(k.as_str()))
        .map(|(r, _)| *r)
        .collect();

    let Some(first) = kept.first() else {
        return Err(DataError::csv(labels, "the file has no rows"));
    };
    let name = match dataset {
        Dataset::CheXpert => chexpert_labels_name(&field(first, col)),
        _ => "Data_Entry_2017_v2020.csv",
    };
    let labels_csv = out.join(name);
    write_rows(&labels_csv, header, &kept)?;
    if crate::default_labels(dataset, out)? != labels_csv {
        return Err(DataError::Format {
            path: out.to_path_buf(),
            message: format!(
                "another {dataset:?} label file here would be read before {name}: remove it or \
                 write to an empty folder"
            ),
        });
    }

    let table = crate::load_table(dataset, out, None)?;
    let drawn: Vec<Option<usize>> = table.classes.iter().map(|c| cxr_lt_index(c)).collect();
    let size = cfg.image_size;
    table
        .records
        .par_iter()
        .enumerate()
        .try_for_each(|(i, r)| -> Result<()> {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(i as u64 + 1);
            let mut positive = [false; 40];
            for (l, k) in r.labels.iter().zip(&drawn) {
                if let (LabelState::Positive, Some(k)) = (l, k) {
                    positive[*k] = true;
                }
            }
            let severity: [f32; 40] = std::array::from_fn(|_| rng.gen_range(0.35..1.0));
            let view = r.view_position.as_deref();
            let pixels = super::render(&mut rng, size, &positive, &severity, view);
            super::write_gray(&out.join(&r.path), &pixels, size)
        })?;
    Ok(LabelledSynthSummary {
        labels_csv,
        images: table.len(),
        patients: chosen.len(),
        class_counts: table
            .class_counts()
            .into_iter()
            .map(|c| (c.name, c.positive))
            .collect(),
    })
}

/// The patient of a row: CheXpert's `patientNNNNN` path component, NIH's `Patient ID`.
fn patient_key(dataset: Dataset, row: &str, col: usize) -> Option<String> {
    let f = field(row, col);
    let f = f.trim();
    match dataset {
        Dataset::CheXpert => f
            .split('/')
            .find(|c| c.starts_with("patient"))
            .map(str::to_string),
        _ => (!f.is_empty()).then(|| f.to_string()),
    }
}

/// `n` patients from a seeded shuffle of the distinct `keys` (in order of first appearance).
fn sample_patients(keys: &[String], n: usize, seed: u64) -> HashSet<&str> {
    let mut seen = HashSet::new();
    let mut distinct: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .filter(|k| seen.insert(*k))
        .collect();
    distinct.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    distinct.into_iter().take(n).collect()
}

/// The label file name under the data root that matches CheXpert paths like `path`: the paths
/// are relative to the folder that holds `CheXpert-v1.0[-small]/`.
fn chexpert_labels_name(path: &str) -> &'static str {
    match path.trim().split('/').next() {
        Some("CheXpert-v1.0-small") => "CheXpert-v1.0-small/train.csv",
        Some("CheXpert-v1.0") => "CheXpert-v1.0/train.csv",
        _ => "train.csv",
    }
}

fn write_rows(path: &Path, header: &str, rows: &[&str]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    let mut text =
        String::with_capacity(header.len() + rows.iter().map(|r| r.len() + 1).sum::<usize>());
    for r in std::iter::once(&header).chain(rows) {
        text.push_str(r);
        if !r.ends_with('\n') {
            text.push('\n');
        }
    }
    std::fs::write(path, text).map_err(|e| DataError::io(path, e))
}

/// CSV records with their line ends; a newline inside double quotes does not end one.
fn split_records(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                out.push(&text[start..=i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// The fields of one CSV record (quotes removed, `""` read as `"`).
fn split_fields(record: &str) -> Vec<String> {
    let record = record.trim_end_matches(['\r', '\n']);
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = record.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("never empty").push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("never empty").push(c),
        }
    }
    fields
}

/// Field `col` of a record, empty when the record is shorter.
fn field(record: &str, col: usize) -> String {
    split_fields(record)
        .into_iter()
        .nth(col)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_follow_the_mapped_positive_labels() {
        let draw = |names: &[&str], view: Option<&str>| {
            let mut labels = [false; 40];
            for n in names {
                labels[cxr_lt_index(n).unwrap()] = true;
            }
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            super::super::render(&mut rng, 64, &labels, &[0.8; 40], view)
        };
        let plain = draw(&[], Some("PA"));
        // "No Finding" (Normal) has no drawing; NIH's "Effusion" and "Pleural_Thickening" do.
        assert_eq!(draw(&["No Finding"], Some("PA")), plain);
        assert_ne!(draw(&["Effusion"], Some("PA")), plain);
        assert_ne!(draw(&["Pleural_Thickening"], Some("PA")), plain);
        assert_ne!(draw(&["Lung Opacity"], Some("AP")), draw(&[], Some("AP")));
        // lateral views show no signs
        assert_eq!(
            draw(&["Effusion"], Some("LATERAL")),
            draw(&[], Some("LATERAL"))
        );
    }

    #[test]
    fn records_and_fields_respect_quotes() {
        let text = "a,b\n\"x,\n1\",2\r\n3,\"say \"\"hi\"\"\"";
        let r = split_records(text);
        assert_eq!(r, vec!["a,b\n", "\"x,\n1\",2\r\n", "3,\"say \"\"hi\"\"\""]);
        assert_eq!(split_fields(r[1]), vec!["x,\n1", "2"]);
        assert_eq!(field(r[2], 1), "say \"hi\"");
        assert_eq!(field(r[2], 5), "");
    }

    #[test]
    fn other_datasets_and_bad_configs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "Path\n").unwrap();
        for d in [Dataset::CxrLt, Dataset::Mimic] {
            let e = generate_from_labels(d, &p, dir.path(), &Default::default()).unwrap_err();
            assert!(e.to_string().contains("synth::generate"), "{e}");
        }
        // the checks shared with `SynthConfig` (tested there) are applied
        let cfg = LabelledSynthConfig {
            image_size: 8,
            ..Default::default()
        };
        let e = generate_from_labels(Dataset::Nih, &p, dir.path(), &cfg);
        assert!(matches!(e, Err(DataError::InvalidParam(_))), "{e:?}");
        let e = generate_from_labels(Dataset::Nih, &p, dir.path(), &Default::default());
        assert!(matches!(e, Err(DataError::MissingColumn { .. })), "{e:?}");
        let e = generate_from_labels(Dataset::CheXpert, &p, dir.path(), &Default::default());
        assert!(e.unwrap_err().to_string().contains("no rows"));
        std::fs::write(&p, "Path,Edema\nsomewhere/view1.jpg,1\n").unwrap();
        let e = generate_from_labels(Dataset::CheXpert, &p, dir.path(), &Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 2") && e.contains("patientNNNNN"), "{e}");
    }
}
