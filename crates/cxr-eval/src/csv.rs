//! A header-plus-numbers CSV, the exchange format of `cargo xtask auc` and of a run's
//! `scores.csv` / `labels.csv`: a header of class names, then one row per image. Read with
//! the `csv` crate (RFC 4180 quoting, so a class name may hold a comma) from a string, and
//! written to bytes: the caller does the file I/O, so this library does none of its own.

use std::fmt::Write as _;

use ndarray::{Array2, ArrayView2};

use crate::error::{shape_err, EvalError, Result};

/// The records of `text` (a leading byte-order mark dropped), each with the 1-based line it
/// starts on; cells trimmed. Blank lines, whitespace-only ones included, are skipped.
fn records(text: &str) -> impl Iterator<Item = Result<(u64, Vec<String>)>> + '_ {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .into_records()
        .filter_map(|r| {
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    return Some(Err(EvalError::InvalidParam {
                        name: "CSV",
                        value: e.to_string(),
                        hint: "the file must be comma-separated text with a header line",
                    }))
                }
            };
            // The csv crate skips empty lines itself; a line of spaces is one blank cell
            // (a quoted empty cell, `""`, is not blank: it is an unknown value).
            if r.len() == 1 && !r[0].is_empty() && r[0].trim().is_empty() {
                return None;
            }
            let line = r.position().map_or(0, |p| p.line());
            Some(Ok((line, r.iter().map(cell).collect())))
        })
}

/// A cell without surrounding spaces. Quotes are the csv crate's business; a pair it keeps
/// because a space precedes the opening quote (` "Edema"`) is stripped too.
fn cell(raw: &str) -> String {
    let t = raw.trim();
    t.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .map_or(t, str::trim)
        .to_string()
}

/// The header of a CSV (its first non-blank line): the column names, quotes removed. An empty
/// name is an error (every column needs one).
pub fn parse_csv_header(text: &str) -> Result<Vec<String>> {
    let (_, names) = records(text)
        .next()
        .ok_or(EvalError::Empty("CSV (no header line)"))??;
    if let Some(pos) = names.iter().position(|n| n.is_empty()) {
        return Err(EvalError::InvalidParam {
            name: "CSV header",
            value: format!("empty name in column {}", pos + 1),
            hint: "every column needs a name",
        });
    }
    Ok(names)
}

/// Parses a CSV whose header names the columns and whose cells are numbers. Empty cells and
/// `nan` / `NaN` / `NA` read as NaN (an unknown label). Returns the column names and an
/// N x C matrix.
pub fn parse_matrix_csv(text: &str) -> Result<(Vec<String>, Array2<f32>)> {
    parse_matrix_csv_columns(text, None)
}

/// As [`parse_matrix_csv`], keeping only the columns named in `keep` (in the file's order);
/// the other columns (ids, paths) may hold anything. `None` keeps every column.
pub fn parse_matrix_csv_columns(
    text: &str,
    keep: Option<&[String]>,
) -> Result<(Vec<String>, Array2<f32>)> {
    let all_names = parse_csv_header(text)?;
    let cols: Vec<usize> = (0..all_names.len())
        .filter(|&i| keep.is_none_or(|k| k.contains(&all_names[i])))
        .collect();
    let names: Vec<String> = cols.iter().map(|&i| all_names[i].clone()).collect();
    let mut data = Vec::new();
    let mut rows = 0;
    for record in records(text).skip(1) {
        let (line, cells) = record?;
        if cells.len() != all_names.len() {
            return Err(shape_err(
                "CSV cells per line (the header's column count)",
                all_names.len(),
                format!("{} on line {line}", cells.len()),
            ));
        }
        for &col in &cols {
            let v = match cells[col].as_str() {
                "" | "nan" | "NaN" | "NA" => f32::NAN,
                s => s.parse::<f32>().map_err(|_| EvalError::InvalidParam {
                    name: "CSV cell",
                    value: format!("{s:?} (line {line}, column {:?})", all_names[col]),
                    hint: "cells must be numbers, or empty / nan for unknown (exclude id columns)",
                })?,
            };
            data.push(v);
        }
        rows += 1;
    }
    let m = Array2::from_shape_vec((rows, names.len()), data)
        .map_err(|e| shape_err("CSV matrix", "rectangular", e))?;
    Ok((names, m))
}

/// The CSV bytes [`parse_matrix_csv`] reads back to `(header, m)`: the header, then one line
/// per row of `m`; names are quoted where the format needs it (a comma, a quote, a line
/// break), numbers are written in their shortest exact form and NaN (unknown) as an empty
/// cell. Lines end in `\n`.
pub fn format_matrix_csv(header: &[String], m: ArrayView2<'_, f32>) -> Result<Vec<u8>> {
    if header.len() != m.ncols() {
        return Err(shape_err(
            "CSV header (one name per column)",
            m.ncols(),
            header.len(),
        ));
    }
    // `parse_csv_header` trims names and strips a pair of quotes left around one.
    if let Some(n) = header.iter().find(|n| n.is_empty() || cell(n) != **n) {
        return Err(EvalError::InvalidParam {
            name: "CSV column name",
            value: format!("{n:?}"),
            hint: "names must be non-empty, without spaces around them or quotes around the \
                   whole name (they would not read back)",
        });
    }
    let csv_err = |e: csv::Error| EvalError::InvalidParam {
        name: "CSV",
        value: e.to_string(),
        hint: "writing to memory cannot fail; report this",
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(csv_err)?;
    let mut cell = String::new();
    for row in m.rows() {
        for &v in row {
            cell.clear();
            if !v.is_nan() {
                write!(cell, "{v}").expect("writing to a String");
            }
            w.write_field(&cell).map_err(csv_err)?;
        }
        w.write_record(None::<&[u8]>).map_err(csv_err)?;
    }
    w.into_inner().map_err(|e| csv_err(e.into_error().into()))
}

/// Reorders the columns of `m` (named `names`) into the order of `wanted`; errors on a name
/// that is missing. Extra columns of `m` are dropped.
pub fn select_columns(names: &[String], m: &Array2<f32>, wanted: &[String]) -> Result<Array2<f32>> {
    let idx: Vec<usize> = wanted
        .iter()
        .map(|w| {
            names
                .iter()
                .position(|n| n == w)
                .ok_or_else(|| EvalError::InvalidParam {
                    name: "column",
                    value: w.clone(),
                    hint: "this class is in the scores header but not in the labels header",
                })
        })
        .collect::<Result<_>>()?;
    Ok(m.select(ndarray::Axis(1), &idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_numbers_and_unknowns() {
        let (names, m) = parse_matrix_csv("\"Edema\",Hernia\n1,0\n,nan\n0.5,1\n").unwrap();
        assert_eq!(names, ["Edema", "Hernia"]);
        assert_eq!(m.dim(), (3, 2));
        assert!(m[[1, 0]].is_nan() && m[[1, 1]].is_nan());
        assert_eq!(m[[2, 0]], 0.5);
        let sel = select_columns(&names, &m, &["Hernia".to_string()]).unwrap();
        assert_eq!(sel.column(0).to_vec()[2], 1.0);
        assert!(select_columns(&names, &m, &["Mass".to_string()]).is_err());
        let keep = ["b".to_string()];
        let (names, m) = parse_matrix_csv_columns("id,b\nx1,1\nx2,0\n", Some(&keep)).unwrap();
        assert_eq!((names.len(), m.dim()), (1, (2, 1)));
    }

    #[test]
    fn quoted_names_and_cells_may_hold_commas() {
        let text = "id,\"Support Devices, other\",Edema\n\
                    x1,\"0.25\",1\n\
                    \"a, b\",\"\",0\n";
        let (names, m) =
            parse_matrix_csv_columns(text, Some(&parse_csv_header(text).unwrap()[1..])).unwrap();
        assert_eq!(names, ["Support Devices, other", "Edema"]);
        assert_eq!(m.dim(), (2, 2));
        assert_eq!((m[[0, 0]], m[[0, 1]], m[[1, 1]]), (0.25, 1.0, 0.0));
        assert!(m[[1, 0]].is_nan());
        assert_eq!(
            parse_csv_header("\u{feff}a, \"b\" \r\n\r\n1,2\r\n").unwrap(),
            ["a", "b"]
        );
        let err = parse_matrix_csv("a,b\n\n   \n1,x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn written_csvs_read_back_exactly() {
        let header = [
            "Support Devices, other".to_string(),
            "say \"no\"".into(),
            "Edema".into(),
        ];
        let m = ndarray::array![[0.1f32, f32::NAN, -0.0], [1e-30, 3.0, f32::INFINITY]];
        let bytes = format_matrix_csv(&header, m.view()).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            "\"Support Devices, other\",\"say \"\"no\"\"\",Edema\n0.1,,-0\n0.000000000000000000000000000001,3,inf\n"
        );
        let (names, back) = parse_matrix_csv(&text).unwrap();
        assert_eq!(names, header);
        for (a, b) in m.iter().zip(&back) {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{a} {b}"
            );
        }
        // A single column of unknowns stays one row per line (`""`, not a blank line).
        let one = ndarray::array![[f32::NAN], [f32::NAN]];
        let text = String::from_utf8(format_matrix_csv(&header[2..], one.view()).unwrap()).unwrap();
        assert_eq!(parse_matrix_csv(&text).unwrap().1.nrows(), 2);
        assert!(format_matrix_csv(&header[..2], m.view()).is_err());
    }

    #[test]
    fn malformed_csvs_are_errors() {
        assert!(parse_matrix_csv("").is_err());
        assert!(parse_matrix_csv("a,b\n1\n").is_err());
        assert!(parse_matrix_csv("a,b\n1,x\n").is_err());
        assert!(parse_matrix_csv("a,\n1,2\n").is_err());
    }
}
