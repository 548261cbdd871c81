//! A specialised parser for the usual shape of CXR-LT label files: unquoted fields, one row per
//! line, ids / view / path strings and 0 / 1 / -1 / blank label cells.
//!
//! Why: polars' general reader (type inference, string columns, then one cast per column) plus
//! building the records took 0.5-0.6 s for a 250k x 46 file, barely ahead of pandas; this parser
//! reads the bytes once, in parallel chunks split at line ends, straight into [`Record`]s.
//!
//! It only accepts what it is sure to read exactly as the polars path in
//! [`crate::read_cxr_lt`] does. Anything else (a quote character, a byte-order mark, a ragged or
//! blank line, an unexpected cell such as `1.00` or `yes`, a path that escapes the data root,
//! string columns that polars would infer as numbers) returns `None`, and the caller falls back
//! to polars, which then gives the same table or the usual error message naming file, row and
//! column. The only intended difference: a label cell written `1.0` in a column whose first
//! 1000 rows are integers is read here, where polars refuses the file.

use std::path::Path;

use rayon::prelude::*;

use crate::table::{checked_relative_path, mimic_image_path, LabelState, LabelTable, Record};

/// Rows polars looks at to infer column types (`with_infer_schema_length` in the reader).
const INFER_ROWS: usize = 1000;

/// Column positions of one CXR-LT file.
struct Layout {
    ncols: usize,
    dicom: usize,
    subject: usize,
    study: usize,
    view: Option<usize>,
    fpath: Option<usize>,
    /// Column index of each class, in file order.
    classes: Vec<usize>,
}

/// Parse a whole CXR-LT label file held in memory, or `None` when it needs the general reader.
pub(crate) fn read_cxr_lt(bytes: &[u8], csv: &Path, meta: &[&str]) -> Option<LabelTable> {
    if bytes.starts_with(b"\xef\xbb\xbf") {
        return None;
    }
    let header_end = bytes.iter().position(|&b| b == b'\n')?;
    let header = strip_cr(&bytes[..header_end]);
    if header.contains(&b'"') {
        return None;
    }
    let names: Vec<&str> = std::str::from_utf8(header).ok()?.split(',').collect();
    if names.iter().any(|n| n.is_empty()) {
        return None;
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return None;
        }
    }
    let at = |name: &str| names.iter().position(|n| *n == name);
    let layout = Layout {
        ncols: names.len(),
        dicom: at("dicom_id")?,
        subject: at("subject_id")?,
        study: at("study_id")?,
        view: at("ViewPosition"),
        fpath: at("fpath"),
        classes: (0..names.len())
            .filter(|&i| !meta.contains(&names[i]))
            .collect(),
    };
    if layout.classes.is_empty() {
        return None;
    }
    let body = &bytes[header_end + 1..];
    if !strings_stay_strings(body, &layout) {
        return None;
    }

    // Chunks of whole lines, a few per thread so that uneven chunks balance out.
    let pieces = if body.len() < (1 << 16) {
        1
    } else {
        rayon::current_num_threads() * 4
    };
    let mut bounds = vec![0usize];
    for k in 1..pieces {
        let from = (body.len() * k / pieces).max(*bounds.last()?);
        let end = match body[from..].iter().position(|&b| b == b'\n') {
            Some(p) => from + p + 1,
            None => body.len(),
        };
        bounds.push(end);
    }
    bounds.push(body.len());
    bounds.dedup();
    let chunks: Vec<Vec<Record>> = bounds
        .par_windows(2)
        .map(|w| parse_chunk(&body[w[0]..w[1]], csv, &layout))
        .collect::<Option<_>>()?;
    let mut records = Vec::with_capacity(chunks.iter().map(Vec::len).sum());
    for c in chunks {
        records.extend(c);
    }
    Some(LabelTable {
        classes: layout
            .classes
            .iter()
            .map(|&i| names[i].to_string())
            .collect(),
        records,
    })
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Polars infers a column's type from its first [`INFER_ROWS`] rows; when the id, view or path
/// column looks numeric or boolean there, polars would re-format its values, so leave the file
/// to polars.
fn strings_stay_strings(body: &[u8], l: &Layout) -> bool {
    let cols: Vec<usize> = [Some(l.dicom), l.view, l.fpath]
        .into_iter()
        .flatten()
        .collect();
    let mut fields = Vec::with_capacity(l.ncols);
    for line in body.split(|&b| b == b'\n').take(INFER_ROWS) {
        if !split_fields(strip_cr(line), &mut fields) || fields.len() != l.ncols {
            // Ragged, quoted or blank: parse_chunk rejects it too (a trailing newline is fine).
            continue;
        }
        for &c in &cols {
            let Ok(s) = std::str::from_utf8(fields[c]) else {
                return false;
            };
            if !s.is_empty()
                && (s.parse::<f64>().is_ok()
                    || s.eq_ignore_ascii_case("true")
                    || s.eq_ignore_ascii_case("false"))
            {
                return false;
            }
        }
    }
    true
}

/// Split one line on commas into `out`; false if it holds a quote character.
fn split_fields<'a>(line: &'a [u8], out: &mut Vec<&'a [u8]>) -> bool {
    out.clear();
    let mut start = 0;
    for (i, &b) in line.iter().enumerate() {
        if b == b',' {
            out.push(&line[start..i]);
            start = i + 1;
        } else if b == b'"' {
            return false;
        }
    }
    out.push(&line[start..]);
    true
}

fn parse_chunk(chunk: &[u8], csv: &Path, l: &Layout) -> Option<Vec<Record>> {
    let mut out = Vec::with_capacity(chunk.len() / 120 + 1);
    let mut fields = Vec::with_capacity(l.ncols);
    let mut pos = 0;
    while pos < chunk.len() {
        let end = chunk[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(chunk.len(), |p| pos + p);
        let line = strip_cr(&chunk[pos..end]);
        pos = end + 1;
        if line.is_empty() || !split_fields(line, &mut fields) || fields.len() != l.ncols {
            return None;
        }
        out.push(record(&fields, csv, l)?);
    }
    Some(out)
}

fn text(f: &[u8]) -> Option<&str> {
    std::str::from_utf8(f).ok().map(str::trim)
}

fn record(f: &[&[u8]], csv: &Path, l: &Layout) -> Option<Record> {
    let dicom_id = text(f[l.dicom]).filter(|s| !s.is_empty())?;
    let subject_id = id(f[l.subject])?;
    let study_id = id(f[l.study])?;
    let fpath = match l.fpath {
        Some(c) => text(f[c])?,
        None => "",
    };
    let path = match fpath {
        p if !p.is_empty() => checked_relative_path(p, csv, 0).ok()?,
        _ => mimic_image_path(subject_id, study_id, dicom_id),
    };
    let view_position = match l.view {
        Some(c) => Some(text(f[c])?)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        None => None,
    };
    let labels = l
        .classes
        .iter()
        .map(|&c| label(f[c]))
        .collect::<Option<Vec<_>>>()?;
    Some(Record {
        dicom_id: dicom_id.to_string(),
        subject_id,
        study_id,
        view_position,
        path,
        labels,
    })
}

/// An id cell: digits, optionally after `p` / `s` (surrounding spaces ignored, as `parse_id` does); anything else goes to the general parser.
fn id(f: &[u8]) -> Option<u64> {
    let f = f.trim_ascii();
    let digits = match f.first() {
        Some(b'p' | b's') => &f[1..],
        _ => f,
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')),
    )
}

fn label(f: &[u8]) -> Option<LabelState> {
    Some(match f {
        b"1" | b"1.0" => LabelState::Positive,
        b"0" | b"0.0" => LabelState::Negative,
        b"-1" | b"-1.0" => LabelState::Uncertain,
        b"" => LabelState::Missing,
        _ => return None,
    })
}
