//! The one record type shared by every dataset, label policies and view filters.

use std::path::{Component, Path, PathBuf};

use ndarray::Array2;

use crate::{DataError, Result};

/// One entry of a label matrix. CSVs code these as 1 / 0 / -1 / blank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum LabelState {
    Positive,
    Negative,
    /// -1 in CheXpert-style files: the labeller could not decide.
    Uncertain,
    /// Blank: the report does not mention the finding.
    Missing,
}

impl LabelState {
    /// Decode a CSV number (1, 0, -1; `None` for a blank cell).
    pub fn from_code(v: Option<f64>) -> Option<Self> {
        match v {
            None => Some(Self::Missing),
            Some(x) if x.is_nan() => Some(Self::Missing),
            Some(1.0) => Some(Self::Positive),
            Some(0.0) => Some(Self::Negative),
            Some(-1.0) => Some(Self::Uncertain),
            Some(_) => None,
        }
    }
}

/// What an uncertain (-1) label becomes. The default, `Ignore`, is what torchxrayvision does
/// (uncertain -> NaN, left out of the loss and of AUC): in [`LabelTable::multi_hot`] it reads
/// 0 and [`LabelTable::mask`] marks it 0 (unknown). Missing (blank) labels read 0 in
/// `multi_hot` and are controlled separately by [`MissingPolicy`] in `mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum UncertainPolicy {
    #[default]
    Ignore,
    AsNegative,
    AsPositive,
}

/// What a blank (not mentioned) label becomes. Default `AsNegative`: CXR-LT and NIH have no
/// blanks, and for CheXpert-style files "not mentioned" is the usual negative (CheXzero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum MissingPolicy {
    Ignore,
    #[default]
    AsNegative,
}

/// Which `ViewPosition` values to keep. Default: frontal (PA and AP).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ViewFilter {
    /// Kept views, compared case-insensitively; `None` keeps every row.
    pub views: Option<Vec<String>>,
    /// Keep rows whose view is unknown (blank).
    pub keep_missing: bool,
}

impl Default for ViewFilter {
    fn default() -> Self {
        Self::frontal()
    }
}

impl ViewFilter {
    /// PA and AP only; rows with no view are dropped.
    pub fn frontal() -> Self {
        Self::only(&["PA", "AP"])
    }
    /// Keep everything.
    pub fn all() -> Self {
        Self {
            views: None,
            keep_missing: true,
        }
    }
    /// Keep the listed views; rows with no view are dropped.
    pub fn only(views: &[&str]) -> Self {
        Self {
            views: Some(views.iter().map(|v| v.to_string()).collect()),
            keep_missing: false,
        }
    }
    /// Whether a row with this view passes.
    pub fn keeps(&self, view: Option<&str>) -> bool {
        match (&self.views, view) {
            (None, _) => true,
            (Some(_), None) => self.keep_missing,
            (Some(vs), Some(v)) => vs.iter().any(|k| k.eq_ignore_ascii_case(v.trim())),
        }
    }
}

/// One image with its patient, study, view and labels (one entry per class of its table).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub dicom_id: String,
    pub subject_id: u64,
    pub study_id: u64,
    pub view_position: Option<String>,
    /// Relative to the data root; checked by [`checked_relative_path`] so it cannot escape.
    pub path: PathBuf,
    pub labels: Vec<LabelState>,
}

/// A class vocabulary and the records labelled with it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelTable {
    pub classes: Vec<String>,
    pub records: Vec<Record>,
}

/// Per-class label counts, as printed by `cargo xtask data summary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClassCounts {
    pub name: String,
    pub positive: usize,
    pub negative: usize,
    pub uncertain: usize,
    pub missing: usize,
}

impl LabelTable {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }
    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Drop the records whose view the filter rejects; returns how many were removed.
    pub fn filter_views(&mut self, filter: &ViewFilter) -> usize {
        let before = self.records.len();
        self.records
            .retain(|r| filter.keeps(r.view_position.as_deref()));
        before - self.records.len()
    }

    /// N x C matrix of 1.0 (positive) / 0.0 (everything else); uncertain labels read 1.0 only
    /// under [`UncertainPolicy::AsPositive`]. Pair with [`Self::mask`] for the ignored ones.
    pub fn multi_hot(&self, policy: UncertainPolicy) -> Array2<f32> {
        let (n, c) = (self.records.len(), self.classes.len());
        Array2::from_shape_fn((n, c), |(i, j)| match self.records[i].labels.get(j) {
            Some(LabelState::Positive) => 1.0,
            Some(LabelState::Uncertain) if policy == UncertainPolicy::AsPositive => 1.0,
            _ => 0.0,
        })
    }

    /// N x C matrix of 1.0 where the label is known under the policies, 0.0 where it is
    /// ignored (uncertain under `Ignore`, blank under `MissingPolicy::Ignore`).
    pub fn mask(&self, uncertain: UncertainPolicy, missing: MissingPolicy) -> Array2<f32> {
        let (n, c) = (self.records.len(), self.classes.len());
        Array2::from_shape_fn((n, c), |(i, j)| match self.records[i].labels.get(j) {
            Some(LabelState::Uncertain) if uncertain == UncertainPolicy::Ignore => 0.0,
            Some(LabelState::Missing) | None if missing == MissingPolicy::Ignore => 0.0,
            _ => 1.0,
        })
    }

    /// Names of the classes record `i` is positive for (empty when out of range).
    pub fn positive_class_names(&self, i: usize) -> Vec<&str> {
        let Some(r) = self.records.get(i) else {
            return Vec::new();
        };
        r.labels
            .iter()
            .zip(&self.classes)
            .filter(|(l, _)| **l == LabelState::Positive)
            .map(|(_, n)| n.as_str())
            .collect()
    }

    /// Subject id of every record, in order (the input of [`crate::split`]).
    pub fn subjects(&self) -> Vec<u64> {
        self.records.iter().map(|r| r.subject_id).collect()
    }

    /// A new table with the records at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> LabelTable {
        LabelTable {
            classes: self.classes.clone(),
            records: idx.iter().map(|&i| self.records[i].clone()).collect(),
        }
    }

    /// Positive / negative / uncertain / missing counts per class.
    pub fn class_counts(&self) -> Vec<ClassCounts> {
        let mut out: Vec<ClassCounts> = self
            .classes
            .iter()
            .map(|n| ClassCounts {
                name: n.clone(),
                ..Default::default()
            })
            .collect();
        for r in &self.records {
            for (j, l) in r.labels.iter().enumerate().take(out.len()) {
                let cc = &mut out[j];
                match l {
                    LabelState::Positive => cc.positive += 1,
                    LabelState::Negative => cc.negative += 1,
                    LabelState::Uncertain => cc.uncertain += 1,
                    LabelState::Missing => cc.missing += 1,
                }
            }
        }
        out
    }

    /// Positives per class (for [`crate::classes::base_rare_split`]).
    pub fn positive_counts(&self) -> Vec<u32> {
        self.class_counts()
            .iter()
            .map(|c| c.positive as u32)
            .collect()
    }

    /// Re-express the labels in another vocabulary (e.g. the 40 CXR-LT classes), matching
    /// names through [`crate::classes::canonical_name`]; classes the table lacks become
    /// `Missing`. Returns the target names this table could not supply.
    pub fn reorder_classes(&mut self, target: &[String]) -> Vec<String> {
        let map: Vec<Option<usize>> = target
            .iter()
            .map(|t| {
                let t = crate::classes::canonical_name(t);
                self.classes
                    .iter()
                    .position(|c| crate::classes::canonical_name(c) == t)
            })
            .collect();
        for r in &mut self.records {
            r.labels = map
                .iter()
                .map(|m| {
                    m.and_then(|j| r.labels.get(j).copied())
                        .unwrap_or(LabelState::Missing)
                })
                .collect();
        }
        self.classes = target.to_vec();
        target
            .iter()
            .zip(&map)
            .filter(|(_, m)| m.is_none())
            .map(|(t, _)| t.clone())
            .collect()
    }
}

/// A label-file row left out by a lenient reader ([`crate::read_cxr_lt_lenient`]): its line
/// in the file (1-based, the header is line 1) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedRow {
    pub file: PathBuf,
    pub line: usize,
    pub reason: String,
}

/// Check that a path read from a CSV stays inside the data root: relative, with no `..`,
/// root or drive prefix. Returns it as a `PathBuf` with `.` components dropped.
pub fn checked_relative_path(raw: &str, csv: &Path, row: usize) -> Result<PathBuf> {
    let escape = || DataError::PathEscape {
        csv: csv.to_path_buf(),
        row,
        path: raw.to_string(),
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(escape());
    }
    // Fast path for the usual `files/p10/...` (hundreds of thousands per label file): on Unix a
    // path with no leading `/` or `.` and no `/.` has no root, `.` or `..` component.
    if cfg!(unix) && !trimmed.starts_with(['/', '.']) && !trimmed.contains("/.") {
        return Ok(PathBuf::from(trimmed));
    }
    let mut clean = true;
    let mut any = false;
    for comp in Path::new(trimmed).components() {
        match comp {
            Component::Normal(_) => any = true,
            Component::CurDir => clean = false,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(escape())
            }
        }
    }
    if !any {
        return Err(escape());
    }
    if clean {
        // The common case: no `.` to drop, so keep the string as it is (one allocation).
        return Ok(PathBuf::from(trimmed));
    }
    Ok(Path::new(trimmed)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect())
}

/// The MIMIC-CXR-JPG image path `files/p10/p10000032/s50414267/<dicom_id>.jpg`.
pub fn mimic_image_path(subject_id: u64, study_id: u64, dicom_id: &str) -> PathBuf {
    let mut p = mimic_study_dir(subject_id, study_id);
    p.push(format!("{dicom_id}.jpg"));
    p
}

/// The MIMIC-CXR study folder `files/p10/p10000032/s50414267`.
pub fn mimic_study_dir(subject_id: u64, study_id: u64) -> PathBuf {
    let s = subject_id.to_string();
    let prefix = &s[..2.min(s.len())];
    PathBuf::from(format!("files/p{prefix}/p{s}/s{study_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> LabelTable {
        use LabelState::*;
        let rec = |id: &str, view: Option<&str>, labels: Vec<LabelState>| Record {
            dicom_id: id.into(),
            subject_id: 1,
            study_id: 2,
            view_position: view.map(str::to_string),
            path: PathBuf::from(format!("{id}.jpg")),
            labels,
        };
        LabelTable {
            classes: vec!["A".into(), "B".into()],
            records: vec![
                rec("a", Some("PA"), vec![Positive, Uncertain]),
                rec("b", Some("LATERAL"), vec![Negative, Positive]),
                rec("c", None, vec![Missing, Negative]),
                rec("d", Some("ap"), vec![Uncertain, Missing]),
            ],
        }
    }

    #[test]
    fn policies_and_mask() {
        let t = table();
        let ign = t.multi_hot(UncertainPolicy::Ignore);
        assert_eq!(ign.row(0).to_vec(), vec![1.0, 0.0]);
        let pos = t.multi_hot(UncertainPolicy::AsPositive);
        assert_eq!(pos.row(0).to_vec(), vec![1.0, 1.0]);
        let m = t.mask(UncertainPolicy::Ignore, MissingPolicy::Ignore);
        assert_eq!(m.row(0).to_vec(), vec![1.0, 0.0]);
        assert_eq!(m.row(2).to_vec(), vec![0.0, 1.0]);
        let m = t.mask(UncertainPolicy::AsNegative, MissingPolicy::AsNegative);
        assert!(m.iter().all(|&x| x == 1.0));
        assert_eq!(t.positive_class_names(1), vec!["B"]);
        assert!(t.positive_class_names(9).is_empty());
        let cc = t.class_counts();
        assert_eq!(
            (
                cc[0].positive,
                cc[0].negative,
                cc[0].uncertain,
                cc[0].missing
            ),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn frontal_filter_drops_lateral_and_missing_views() {
        let mut t = table();
        assert_eq!(t.filter_views(&ViewFilter::default()), 2);
        let ids: Vec<&str> = t.records.iter().map(|r| r.dicom_id.as_str()).collect();
        assert_eq!(ids, vec!["a", "d"]);
        let mut t = table();
        assert_eq!(t.filter_views(&ViewFilter::all()), 0);
    }

    #[test]
    fn escaping_paths_are_rejected() {
        let csv = Path::new("x.csv");
        assert_eq!(
            checked_relative_path("./files/p10/a.jpg", csv, 0).unwrap(),
            PathBuf::from("files/p10/a.jpg")
        );
        assert_eq!(
            checked_relative_path(" files/p10/a.jpg ", csv, 0).unwrap(),
            PathBuf::from("files/p10/a.jpg")
        );
        for bad in ["../etc/passwd", "/etc/passwd", "files/../../x.jpg", "", "."] {
            let e = checked_relative_path(bad, csv, 3).unwrap_err();
            assert!(e.to_string().contains("escapes the data root"), "{e}");
        }
    }

    #[test]
    fn reorder_to_cxr_lt_uses_aliases() {
        let mut t = LabelTable {
            classes: vec!["Effusion".into(), "Mass".into()],
            records: vec![Record {
                dicom_id: "x".into(),
                subject_id: 1,
                study_id: 1,
                view_position: None,
                path: "x.jpg".into(),
                labels: vec![LabelState::Positive, LabelState::Negative],
            }],
        };
        let missing = t.reorder_classes(&crate::classes::cxr_lt_class_names());
        assert_eq!(missing.len(), 38);
        assert_eq!(t.positive_class_names(0), vec!["Pleural Effusion"]);
        assert_eq!(
            mimic_image_path(10000032, 50414267, "d").to_str().unwrap(),
            "files/p10/p10000032/s50414267/d.jpg"
        );
    }
}
