//! A header-plus-numbers CSV, the exchange format of `cargo xtask auc`: a header of class
//! names, then one row per image. Parsed from a string (the caller reads the file), so the
//! library does no file I/O of its own.

use ndarray::Array2;

use crate::error::{shape_err, EvalError, Result};

fn split_line(line: &str) -> Vec<String> {
    // Class names contain no commas (e.g. "Round(ed) Atelectasis"); quotes are stripped.
    line.split(',')
        .map(|f| f.trim().trim_matches('"').trim().to_string())
        .collect()
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
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or(EvalError::Empty("CSV (no header line)"))?;
    let all_names = split_line(header.trim_start_matches('\u{feff}'));
    if let Some(pos) = all_names.iter().position(|n| n.is_empty()) {
        return Err(EvalError::InvalidParam {
            name: "CSV header",
            value: format!("empty name in column {}", pos + 1),
            hint: "every column needs a name",
        });
    }
    let cols: Vec<usize> = (0..all_names.len())
        .filter(|&i| keep.is_none_or(|k| k.contains(&all_names[i])))
        .collect();
    let names: Vec<String> = cols.iter().map(|&i| all_names[i].clone()).collect();
    let mut data = Vec::new();
    let mut rows = 0;
    for (lineno, line) in lines {
        let cells = split_line(line);
        if cells.len() != all_names.len() {
            return Err(shape_err(
                "CSV cells per line (the header's column count)",
                all_names.len(),
                format!("{} on line {}", cells.len(), lineno + 1),
            ));
        }
        for &col in &cols {
            let v = match cells[col].as_str() {
                "" | "nan" | "NaN" | "NA" => f32::NAN,
                s => s.parse::<f32>().map_err(|_| EvalError::InvalidParam {
                    name: "CSV cell",
                    value: format!("{s:?} (line {}, column {:?})", lineno + 1, all_names[col]),
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
    fn malformed_csvs_are_errors() {
        assert!(parse_matrix_csv("").is_err());
        assert!(parse_matrix_csv("a,b\n1\n").is_err());
        assert!(parse_matrix_csv("a,b\n1,x\n").is_err());
        assert!(parse_matrix_csv("a,\n1,2\n").is_err());
    }
}
