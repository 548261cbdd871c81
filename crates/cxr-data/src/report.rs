//! MIMIC-CXR free-text reports: the impression (CheXzero's training text).

use std::path::{Path, PathBuf};

use crate::table::mimic_study_dir;
use crate::{DataError, Result};

/// Path of a study's report relative to the data root: `files/p10/p10000032/s50414267.txt`.
pub fn report_path(subject_id: u64, study_id: u64) -> PathBuf {
    let dir = mimic_study_dir(subject_id, study_id);
    let mut p = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    p.push(format!("s{study_id}.txt"));
    p
}

/// Read `root/files/pXX/pSUBJECT/sSTUDY.txt` and return its IMPRESSION section, or its
/// FINDINGS section when there is no impression, whitespace-collapsed. `Ok(None)` when the
/// report file does not exist or has neither section (CheXzero skips such studies); other I/O
/// failures are errors naming the file.
pub fn read_report_impression(
    root: &Path,
    subject_id: u64,
    study_id: u64,
) -> Result<Option<String>> {
    let path = root.join(report_path(subject_id, study_id));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DataError::io(path, e)),
    };
    Ok(extract_section(&text, "IMPRESSION").or_else(|| extract_section(&text, "FINDINGS")))
}

/// The text after `NAME:` up to the next upper-case `HEADER:` at the start of a line.
pub fn extract_section(text: &str, name: &str) -> Option<String> {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some((head, rest)) = section_header(t) {
            if inside {
                break;
            }
            if head == name {
                inside = true;
                out.push_str(rest);
                out.push(' ');
            }
            continue;
        }
        if inside {
            out.push_str(t);
            out.push(' ');
        }
    }
    let collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    (inside && !collapsed.is_empty()).then_some(collapsed)
}

/// `("FINDINGS", "rest of line")` when the line starts with an upper-case header and a colon.
fn section_header(line: &str) -> Option<(&str, &str)> {
    let (head, rest) = line.split_once(':')?;
    let ok = !head.is_empty()
        && head
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == ' ' || c == '_')
        && head.chars().any(|c| c.is_ascii_uppercase());
    ok.then(|| (head.trim(), rest.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "                                 FINAL REPORT\n EXAMINATION:  CHEST (PA AND LAT)\n \n INDICATION:  ___ with cough\n \n FINDINGS: \n \n There is a small left pleural effusion.  No pneumothorax.\n Heart size is normal.\n \n IMPRESSION: \n \n Small left effusion.\n Otherwise no acute process.\n";

    #[test]
    fn impression_then_findings_fallback() {
        assert_eq!(
            extract_section(REPORT, "IMPRESSION").unwrap(),
            "Small left effusion. Otherwise no acute process."
        );
        assert_eq!(
            extract_section(REPORT, "FINDINGS").unwrap(),
            "There is a small left pleural effusion. No pneumothorax. Heart size is normal."
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(report_path(10000032, 50414267));
        assert!(p.ends_with("files/p10/p10000032/s50414267.txt"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, REPORT.replace("IMPRESSION", "NOTE")).unwrap();
        let got = read_report_impression(dir.path(), 10000032, 50414267)
            .unwrap()
            .unwrap();
        assert!(got.starts_with("There is a small left pleural effusion."));
        assert_eq!(
            read_report_impression(dir.path(), 10000033, 1).unwrap(),
            None
        );
    }
}
