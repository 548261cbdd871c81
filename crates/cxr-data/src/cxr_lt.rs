//! The CXR-LT 2024 challenge's evaluation files and tasks.
//!
//! PhysioNet `cxr-lt-iccv-workshop-cvamd` 2.0.0, folder `cxr-lt-2024/`, holds the label files
//! of the three tasks: task 1 (the 40 classes on the large, noisy test set), task 2 (a
//! manually annotated "gold standard" subset of about 400 images over 26 of the 40 classes,
//! in another column order) and task 3 (zero-shot: the five classes [`UNSEEN_CLASSES`] on the
//! task 1 test images). Each task has a development and a test file whose names vary between
//! releases ([`CxrLtTask::file_names`]); `labels.csv` holds every label of every image with a
//! `split` column and serves tasks 1 and 3 when their own file is absent. Columns are read by
//! name, never by position. Every task is ranked by macro mAP over its classes.

use std::path::{Path, PathBuf};

use crate::classes::{map_classes, ClassMapping, CXR_LT_CLASSES};
use crate::datasets::find_csv;
use crate::readers::Csv;
use crate::table::{LabelState, LabelTable};
use crate::{DataError, Result};

pub mod synth;

/// Task 3's five classes, never seen in training (zero-shot).
pub const UNSEEN_CLASSES: [&str; 5] = [
    "Bulla",
    "Cardiomyopathy",
    "Hilum",
    "Osteopenia",
    "Scoliosis",
];

/// Number of classes task 2's gold-standard files label (a subset of the 40).
pub const TASK2_CLASS_COUNT: usize = 26;

/// The combined label file: every image, all 45 labels and a `split` column.
pub const COMBINED_LABELS: &str = "labels.csv";

/// Where the files come from, for error messages.
pub const SOURCE: &str = "PhysioNet `cxr-lt-iccv-workshop-cvamd` 2.0.0 \
     (https://physionet.org/content/cxr-lt-iccv-workshop-cvamd/2.0.0/), folder cxr-lt-2024/";

/// One of the challenge's three tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CxrLtTask {
    /// The 40 classes on the large test set.
    One,
    /// The gold-standard subset: 26 of the 40 classes, annotated by hand.
    Two,
    /// Zero-shot: the five [`UNSEEN_CLASSES`] on the task 1 test images.
    Three,
}

/// Which of a task's evaluation files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CxrLtSplit {
    Development,
    Test,
}

impl CxrLtTask {
    pub const ALL: [CxrLtTask; 3] = [Self::One, Self::Two, Self::Three];

    /// 1, 2 or 3.
    pub fn number(self) -> u8 {
        match self {
            Self::One => 1,
            Self::Two => 2,
            Self::Three => 3,
        }
    }

    /// The file names this task's `split` file has had, in the order they are tried (each
    /// also as `.gz`).
    pub fn file_names(self, split: CxrLtSplit) -> Vec<String> {
        let n = self.number();
        match (split, self) {
            (CxrLtSplit::Development, Self::Three) => vec![
                "development_labeled_task3.csv".into(),
                "development_task3.csv".into(),
            ],
            (CxrLtSplit::Development, _) => vec![format!("development_labeled_task{n}.csv")],
            (CxrLtSplit::Test, _) => vec![format!("test_labeled_task{n}.csv")],
        }
    }

    /// The official classes, in the order results list them. Task 2's 26 classes are the
    /// class columns of its file (every one must be a CXR-LT class): `None` here.
    pub fn official_classes(self) -> Option<Vec<&'static str>> {
        match self {
            Self::One => Some(CXR_LT_CLASSES.iter().map(|c| c.name).collect()),
            Self::Two => None,
            Self::Three => Some(UNSEEN_CLASSES.to_vec()),
        }
    }

    /// Whether `labels.csv` (split column) can stand in for the task's own file: tasks 1 and
    /// 3 label whole splits; task 2's gold-standard subset is only in its own file.
    pub fn combined_file_serves(self) -> bool {
        !matches!(self, Self::Two)
    }
}

impl std::fmt::Display for CxrLtTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task {}", self.number())
    }
}

impl std::str::FromStr for CxrLtTask {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().trim_start_matches("task") {
            "1" => Ok(Self::One),
            "2" => Ok(Self::Two),
            "3" => Ok(Self::Three),
            _ => Err(DataError::InvalidParam(format!(
                "unknown CXR-LT 2024 task {s:?}: use 1 (40 classes), 2 (gold standard) or 3 \
                 (zero-shot, 5 unseen classes)"
            ))),
        }
    }
}

impl CxrLtSplit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
        }
    }

    /// Whether a `split` cell of `labels.csv` names this split (case-insensitive):
    /// development is `development`, `dev`, `validate`, `validation` or `val`.
    pub fn matches(self, cell: &str) -> bool {
        let c = cell.trim().to_ascii_lowercase();
        match self {
            Self::Development => {
                matches!(
                    c.as_str(),
                    "development" | "dev" | "validate" | "validation" | "val"
                )
            }
            Self::Test => c == "test",
        }
    }
}

impl std::fmt::Display for CxrLtSplit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CxrLtSplit {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "test" => Ok(Self::Test),
            _ => Err(DataError::InvalidParam(format!(
                "unknown CXR-LT 2024 split {s:?}: use development or test"
            ))),
        }
    }
}

/// A task's label file as found under a data root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFile {
    pub path: PathBuf,
    /// `labels.csv`: rows are selected by its `split` column.
    pub combined: bool,
}

/// Finds `task`'s `split` file under `root`: its own names first
/// ([`CxrLtTask::file_names`], plain or `.gz`), then `labels.csv` where it serves the task.
/// The error lists every name tried and where to get the files.
pub fn find_task_file(root: &Path, task: CxrLtTask, split: CxrLtSplit) -> Result<TaskFile> {
    let mut tried = task.file_names(split);
    for name in &tried {
        if let Ok(path) = find_csv(root, name) {
            return Ok(TaskFile {
                path,
                combined: false,
            });
        }
    }
    if task.combined_file_serves() {
        if let Ok(path) = find_csv(root, COMBINED_LABELS) {
            return Ok(TaskFile {
                path,
                combined: true,
            });
        }
        tried.push(COMBINED_LABELS.into());
    }
    Err(DataError::Format {
        path: root.to_path_buf(),
        message: format!(
            "no CXR-LT 2024 {task} {split} label file here (tried {}, each also as .gz); \
             download the challenge's files from {SOURCE} and read them from that folder",
            tried.join(", ")
        ),
    })
}

/// A task's labels, ready to score: the rows of the split, the official classes only (in the
/// official order), and how the file's class columns mapped onto them.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskLabels {
    pub task: CxrLtTask,
    pub split: CxrLtSplit,
    pub file: PathBuf,
    pub table: LabelTable,
    /// The file's class columns against the official classes: `unmapped` columns are not
    /// scored (and say so); every official class is mapped, or reading fails.
    pub mapping: ClassMapping,
}

/// [`find_task_file`] then [`read_task_file`].
pub fn read_task(root: &Path, task: CxrLtTask, split: CxrLtSplit) -> Result<TaskLabels> {
    let f = find_task_file(root, task, split)?;
    read_task_file(&f.path, task, split, f.combined)
}

/// Reads one task file (columns by name; `combined`: `labels.csv`, whose rows are filtered by
/// its `split` column). Class columns are matched to the official classes through the alias
/// table; an official class the file lacks is an error naming it, a column that is not an
/// official class is reported in `mapping.unmapped`. Task 2 takes its classes from the file:
/// every CXR-LT class column it has (a warning when that is not 26).
pub fn read_task_file(
    path: &Path,
    task: CxrLtTask,
    split: CxrLtSplit,
    combined: bool,
) -> Result<TaskLabels> {
    let mut table = crate::read_cxr_lt(path)?;
    if combined {
        let csv = Csv::read(path)?;
        let splits = csv.strings("split")?;
        let keep: Vec<usize> = (0..table.len())
            .filter(|&i| {
                splits
                    .get(i)
                    .and_then(|s| s.as_deref())
                    .is_some_and(|s| split.matches(s))
            })
            .collect();
        if keep.is_empty() {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "no row has split {:?} (the `split` column of {COMBINED_LABELS})",
                    split.as_str()
                ),
            });
        }
        table = table.select(&keep);
    }
    let official: Vec<String> = match task.official_classes() {
        Some(c) => c.iter().map(|s| s.to_string()).collect(),
        None => {
            let m = crate::classes::map_to_cxr_lt(&table.classes);
            let found: Vec<String> = m.mapped.iter().map(|c| c.to.clone()).collect();
            if found.is_empty() {
                return Err(DataError::Format {
                    path: path.to_path_buf(),
                    message: "no CXR-LT class column: is this task 2's gold-standard file?".into(),
                });
            }
            if found.len() != TASK2_CLASS_COUNT {
                tracing::warn!(
                    file = %path.display(),
                    classes = found.len(),
                    "task 2's gold-standard files label {TASK2_CLASS_COUNT} classes"
                );
            }
            found
        }
    };
    let vocab: Vec<&str> = official.iter().map(String::as_str).collect();
    let mapping = map_classes(&table.classes, &vocab);
    for (i, a) in mapping.mapped.iter().enumerate() {
        if let Some(b) = mapping.mapped[i + 1..].iter().find(|b| b.to == a.to) {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "columns {:?} and {:?} are the same class {:?}: keep one",
                    a.from, b.from, a.to
                ),
            });
        }
    }
    let missing: Vec<&str> = vocab
        .iter()
        .filter(|o| !mapping.mapped.iter().any(|m| m.to == **o))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            message: format!(
                "{task} needs the class columns {missing:?}, which this file lacks (its class \
                 columns: {:?}); is it the {task} {split} file?",
                table.classes
            ),
        });
    }
    if !mapping.unmapped.is_empty() {
        tracing::warn!(
            file = %path.display(),
            unmapped = ?mapping.unmapped,
            "class columns outside {task}'s classes are not scored"
        );
    }
    // Columns in the official order, under the official names.
    let order: Vec<String> = official
        .iter()
        .map(|o| {
            mapping
                .mapped
                .iter()
                .find(|m| &m.to == o)
                .map_or_else(|| o.clone(), |m| m.from.clone())
        })
        .collect();
    let lacking = table.reorder_classes(&order);
    debug_assert!(lacking.is_empty());
    table.classes = official;
    Ok(TaskLabels {
        task,
        split,
        file: path.to_path_buf(),
        table,
        mapping,
    })
}

/// Writes `table` as a CXR-LT label file (`dicom_id, subject_id, study_id, ViewPosition,
/// fpath`, then one column per class: 1 / 0 / -1 / blank) that [`crate::read_cxr_lt`] reads
/// back to the same table. Class names holding a comma or quote are quoted.
pub fn write_cxr_lt_csv(path: &Path, table: &LabelTable) -> Result<()> {
    let field = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = String::from("dicom_id,subject_id,study_id,ViewPosition,fpath");
    for c in &table.classes {
        out.push(',');
        out.push_str(&field(c));
    }
    out.push('\n');
    for r in &table.records {
        out.push_str(&format!(
            "{},{},s{},{},{}",
            field(&r.dicom_id),
            r.subject_id,
            r.study_id,
            field(r.view_position.as_deref().unwrap_or("")),
            field(&r.path.to_string_lossy())
        ));
        for l in &r.labels {
            out.push_str(match l {
                LabelState::Positive => ",1",
                LabelState::Negative => ",0",
                LabelState::Uncertain => ",-1",
                LabelState::Missing => ",",
            });
        }
        out.push('\n');
    }
    crate::write_atomic(path, out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "dicom_id,subject_id,study_id,ViewPosition,ViewCodeSequence_CodeMeaning,fpath";

    fn row(id: &str, subject: u64, n: usize, ones: &[usize]) -> String {
        let mut s = format!(
            "{id},{subject},s5000000{subject},PA,postero-anterior,files/p10/p{subject}/s5000000{subject}/{id}.jpg"
        );
        for k in 0..n {
            s.push_str(if ones.contains(&k) { ",1" } else { ",0" });
        }
        s
    }

    fn file(dir: &Path, name: &str, classes: &[&str], rows: &[String]) -> PathBuf {
        let p = dir.join(name);
        let mut t = format!("{HEAD},{}\n", classes.join(","));
        for r in rows {
            t.push_str(r);
            t.push('\n');
        }
        std::fs::write(&p, t).unwrap();
        p
    }

    #[test]
    fn tasks_and_splits_parse_and_name_their_files() {
        assert_eq!("2".parse::<CxrLtTask>().unwrap(), CxrLtTask::Two);
        assert_eq!("task3".parse::<CxrLtTask>().unwrap(), CxrLtTask::Three);
        assert!("4".parse::<CxrLtTask>().is_err());
        assert_eq!(
            "dev".parse::<CxrLtSplit>().unwrap(),
            CxrLtSplit::Development
        );
        assert!("train".parse::<CxrLtSplit>().is_err());
        assert_eq!(
            CxrLtTask::Three.file_names(CxrLtSplit::Development),
            vec!["development_labeled_task3.csv", "development_task3.csv"]
        );
        assert_eq!(
            CxrLtTask::Two.file_names(CxrLtSplit::Test),
            vec!["test_labeled_task2.csv"]
        );
        assert_eq!(CxrLtTask::One.official_classes().unwrap().len(), 40);
        assert_eq!(
            CxrLtTask::Three.official_classes().unwrap(),
            UNSEEN_CLASSES.to_vec()
        );
        assert!(CxrLtSplit::Development.matches("Validate"));
        assert!(!CxrLtSplit::Test.matches("train"));
    }

    #[test]
    fn task3_name_variant_and_task2_column_order_are_read_by_name() {
        let dir = tempfile::tempdir().unwrap();
        // Task 3 under its older name, classes in another order.
        let t3 = [
            "Scoliosis",
            "Bulla",
            "Osteopenia",
            "Hilum",
            "Cardiomyopathy",
        ];
        file(
            dir.path(),
            "development_task3.csv",
            &t3,
            &[row("a", 10000001, 5, &[0]), row("b", 10000002, 5, &[1, 4])],
        );
        let t = read_task(dir.path(), CxrLtTask::Three, CxrLtSplit::Development).unwrap();
        assert!(t.file.ends_with("development_task3.csv"));
        assert_eq!(t.table.classes, UNSEEN_CLASSES.to_vec());
        assert_eq!(t.table.positive_class_names(0), vec!["Scoliosis"]);
        assert_eq!(
            t.table.positive_class_names(1),
            vec!["Bulla", "Cardiomyopathy"]
        );
        assert!(t.mapping.unmapped.is_empty());

        // Task 2: a reversed subset of the 40, plus a column that is not a class of the task.
        let mut t2: Vec<&str> = CXR_LT_CLASSES[..27]
            .iter()
            .map(|c| c.name)
            .filter(|&c| c != "Pleural Effusion")
            .collect();
        t2.reverse();
        t2.push("Effusion"); // NIH's spelling: mapped to Pleural Effusion, and scored
        t2.push("Comment Code");
        let n = t2.len();
        file(
            dir.path(),
            "test_labeled_task2.csv",
            &t2,
            &[
                row("c", 10000003, n, &[0, 26]),
                row("d", 10000004, n, &[25]),
            ],
        );
        let t = read_task(dir.path(), CxrLtTask::Two, CxrLtSplit::Test).unwrap();
        assert_eq!(t.table.classes.len(), 27);
        assert_eq!(t.table.classes[0], "Pleural Other");
        assert_eq!(t.table.classes[26], "Pleural Effusion");
        assert_eq!(
            t.table.positive_class_names(0),
            vec!["Pleural Other", "Pleural Effusion"]
        );
        assert_eq!(t.table.positive_class_names(1), vec!["Adenopathy"]);
        assert_eq!(t.mapping.unmapped, vec!["Comment Code"]);
        assert_eq!(t.mapping.target("Effusion"), Some("Pleural Effusion"));
    }

    #[test]
    fn combined_labels_csv_is_filtered_by_split_and_official_classes() {
        let dir = tempfile::tempdir().unwrap();
        let mut classes: Vec<&str> = CXR_LT_CLASSES.iter().map(|c| c.name).collect();
        classes.extend(UNSEEN_CLASSES);
        let mut text = format!("{HEAD},{},split\n", classes.join(","));
        for (i, sp) in ["train", "test", "development", "test"].iter().enumerate() {
            let r = row(&format!("i{i}"), 10000010 + i as u64, 45, &[i, 40 + i]);
            text.push_str(&format!("{r},{sp}\n"));
        }
        std::fs::write(dir.path().join("labels.csv"), text).unwrap();
        let t = read_task(dir.path(), CxrLtTask::Three, CxrLtSplit::Test).unwrap();
        assert_eq!(t.table.len(), 2);
        assert_eq!(t.table.classes, UNSEEN_CLASSES.to_vec());
        assert_eq!(t.table.records[0].dicom_id, "i1");
        assert_eq!(t.table.positive_class_names(1), vec!["Osteopenia"]);
        assert_eq!(t.mapping.unmapped.len(), 40);
        let t = read_task(dir.path(), CxrLtTask::One, CxrLtSplit::Development).unwrap();
        assert_eq!(t.table.len(), 1);
        assert_eq!(t.table.classes.len(), 40);
        assert_eq!(t.mapping.unmapped, UNSEEN_CLASSES.to_vec());
        // Task 2 is never read from labels.csv.
        let e = read_task(dir.path(), CxrLtTask::Two, CxrLtSplit::Test)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("test_labeled_task2.csv") && !e.contains("labels.csv"),
            "{e}"
        );
        // Two columns for one class is an error, not a silent choice.
        file(
            dir.path(),
            "test_labeled_task2.csv",
            &["Effusion", "Pleural Effusion"],
            &[row("a", 10000001, 2, &[0])],
        );
        let e = read_task(dir.path(), CxrLtTask::Two, CxrLtSplit::Test)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Effusion") && e.contains("same class"), "{e}");
    }

    #[test]
    fn missing_file_and_missing_classes_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_task(dir.path(), CxrLtTask::Three, CxrLtSplit::Development)
            .unwrap_err()
            .to_string();
        for want in [
            "development_labeled_task3.csv",
            "development_task3.csv",
            "labels.csv",
            "cxr-lt-iccv-workshop-cvamd",
            "cxr-lt-2024/",
        ] {
            assert!(e.contains(want), "{want} not in {e}");
        }
        file(
            dir.path(),
            "test_labeled_task3.csv",
            &["Bulla", "Hilum"],
            &[row("a", 10000001, 2, &[0])],
        );
        let e = read_task(dir.path(), CxrLtTask::Three, CxrLtSplit::Test)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Cardiomyopathy") && e.contains("test_labeled_task3.csv"),
            "{e}"
        );
    }

    #[test]
    fn written_tables_read_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        file(
            dir.path(),
            "test_labeled_task1.csv",
            &CXR_LT_CLASSES.iter().map(|c| c.name).collect::<Vec<_>>(),
            &[
                row("a", 10000001, 40, &[3, 35]),
                row("b", 10000002, 40, &[]),
            ],
        );
        let t = read_task(dir.path(), CxrLtTask::One, CxrLtSplit::Test).unwrap();
        let out = dir.path().join("copy.csv");
        write_cxr_lt_csv(&out, &t.table).unwrap();
        assert_eq!(crate::read_cxr_lt(&out).unwrap(), t.table);
    }
}
