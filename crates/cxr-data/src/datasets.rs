//! Readers for MIMIC-CXR-JPG, CheXpert and NIH ChestX-ray14, all producing [`LabelTable`]s.
//!
//! Conventions where a dataset lacks an id: CheXpert's `patientNNNNN/studyM` gives subject
//! `NNNNN` and study `NNNNN * 1000 + M`; NIH's `Patient ID` and `Follow-up #` give subject and
//! study `patient * 1000 + follow_up`. Views: CheXpert frontal images take their `AP/PA` value,
//! lateral ones `LATERAL` (as torchxrayvision does); NIH's `View Position`; MIMIC's `ViewPosition`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::readers::Csv;
use crate::table::{checked_relative_path, mimic_image_path, LabelState, LabelTable, Record};
use crate::{DataError, Result};

/// The datasets this crate reads.
/// Serialises as `mimic`, `cxr-lt`, `chexpert`, `nih` (the names [`std::str::FromStr`] takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    Mimic,
    CxrLt,
    #[serde(rename = "chexpert")]
    CheXpert,
    Nih,
}

impl Dataset {
    pub const ALL: [Dataset; 4] = [Self::CxrLt, Self::Mimic, Self::CheXpert, Self::Nih];

    /// The canonical name (as serialised and parsed).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mimic => "mimic",
            Self::CxrLt => "cxr-lt",
            Self::CheXpert => "chexpert",
            Self::Nih => "nih",
        }
    }

    /// Whether the dataset comes with free-text reports (MIMIC-CXR's), which the report-text
    /// baseline trains on.
    pub fn has_reports(self) -> bool {
        matches!(self, Self::Mimic | Self::CxrLt)
    }
}

impl std::fmt::Display for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Dataset {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mimic" | "mimic-cxr" => Ok(Self::Mimic),
            "cxr-lt" | "cxrlt" => Ok(Self::CxrLt),
            "chexpert" => Ok(Self::CheXpert),
            "nih" | "chestx-ray14" => Ok(Self::Nih),
            other => Err(DataError::InvalidParam(format!(
                "unknown dataset {other:?}: use mimic, cxr-lt, chexpert or nih"
            ))),
        }
    }
}

/// The 14 NIH ChestX-ray14 findings (torchxrayvision's order) and "No Finding".
pub const NIH_CLASSES: [&str; 15] = [
    "Atelectasis",
    "Consolidation",
    "Infiltration",
    "Pneumothorax",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Effusion",
    "Pneumonia",
    "Pleural_Thickening",
    "Cardiomegaly",
    "Nodule",
    "Mass",
    "Hernia",
    "No Finding",
];

/// Non-label columns of CheXpert's `train.csv` / `valid.csv`.
const CHEXPERT_META: [&str; 5] = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA"];

/// The study id `subject * 1000 + study` of CheXpert and NIH, or `None` when it overflows
/// (ids from a corrupt file).
fn study_key(subject: u64, study: u64) -> Option<u64> {
    subject.checked_mul(1000)?.checked_add(study)
}

fn number_after(s: &str, key: &str) -> Option<u64> {
    let i = s.find(key)? + key.len();
    let digits: String = s[i..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Read CheXpert `train.csv` / `valid.csv`: `Path` (relative to the folder that holds
/// `CheXpert-v1.0[-small]/`), view columns, then the label columns (1 / 0 / -1 / blank).
pub fn read_chexpert(csv_path: &Path) -> Result<LabelTable> {
    let csv = Csv::read(csv_path)?;
    let paths = csv.strings("Path")?;
    let fl = if csv.has("Frontal/Lateral") {
        Some(csv.strings("Frontal/Lateral")?)
    } else {
        None
    };
    let appa = if csv.has("AP/PA") {
        Some(csv.strings("AP/PA")?)
    } else {
        None
    };
    let classes: Vec<String> = csv
        .names()
        .into_iter()
        .filter(|n| !CHEXPERT_META.contains(&n.as_str()))
        .collect();
    let cols: Vec<Vec<LabelState>> = classes
        .iter()
        .map(|c| csv.labels(c))
        .collect::<Result<_>>()?;
    let mut records = Vec::with_capacity(csv.height());
    for row in 0..csv.height() {
        let raw = paths[row].as_deref().unwrap_or("");
        let path = checked_relative_path(raw, csv_path, row + 2)?;
        let (Some(subject), Some(study)) =
            (number_after(raw, "patient"), number_after(raw, "/study"))
        else {
            return Err(csv.bad(
                row,
                "Path",
                raw.to_string(),
                "a CheXpert path .../patientNNNNN/studyM/viewK_*.jpg",
            ));
        };
        let view = match (
            fl.as_ref().and_then(|v| v[row].as_deref()),
            appa.as_ref().and_then(|v| v[row].as_deref()),
        ) {
            (Some("Lateral"), _) => Some("LATERAL".to_string()),
            (_, Some(v)) => Some(v.to_ascii_uppercase()),
            _ => None,
        };
        let dicom_id = Path::new(raw)
            .iter()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(|c| c.to_string_lossy().trim_end_matches(".jpg").to_string())
            .collect::<Vec<_>>()
            .join("_");
        let study_id = study_key(subject, study).ok_or_else(|| {
            csv.bad(
                row,
                "Path",
                raw.to_string(),
                "patient and study numbers below 2^64 / 1000",
            )
        })?;
        records.push(Record {
            dicom_id,
            subject_id: subject,
            study_id,
            view_position: view,
            path,
            labels: cols.iter().map(|c| c[row]).collect(),
        });
    }
    Ok(LabelTable { classes, records })
}

/// Read NIH ChestX-ray14 `Data_Entry_2017*.csv`: `Image Index`, pipe-separated `Finding
/// Labels`, `Patient ID`, `Follow-up #`, `View Position`. Images are expected under
/// `images/<Image Index>`. Classes are [`NIH_CLASSES`]; any other finding name is appended
/// (sorted) and logged. Labels are positive or negative (the file has no uncertainty).
pub fn read_nih(csv_path: &Path) -> Result<LabelTable> {
    let csv = Csv::read(csv_path)?;
    let index = csv.strings("Image Index")?;
    let findings = csv.strings("Finding Labels")?;
    let patients = csv.ids("Patient ID")?;
    let follow = if csv.has("Follow-up #") {
        Some(csv.ids("Follow-up #")?)
    } else {
        None
    };
    let views = if csv.has("View Position") {
        csv.strings("View Position")?
    } else {
        vec![None; csv.height()]
    };
    let mut classes: Vec<String> = NIH_CLASSES.iter().map(|s| s.to_string()).collect();
    let extra: BTreeSet<&str> = findings
        .iter()
        .flatten()
        .flat_map(|f| f.split('|'))
        .map(str::trim)
        .filter(|n| !n.is_empty() && !NIH_CLASSES.contains(n))
        .collect();
    if !extra.is_empty() {
        tracing::warn!(file = %csv_path.display(), ?extra, "finding names outside the NIH vocabulary");
    }
    classes.extend(extra.iter().map(|s| s.to_string()));
    let pos: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut records = Vec::with_capacity(csv.height());
    for row in 0..csv.height() {
        let name = index[row]
            .clone()
            .ok_or_else(|| csv.bad(row, "Image Index", String::new(), "a file name"))?;
        let path = checked_relative_path(&format!("images/{name}"), csv_path, row + 2)?;
        let mut labels = vec![LabelState::Negative; classes.len()];
        for f in findings[row]
            .as_deref()
            .unwrap_or("")
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            labels[pos[f]] = LabelState::Positive;
        }
        let subject = patients[row];
        let study_id =
            study_key(subject, follow.as_ref().map_or(0, |f| f[row])).ok_or_else(|| {
                csv.bad(
                    row,
                    "Patient ID",
                    subject.to_string(),
                    "a patient id below 2^64 / 1000",
                )
            })?;
        records.push(Record {
            dicom_id: name.trim_end_matches(".png").to_string(),
            subject_id: subject,
            study_id,
            view_position: views[row].clone(),
            path,
            labels,
        });
    }
    Ok(LabelTable { classes, records })
}

/// MIMIC-CXR-JPG images with their official split.
#[derive(Debug, Clone, PartialEq)]
pub struct MimicData {
    pub table: LabelTable,
    /// `train` / `validate` / `test` per record, `None` when the split file lacks the image.
    pub splits: Vec<Option<String>>,
}

/// Join MIMIC-CXR-JPG's metadata (one row per image), split (per image) and a study-level
/// label file (`-chexpert` or `-negbio`: subject_id, study_id, 14 labels) on their ids.
/// Images whose study has no label row get `Missing` labels.
pub fn read_mimic(metadata: &Path, split: Option<&Path>, labels: &Path) -> Result<MimicData> {
    let meta = Csv::read(metadata)?;
    let dicom = meta.strings("dicom_id")?;
    let subjects = meta.ids("subject_id")?;
    let studies = meta.ids("study_id")?;
    let views = meta.strings("ViewPosition")?;

    let lab = Csv::read(labels)?;
    let lab_studies = lab.ids("study_id")?;
    lab.ids("subject_id")?; // required, checked for the error message
    let classes: Vec<String> = lab
        .names()
        .into_iter()
        .filter(|n| n != "subject_id" && n != "study_id")
        .collect();
    let cols: Vec<Vec<LabelState>> = classes
        .iter()
        .map(|c| lab.labels(c))
        .collect::<Result<_>>()?;
    let by_study: HashMap<u64, usize> = lab_studies
        .iter()
        .enumerate()
        .map(|(i, &s)| (s, i))
        .collect();

    let split_of: HashMap<String, String> = match split {
        Some(p) => {
            let s = Csv::read(p)?;
            let d = s.strings("dicom_id")?;
            let v = s.strings("split")?;
            d.into_iter()
                .zip(v)
                .filter_map(|(d, v)| Some((d?, v?)))
                .collect()
        }
        None => HashMap::new(),
    };
    let mut records = Vec::with_capacity(meta.height());
    let mut splits = Vec::with_capacity(meta.height());
    for row in 0..meta.height() {
        let dicom_id = dicom[row]
            .clone()
            .ok_or_else(|| meta.bad(row, "dicom_id", String::new(), "a non-empty id"))?;
        checked_relative_path(&dicom_id, metadata, row + 2)?;
        let labels = match by_study.get(&studies[row]) {
            Some(&i) => cols.iter().map(|c| c[i]).collect(),
            None => vec![LabelState::Missing; classes.len()],
        };
        splits.push(split_of.get(&dicom_id).cloned());
        records.push(Record {
            path: mimic_image_path(subjects[row], studies[row], &dicom_id),
            dicom_id,
            subject_id: subjects[row],
            study_id: studies[row],
            view_position: views[row].clone(),
            labels,
        });
    }
    Ok(MimicData {
        table: LabelTable { classes, records },
        splits,
    })
}

/// `root/name` or `root/name.gz`, whichever exists.
pub fn find_csv(root: &Path, name: &str) -> Result<PathBuf> {
    let plain = root.join(name);
    let gz = root.join(format!("{name}.gz"));
    if plain.is_file() {
        Ok(plain)
    } else if gz.is_file() {
        Ok(gz)
    } else {
        Err(DataError::io(
            plain,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "neither this file nor its .gz exists",
            ),
        ))
    }
}

/// [`read_mimic`] on a MIMIC-CXR-JPG root with its standard file names; `labeler` is
/// `chexpert` or `negbio`.
pub fn read_mimic_root(root: &Path, labeler: &str) -> Result<MimicData> {
    let meta = find_csv(root, "mimic-cxr-2.0.0-metadata.csv")?;
    let split = find_csv(root, "mimic-cxr-2.0.0-split.csv").ok();
    let labels = find_csv(root, &format!("mimic-cxr-2.0.0-{labeler}.csv"))?;
    read_mimic(&meta, split.as_deref(), &labels)
}

/// What `cargo xtask data summary` prints.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub rows: usize,
    pub patients: usize,
    pub studies: usize,
    /// Images per view; blank views are counted under `""`.
    pub views: BTreeMap<String, usize>,
    pub classes: Vec<crate::ClassCounts>,
    /// Class columns outside the CXR-LT vocabulary (after aliases).
    pub unknown_classes: Vec<String>,
}

impl Summary {
    pub fn of(t: &LabelTable) -> Self {
        let patients: BTreeSet<u64> = t.records.iter().map(|r| r.subject_id).collect();
        let studies: BTreeSet<(u64, u64)> = t
            .records
            .iter()
            .map(|r| (r.subject_id, r.study_id))
            .collect();
        let mut views = BTreeMap::new();
        for r in &t.records {
            *views
                .entry(r.view_position.clone().unwrap_or_default())
                .or_insert(0) += 1;
        }
        Self {
            rows: t.len(),
            patients: patients.len(),
            studies: studies.len(),
            views,
            classes: t.class_counts(),
            unknown_classes: t
                .classes
                .iter()
                .filter(|c| crate::classes::cxr_lt_index(c).is_none())
                .cloned()
                .collect(),
        }
    }
}

/// The label file a dataset uses when none is given: CXR-LT `train_labeled.csv`; CheXpert
/// `CheXpert-v1.0-small/train.csv` or `CheXpert-v1.0/train.csv` (paths inside are relative to
/// `root`) or `train.csv`; NIH `Data_Entry_2017_v2020.csv` or `Data_Entry_2017.csv`; MIMIC
/// `mimic-cxr-2.0.0-chexpert.csv` (each also as `.gz`).
pub fn default_labels(dataset: Dataset, root: &Path) -> Result<PathBuf> {
    let candidates: &[&str] = match dataset {
        Dataset::CxrLt => &["train_labeled.csv"],
        Dataset::CheXpert => &[
            "CheXpert-v1.0-small/train.csv",
            "CheXpert-v1.0/train.csv",
            "train.csv",
        ],
        Dataset::Nih => &["Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv"],
        Dataset::Mimic => &["mimic-cxr-2.0.0-chexpert.csv"],
    };
    candidates
        .iter()
        .find_map(|c| find_csv(root, c).ok())
        .ok_or_else(|| DataError::Format {
            path: root.to_path_buf(),
            message: format!("no label file for {dataset:?} here (looked for {candidates:?}); pass one explicitly"),
        })
}

/// Read any supported dataset rooted at `root` (image paths are relative to it); `labels`
/// overrides [`default_labels`]. For MIMIC, `labels` is the chexpert / negbio file and the
/// metadata and split files are taken from `root`.
pub fn load_table(dataset: Dataset, root: &Path, labels: Option<&Path>) -> Result<LabelTable> {
    let labels = match labels {
        Some(p) => p.to_path_buf(),
        None => default_labels(dataset, root)?,
    };
    match dataset {
        Dataset::CxrLt => crate::read_cxr_lt(&labels),
        Dataset::CheXpert => read_chexpert(&labels),
        Dataset::Nih => read_nih(&labels),
        Dataset::Mimic => {
            let meta = find_csv(root, "mimic-cxr-2.0.0-metadata.csv")?;
            let split = find_csv(root, "mimic-cxr-2.0.0-split.csv").ok();
            Ok(read_mimic(&meta, split.as_deref(), &labels)?.table)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chexpert_paths_give_ids_and_views() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("train.csv");
        std::fs::write(
            &p,
            "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Edema\n\
             CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg,F,87,Frontal,AP,,-1.0\n\
             CheXpert-v1.0-small/train/patient00002/study2/view2_lateral.jpg,F,87,Lateral,,1.0,0.0\n",
        )
        .unwrap();
        let t = read_chexpert(&p).unwrap();
        assert_eq!(t.classes, vec!["No Finding", "Edema"]);
        let r = &t.records[0];
        assert_eq!((r.subject_id, r.study_id), (2, 2002));
        assert_eq!(r.view_position.as_deref(), Some("AP"));
        assert_eq!(r.dicom_id, "patient00002_study2_view1_frontal");
        assert_eq!(r.labels, vec![LabelState::Missing, LabelState::Uncertain]);
        assert_eq!(t.records[1].view_position.as_deref(), Some("LATERAL"));

        std::fs::write(&p, "Path,No Finding\nsomewhere/else.jpg,1\n").unwrap();
        let e = read_chexpert(&p).unwrap_err().to_string();
        assert!(e.contains("patientNNNNN") && e.contains("row 2"), "{e}");
        std::fs::write(&p, "Sex,No Finding\nF,1\n").unwrap();
        let e = read_chexpert(&p).unwrap_err().to_string();
        assert!(e.contains("\"Path\"") && e.contains("train.csv"), "{e}");
    }

    #[test]
    fn nih_findings_split_on_pipes_and_unknown_names_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("Data_Entry_2017.csv");
        std::fs::write(
            &p,
            "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n\
             00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143\n\
             00000002_000.png,No Finding,0,2,81,M,AP,2500,2048,0.171,0.171\n\
             00000003_000.png,Mystery,0,3,81,M,AP,2500,2048,0.171,0.171\n",
        )
        .unwrap();
        let t = read_nih(&p).unwrap();
        assert_eq!(t.classes.len(), 16);
        assert_eq!(t.positive_class_names(0), vec!["Emphysema", "Cardiomegaly"]);
        assert_eq!(t.records[0].study_id, 1001);
        assert_eq!(t.records[0].path, PathBuf::from("images/00000001_001.png"));
        assert_eq!(t.positive_class_names(2), vec!["Mystery"]);
        let s = Summary::of(&t);
        assert_eq!((s.rows, s.patients, s.studies), (3, 3, 3));
        assert!(s.unknown_classes.contains(&"Mystery".to_string()));
        assert!(!s.unknown_classes.contains(&"Effusion".to_string()));
    }

    #[test]
    fn mimic_tables_join_on_ids() {
        let dir = tempfile::tempdir().unwrap();
        let w = |n: &str, t: &str| std::fs::write(dir.path().join(n), t).unwrap();
        w("mimic-cxr-2.0.0-metadata.csv", "dicom_id,subject_id,study_id,ViewPosition,Rows\nd1,10000032,50414267,PA,3056\nd2,10000032,50414267,LATERAL,3056\nd3,10000033,50000001,AP,3056\n");
        w("mimic-cxr-2.0.0-split.csv", "dicom_id,study_id,subject_id,split\nd1,50414267,10000032,train\nd3,50000001,10000033,test\n");
        w(
            "mimic-cxr-2.0.0-chexpert.csv",
            "subject_id,study_id,Atelectasis,Edema\n10000032,50414267,1.0,-1.0\n",
        );
        let m = read_mimic_root(dir.path(), "chexpert").unwrap();
        assert_eq!(m.table.len(), 3);
        assert_eq!(
            m.splits,
            vec![Some("train".into()), None, Some("test".into())]
        );
        assert_eq!(
            m.table.records[1].labels,
            vec![LabelState::Positive, LabelState::Uncertain]
        );
        assert_eq!(m.table.records[2].labels, vec![LabelState::Missing; 2]);
        assert_eq!(
            m.table.records[0].path,
            PathBuf::from("files/p10/p10000032/s50414267/d1.jpg")
        );
        let e = read_mimic_root(dir.path(), "negbio")
            .unwrap_err()
            .to_string();
        assert!(e.contains("negbio"), "{e}");
        assert!("nope".parse::<Dataset>().is_err());
    }
}
