//! CSV readers (polars). Columns are found by name, never by position.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;

use crate::table::{
    checked_relative_path, mimic_image_path, LabelState, LabelTable, Record, SkippedRow,
};
use crate::{DataError, Result};

/// Leading (non-class) columns of CXR-LT label files and of MIMIC-CXR-JPG tables.
const CXR_LT_META: [&str; 9] = [
    "dicom_id",
    "subject_id",
    "study_id",
    "ViewPosition",
    "ViewCodeSequence_CodeMeaning",
    "fpath",
    "split",
    "PerformedProcedureStepDescription",
    "PatientOrientationCodeSequence_CodeMeaning",
];

/// A parsed CSV and the file it came from (for error messages).
pub(crate) struct Csv {
    pub df: DataFrame,
    pub path: PathBuf,
}

impl Csv {
    /// Read a CSV, or a gzip-compressed one (`.gz`, as MIMIC-CXR-JPG ships them).
    pub fn read(path: &Path) -> Result<Self> {
        Self::from_bytes(read_bytes(path)?, path)
    }

    /// Parse CSV bytes already in memory; `path` names the file in error messages.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self> {
        // polars 0.55 panics on some malformed quoting (a quoted field running to the end of
        // the file after a stray byte); that is a bad file, not a bug of ours.
        let df = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(1000))
                .into_reader_with_file_handle(std::io::Cursor::new(bytes))
                .finish()
        }))
        .map_err(|_| DataError::Csv {
            path: path.to_path_buf(),
            message: "the CSV parser failed on malformed content (an unterminated quote?)".into(),
        })?
        .map_err(|e| DataError::csv(path, e))?;
        Ok(Self {
            df,
            path: path.to_path_buf(),
        })
    }

    pub fn height(&self) -> usize {
        self.df.height()
    }

    pub fn names(&self) -> Vec<String> {
        self.df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.df.column(name).is_ok()
    }

    fn column(&self, name: &str) -> Result<&Column> {
        self.df.column(name).map_err(|_| DataError::MissingColumn {
            path: self.path.clone(),
            column: name.to_string(),
        })
    }

    /// A column cast to strings, to borrow `&str`s from without copying them.
    pub fn str_column(&self, name: &str) -> Result<Column> {
        self.column(name)?
            .cast(&DataType::String)
            .map_err(|e| DataError::csv(&self.path, e))
    }

    /// A column as optional strings (numbers are formatted; blanks are `None`).
    pub fn strings(&self, name: &str) -> Result<Vec<Option<String>>> {
        let col = self
            .column(name)?
            .cast(&DataType::String)
            .map_err(|e| DataError::csv(&self.path, e))?;
        let ca = col.str().map_err(|e| DataError::csv(&self.path, e))?;
        Ok(ca
            .iter()
            .map(|o| {
                o.map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            })
            .collect())
    }

    /// An id column: integers, optionally prefixed with `p` / `s` ("s50414267").
    pub fn ids(&self, name: &str) -> Result<Vec<u64>> {
        let col = self.column(name)?;
        if col.dtype().is_integer() {
            let c = col
                .cast(&DataType::Int64)
                .map_err(|e| DataError::csv(&self.path, e))?;
            let ca = c.i64().map_err(|e| DataError::csv(&self.path, e))?;
            return ca
                .iter()
                .enumerate()
                .map(|(row, v)| match v {
                    Some(x) if x >= 0 => Ok(x as u64),
                    _ => Err(self.bad(
                        row,
                        name,
                        v.map(|x| x.to_string()).unwrap_or_default(),
                        "an integer id",
                    )),
                })
                .collect();
        }
        let c = col
            .cast(&DataType::String)
            .map_err(|e| DataError::csv(&self.path, e))?;
        let ca = c.str().map_err(|e| DataError::csv(&self.path, e))?;
        ca.iter()
            .enumerate()
            .map(|(row, v)| {
                v.and_then(parse_id).ok_or_else(|| {
                    self.bad(
                        row,
                        name,
                        v.unwrap_or_default().to_string(),
                        "an integer id",
                    )
                })
            })
            .collect()
    }

    /// A label column decoded into [`LabelState`]s (1 / 0 / -1 / blank).
    pub fn labels(&self, name: &str) -> Result<Vec<LabelState>> {
        let col = self.column(name)?;
        if col.dtype().is_integer() {
            // Fast path for the usual 0/1 integer columns.
            let c = col
                .cast(&DataType::Int64)
                .map_err(|e| DataError::csv(&self.path, e))?;
            let ca = c.i64().map_err(|e| DataError::csv(&self.path, e))?;
            return ca
                .iter()
                .enumerate()
                .map(|(row, v)| match v {
                    Some(1) => Ok(LabelState::Positive),
                    Some(0) => Ok(LabelState::Negative),
                    Some(-1) => Ok(LabelState::Uncertain),
                    None => Ok(LabelState::Missing),
                    Some(x) => Err(self.bad(row, name, x.to_string(), "1, 0, -1 or blank")),
                })
                .collect();
        }
        let col = if col.dtype().is_primitive_numeric() {
            col.cast(&DataType::Float64)
        } else {
            col.strict_cast(&DataType::Float64)
        };
        let col = match col {
            Ok(c) => c,
            Err(_) => {
                // Find the first offending cell to report it.
                let vals = self.strings(name)?;
                for (row, v) in vals.iter().enumerate() {
                    if let Some(s) = v {
                        if s.parse::<f64>().is_err() {
                            return Err(self.bad(row, name, s.clone(), "1, 0, -1 or blank"));
                        }
                    }
                }
                return Err(DataError::csv(
                    &self.path,
                    format!("column {name:?} is not numeric"),
                ));
            }
        };
        let ca = col.f64().map_err(|e| DataError::csv(&self.path, e))?;
        ca.iter()
            .enumerate()
            .map(|(row, v)| {
                LabelState::from_code(v).ok_or_else(|| {
                    self.bad(
                        row,
                        name,
                        format!("{}", v.unwrap_or_default()),
                        "1, 0, -1 or blank",
                    )
                })
            })
            .collect()
    }

    pub fn bad(
        &self,
        row: usize,
        column: &str,
        value: String,
        expected: &'static str,
    ) -> DataError {
        DataError::BadValue {
            path: self.path.clone(),
            row: row + 2, // 1-based, after the header line: what an editor shows
            column: column.to_string(),
            value,
            expected,
        }
    }
}

/// Whether a file's name ends in `.gz` (read gunzipped).
fn is_gzip(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// The bytes of a file, gunzipped when its name ends in `.gz`.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    if !path.is_file() {
        return Err(DataError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    if !is_gzip(path) {
        return std::fs::read(path).map_err(|e| DataError::io(path, e));
    }
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut bytes = Vec::new();
    flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f))
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::csv(path, format!("gzip: {e}")))?;
    Ok(bytes)
}

fn parse_id(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_prefix(['p', 's']).unwrap_or(s);
    s.parse::<u64>().ok().or_else(|| {
        s.parse::<f64>()
            .ok()
            .filter(|x| x.fract() == 0.0 && *x >= 0.0)
            .map(|x| x as u64)
    })
}

/// Read a CXR-LT 2024 label file (`train_labeled.csv`, development / test files): leading
/// `dicom_id, subject_id, study_id, ViewPosition[, ViewCodeSequence_CodeMeaning][, fpath]`,
/// then one 0/1 column per class (every other column is taken as a class, in file order).
/// Without `fpath`, paths follow the MIMIC-CXR-JPG pattern. Class columns outside the CXR-LT
/// vocabulary are kept and logged.
///
/// The usual unquoted 0/1 files go through a specialised parallel parser (`fastcsv`); anything
/// it is not sure about is read by polars, with the same result.
pub fn read_cxr_lt(labels_csv: &Path) -> Result<LabelTable> {
    let table = if is_gzip(labels_csv) {
        // Gunzipped in memory, then the fast parser on the bytes.
        cxr_lt_from_bytes(read_bytes(labels_csv)?, labels_csv)?
    } else {
        let fast = if labels_csv.is_file() {
            crate::fastcsv::read_cxr_lt_file(labels_csv, &CXR_LT_META)
        } else {
            None
        };
        match fast {
            Some(t) => t,
            // Also the missing-file error, from `read_bytes`.
            None => read_cxr_lt_with_polars(labels_csv)?,
        }
    };
    warn_unknown_classes(&table, labels_csv);
    Ok(table)
}

/// CSV bytes through the fast parser, or polars where it declines.
fn cxr_lt_from_bytes(bytes: Vec<u8>, labels_csv: &Path) -> Result<LabelTable> {
    match crate::fastcsv::read_cxr_lt(&bytes, labels_csv, &CXR_LT_META) {
        Some(t) => Ok(t),
        None => read_cxr_lt_polars(Csv::from_bytes(bytes, labels_csv)?),
    }
}

fn warn_unknown_classes(table: &LabelTable, labels_csv: &Path) {
    let unknown: Vec<&String> = table
        .classes
        .iter()
        .filter(|c| crate::classes::cxr_lt_index(c).is_none())
        .collect();
    if !unknown.is_empty() {
        tracing::warn!(file = %labels_csv.display(), ?unknown, "class columns outside the CXR-LT vocabulary");
    }
}

/// [`read_cxr_lt`] that leaves out malformed rows instead of failing the file, and returns
/// them beside the table: a row with another number of fields than the header, an empty
/// `dicom_id`, a subject or study id that is not an integer, a label that is not 1, 0, -1 or
/// blank, or an `fpath` that leaves the data root. A file with no such row is read by
/// [`read_cxr_lt`] itself (same table, byte for byte); otherwise the remaining rows are.
/// Quoted fields are understood, but a quoted field spanning lines is not (its row is
/// reported as malformed). A bad header is still an error.
pub fn read_cxr_lt_lenient(labels_csv: &Path) -> Result<(LabelTable, Vec<SkippedRow>)> {
    let bytes = read_bytes(labels_csv)?;
    let skipped = malformed_rows(&bytes, labels_csv);
    if skipped.is_empty() {
        return Ok((read_cxr_lt(labels_csv)?, skipped));
    }
    tracing::warn!(
        file = %labels_csv.display(),
        rows = skipped.len(),
        "malformed label rows are skipped"
    );
    let bad: std::collections::HashSet<usize> = skipped.iter().map(|s| s.line).collect();
    let mut kept = Vec::with_capacity(bytes.len());
    for (i, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        if !bad.contains(&(i + 1)) {
            kept.extend_from_slice(line);
        }
    }
    let table = cxr_lt_from_bytes(kept, labels_csv)?;
    warn_unknown_classes(&table, labels_csv);
    Ok((table, skipped))
}

/// Split one CSV line into trimmed fields, honouring double quotes (`""` inside quotes is a
/// quote). `None` when a quote is left open.
fn csv_fields(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    (!quoted).then_some(out)
}

/// The rows of a CXR-LT label file that [`read_cxr_lt`] would refuse, with the reason.
fn malformed_rows(bytes: &[u8], labels_csv: &Path) -> Vec<SkippedRow> {
    let mut lines = bytes.split(|&b| b == b'\n');
    let Some(header) = lines
        .next()
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| csv_fields(h.trim_start_matches('\u{feff}').trim_end_matches('\r')))
    else {
        return Vec::new(); // the strict reader reports a bad header
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    let (dicom, subject, study, fpath) = (
        col("dicom_id"),
        col("subject_id"),
        col("study_id"),
        col("fpath"),
    );
    let classes: Vec<usize> = (0..header.len())
        .filter(|&i| !CXR_LT_META.contains(&header[i].as_str()))
        .collect();
    let mut skipped = Vec::new();
    for (i, raw) in lines.enumerate() {
        let line = i + 2;
        let reason = (|| {
            let text = std::str::from_utf8(raw)
                .map_err(|_| "not UTF-8 text".to_string())?
                .trim_end_matches('\r');
            if text.trim().is_empty() {
                return Ok(()); // blank lines are ignored by the readers
            }
            let f = csv_fields(text).ok_or("a quote is not closed")?;
            if f.len() != header.len() {
                return Err(format!(
                    "{} fields where the header has {}",
                    f.len(),
                    header.len()
                ));
            }
            if dicom.is_some_and(|c| f[c].is_empty()) {
                return Err("empty dicom_id".into());
            }
            for (name, c) in [("subject_id", subject), ("study_id", study)] {
                if let Some(c) = c {
                    if parse_id(&f[c]).is_none() {
                        return Err(format!("{name} {:?} is not an integer id", f[c]));
                    }
                }
            }
            for &c in &classes {
                let v = &f[c];
                if !v.is_empty()
                    && v.parse::<f64>()
                        .ok()
                        .and_then(|x| LabelState::from_code(Some(x)))
                        .is_none()
                {
                    return Err(format!(
                        "label {} is {v:?}, not 1, 0, -1 or blank",
                        header[c]
                    ));
                }
            }
            if let Some(c) = fpath.filter(|&c| !f[c].is_empty()) {
                checked_relative_path(&f[c], labels_csv, line).map_err(|e| e.to_string())?;
            }
            Ok(())
        })();
        if let Err(reason) = reason {
            skipped.push(SkippedRow {
                file: labels_csv.to_path_buf(),
                line,
                reason,
            });
        }
    }
    skipped
}

/// [`read_cxr_lt`] always through polars' general reader (what it falls back to for files the
/// fast parser declines), kept public to cross-check and benchmark the fast parser.
pub fn read_cxr_lt_with_polars(labels_csv: &Path) -> Result<LabelTable> {
    read_cxr_lt_polars(Csv::from_bytes(read_bytes(labels_csv)?, labels_csv)?)
}

/// [`read_cxr_lt`] through polars: any CSV polars reads, with errors naming row and column.
fn read_cxr_lt_polars(csv: Csv) -> Result<LabelTable> {
    let labels_csv = csv.path.as_path();
    let dicom_col = csv.str_column("dicom_id")?;
    let dicom = borrowed(&dicom_col, &csv)?;
    let subjects = csv.ids("subject_id")?;
    let studies = csv.ids("study_id")?;
    let view_col = if csv.has("ViewPosition") {
        Some(csv.str_column("ViewPosition")?)
    } else {
        None
    };
    let views = view_col.as_ref().map(|c| borrowed(c, &csv)).transpose()?;
    let fpath_col = if csv.has("fpath") {
        Some(csv.str_column("fpath")?)
    } else {
        None
    };
    let fpaths = fpath_col.as_ref().map(|c| borrowed(c, &csv)).transpose()?;
    let classes: Vec<String> = csv
        .names()
        .into_iter()
        .filter(|n| !CXR_LT_META.contains(&n.as_str()))
        .collect();
    if classes.is_empty() {
        return Err(DataError::Format {
            path: labels_csv.to_path_buf(),
            message: "no class columns after the id / view / path columns".into(),
        });
    }
    let label_cols: Vec<Vec<LabelState>> = classes
        .iter()
        .map(|c| csv.labels(c))
        .collect::<Result<_>>()?;

    // Rows are independent: build the records in parallel.
    let records = (0..csv.height())
        .into_par_iter()
        .map(|row| {
            let dicom_id = dicom[row]
                .filter(|s| !s.is_empty())
                .ok_or_else(|| csv.bad(row, "dicom_id", String::new(), "a non-empty id"))?
                .to_string();
            let path = match fpaths
                .as_ref()
                .and_then(|f| f[row])
                .filter(|s| !s.is_empty())
            {
                Some(p) => checked_relative_path(p, labels_csv, row + 2)?,
                None => mimic_image_path(subjects[row], studies[row], &dicom_id),
            };
            Ok(Record {
                dicom_id,
                subject_id: subjects[row],
                study_id: studies[row],
                view_position: views
                    .as_ref()
                    .and_then(|v| v[row])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                path,
                labels: label_cols.iter().map(|c| c[row]).collect(),
            })
        })
        .collect::<Result<Vec<Record>>>()?;
    Ok(LabelTable { classes, records })
}

/// Borrow a string column's cells (trimmed) without copying them.
fn borrowed<'a>(col: &'a Column, csv: &Csv) -> Result<Vec<Option<&'a str>>> {
    let ca = col.str().map_err(|e| DataError::csv(&csv.path, e))?;
    Ok(ca.iter().map(|o| o.map(str::trim)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn cxr_lt_reader_parses_ids_views_paths_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "train_labeled.csv",
            "dicom_id,subject_id,study_id,ViewPosition,ViewCodeSequence_CodeMeaning,fpath,Atelectasis,Mass\n\
             d1,10000032,s50414267,PA,postero-anterior,files/p10/p10000032/s50414267/d1.jpg,1,0\n\
             d2,10000032,s50414267,LATERAL,lateral,files/p10/p10000032/s50414267/d2.jpg,0,1\n\
             d3,10000033,s50000001,,,files/p10/p10000033/s50000001/d3.jpg,0,0\n",
        );
        let t = read_cxr_lt(&p).unwrap();
        assert_eq!(t.classes, vec!["Atelectasis", "Mass"]);
        assert_eq!(t.records.len(), 3);
        assert_eq!(t.records[0].study_id, 50414267);
        assert_eq!(t.records[0].subject_id, 10000032);
        assert_eq!(t.records[1].view_position.as_deref(), Some("LATERAL"));
        assert_eq!(t.records[2].view_position, None);
        assert_eq!(t.positive_class_names(1), vec!["Mass"]);
    }

    #[test]
    fn the_lenient_reader_skips_and_lists_malformed_rows_and_reads_clean_files_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let header = "dicom_id,subject_id,study_id,ViewPosition,fpath,Atelectasis,Mass\n";
        let good = "d1,10,s20,PA,files/d1.jpg,1,0\nd2,11,s21,PA,files/d2.jpg,0,\"1\"\n";
        let clean = write(dir.path(), "clean.csv", &format!("{header}{good}"));
        let (t, skipped) = read_cxr_lt_lenient(&clean).unwrap();
        assert!(skipped.is_empty());
        assert_eq!(t, read_cxr_lt(&clean).unwrap());

        let bad = write(
            dir.path(),
            "bad.csv",
            &format!(
                "{header}{good}d3,12,s22,PA\nd4,13,s23,PA,files/d4.jpg,yes,0\n\
                 d5,x14,s24,PA,files/d5.jpg,0,0\nd6,15,s25,PA,../d6.jpg,0,0\n,16,s26,PA,,0,0\n\
                 d8,17,s27,PA,files/d8.jpg,0,1\n"
            ),
        );
        assert!(
            read_cxr_lt(&bad).is_err(),
            "the strict reader refuses the file"
        );
        let (t, skipped) = read_cxr_lt_lenient(&bad).unwrap();
        let lines: Vec<usize> = skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [4, 5, 6, 7, 8], "{skipped:#?}");
        assert!(
            skipped[0].reason.contains("4 fields"),
            "{}",
            skipped[0].reason
        );
        assert!(
            skipped[1].reason.contains("\"yes\""),
            "{}",
            skipped[1].reason
        );
        let ids: Vec<&str> = t.records.iter().map(|r| r.dicom_id.as_str()).collect();
        assert_eq!(ids, ["d1", "d2", "d8"]);
    }

    /// The fast parser's table (None when it declines) and the polars reader's.
    fn both(text: &str) -> (Option<LabelTable>, Result<LabelTable>) {
        let p = Path::new("t.csv");
        let fast = crate::fastcsv::read_cxr_lt(text.as_bytes(), p, &CXR_LT_META);
        let slow = Csv::from_bytes(text.as_bytes().to_vec(), p).and_then(read_cxr_lt_polars);
        (fast, slow)
    }

    #[test]
    fn fast_parser_matches_polars_or_declines() {
        let header = "dicom_id,subject_id,study_id,ViewPosition,fpath,Atelectasis,Mass,Hernia\n";
        // Blanks, -1, prefixed and plain ids, missing view and path, CRLF and no final newline.
        let mut rows = String::from(header);
        for i in 0..3000 {
            let lab = ["1", "0", "-1", ""][i % 4];
            let path = if i % 7 == 0 {
                String::new()
            } else {
                format!("./files/p1/d{i}.jpg")
            };
            let view = ["PA", "", " AP ", "LATERAL"][i % 4];
            let eol = if i % 5 == 0 { "\r\n" } else { "\n" };
            rows += &format!(
                "d{i}, {},s{},{view},{path},{lab},0,1{eol}",
                100 + i / 3,
                7 + i / 2
            );
        }
        rows += "dlast,1,2,PA,x.jpg,0,,1";
        let (fast, slow) = both(&rows);
        let (fast, slow) = (fast.expect("fast path taken"), slow.unwrap());
        assert_eq!(fast.len(), 3001);
        assert!(rows.len() > 1 << 16, "several pieces");
        assert_eq!(fast, slow);
        assert_eq!(fast.records[8].path, PathBuf::from("files/p1/d8.jpg"));
        assert_eq!(
            fast.records[0].path,
            mimic_image_path(100, 7, "d0"),
            "a blank fpath falls back to the MIMIC pattern"
        );

        // Streamed from disk in small blocks: lines cross block and piece boundaries.
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "big.csv", &rows);
        for block in [64, 1000, 4096, 1 << 20] {
            let streamed = crate::fastcsv::read_file_in_blocks(&f, &CXR_LT_META, block);
            assert_eq!(streamed.as_ref(), Some(&slow), "block {block}");
        }
        assert_eq!(read_cxr_lt(&f).unwrap(), slow);
        // Gzipped, as MIMIC ships its CSVs: the same table.
        let gz = dir.path().join("big.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, rows.as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_cxr_lt(&gz).unwrap(), slow);

        // Float-coded labels (CheXpert style) and a many-chunk file.
        let mut rows = String::from(header);
        for i in 0..5000 {
            let lab = ["1.0", "0.0", "-1.0", ""][i % 4];
            rows += &format!("d{i},{},{},PA,f{i}.jpg,{lab},{lab},0.0\n", i / 2, i);
        }
        let (fast, slow) = both(&rows);
        assert_eq!(fast.expect("fast path taken"), slow.unwrap());

        // Declined: quotes, numeric dicom ids, odd cells, escaping paths, ragged rows.
        for text in [
            format!("{header}\"d,1\",1,2,PA,a.jpg,1,0,0\n"),
            format!("{header}123,1,2,PA,a.jpg,1,0,0\n"),
            format!("{header}d1,1,2,PA,a.jpg,1.00,0,0\n"),
            format!("{header}d1,1,2,PA,a.jpg,yes,0,0\n"),
            format!("{header}d1,1,2,PA,../a.jpg,1,0,0\n"),
            format!("{header}d1,1,2,PA,a.jpg,1,0\n"),
            format!("{header}d1,1,2,PA,a.jpg,1,0,0\n\nd2,1,2,PA,b.jpg,1,0,0\n"),
            format!("\u{feff}{header}d1,1,2,PA,a.jpg,1,0,0\n"),
        ] {
            let (fast, slow) = both(&text);
            assert!(fast.is_none(), "{text:?}");
            if let Ok(t) = slow {
                // What polars makes of it is what read_cxr_lt returns.
                assert!(!t.is_empty());
            }
        }
    }

    #[test]
    fn synthetic_label_file_takes_the_fast_path() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::synth::SynthConfig {
            patients: 12,
            seed: 5,
            image_size: 32,
            ..Default::default()
        };
        let s = crate::synth::generate(dir.path(), &cfg).unwrap();
        let fast = crate::fastcsv::read_cxr_lt_file(&s.labels_csv, &CXR_LT_META)
            .expect("the synthetic CXR-LT file is in the fast parser's shape");
        assert_eq!(fast, read_cxr_lt_with_polars(&s.labels_csv).unwrap());
        assert_eq!(fast.len(), s.images);
    }

    #[test]
    fn cxr_lt_reader_errors_name_column_file_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.csv", "dicom_id,study_id,Mass\nd1,s1,1\n");
        let e = read_cxr_lt(&p).unwrap_err().to_string();
        assert!(e.contains("subject_id") && e.contains("a.csv"), "{e}");

        let p = write(
            dir.path(),
            "b.csv",
            "dicom_id,subject_id,study_id,fpath,Mass\nd1,1,2,../../x.jpg,1\n",
        );
        let e = read_cxr_lt(&p).unwrap_err().to_string();
        assert!(
            e.contains("escapes the data root") && e.contains("row 2"),
            "{e}"
        );

        let p = write(
            dir.path(),
            "c.csv",
            "dicom_id,subject_id,study_id,Mass\nd1,1,2,1\nd2,1,2,yes\n",
        );
        let e = read_cxr_lt(&p).unwrap_err().to_string();
        assert!(e.contains("\"yes\"") && e.contains("Mass"), "{e}");

        let p = write(
            dir.path(),
            "d.csv",
            "dicom_id,subject_id,study_id,Mass\nd1,1,2,3\n",
        );
        let e = read_cxr_lt(&p).unwrap_err().to_string();
        assert!(e.contains("1, 0, -1 or blank"), "{e}");

        let e = read_cxr_lt(&dir.path().join("nope.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.csv"), "{e}");
    }
}
