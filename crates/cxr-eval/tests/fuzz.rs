//! Property-based fuzzing of the scores / labels CSV parser of `cargo xtask auc` (see
//! `tests/fuzz-support/mutate.rs` at the workspace root): `parse_csv_header`,
//! `parse_matrix_csv` and `parse_matrix_csv_columns` on mutated CSVs and arbitrary bytes.
//!
//! Property: no panic (a matrix or an error); a parsed matrix has one column per kept name;
//! and `format_matrix_csv` -> `parse_matrix_csv` gives back the header and every value, bit
//! for bit (NaN as NaN).
//!
//! Seeds: `tests/fuzz-corpus/matrix_csv/`, written by [`seed_files`].
//! `PROPTEST_CASES=100000 cargo test -p cxr-eval --test fuzz` runs longer than CI.

#[path = "../../../tests/fuzz-support/mutate.rs"]
mod mutate;

use std::path::{Path, PathBuf};

use cxr_eval::{format_matrix_csv, parse_csv_header, parse_matrix_csv, parse_matrix_csv_columns};
use ndarray::Array2;
use proptest::prelude::*;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

fn seed_files() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let names: Vec<String> = ["Edema", "Support Devices, other", "Hernia"]
        .map(String::from)
        .to_vec();
    let m = Array2::from_shape_vec(
        (3, 3),
        vec![
            0.25,
            1.0,
            f32::NAN,
            0.0,
            -1e-7,
            1.0,
            0.999_999_9,
            f32::NAN,
            0.5,
        ],
    )
    .unwrap();
    let scores = format_matrix_csv(&names, m.view()).unwrap();
    let with_ids =
        b"\xef\xbb\xbfid,\"Edema\", Hernia \r\n\"a, b\",1,0\r\n\r\nx2,,nan\r\nx3,NA,NaN\r\n"
            .to_vec();
    vec![
        ("matrix_csv", "scores.csv", scores),
        ("matrix_csv", "labels_with_ids.csv", with_ids),
    ]
}

#[test]
fn seeds_match_their_generator() {
    mutate::check_seeds(&corpus(), &seed_files());
}

proptest! {
    #![proptest_config(mutate::config(5000))]

    #[test]
    fn parsers_never_panic(text in mutate::text_input(mutate::seeds(&corpus().join("matrix_csv")), mutate::CSV_TOKENS)) {
        let header = parse_csv_header(&text);
        if let Ok((names, m)) = parse_matrix_csv(&text) {
            prop_assert_eq!(names.len(), m.ncols());
            prop_assert_eq!(Some(&names), header.as_ref().ok());
        }
        if let Ok(header) = header {
            let keep: Vec<String> = header.iter().skip(1).cloned().collect();
            if let Ok((names, m)) = parse_matrix_csv_columns(&text, Some(&keep)) {
                prop_assert_eq!(names.len(), m.ncols());
            }
        }
    }

    #[test]
    fn format_then_parse_is_the_identity(
        names in proptest::collection::vec("[!-~]([ -~]{0,6}[!-~])?", 1..5),
        rows in 0usize..6,
        bits in proptest::collection::vec(
            prop_oneof![any::<f32>(), Just(f32::NAN), Just(-0.0f32), Just(f32::INFINITY)],
            30,
        ),
    ) {
        let cols = names.len();
        let m = Array2::from_shape_vec((rows, cols), bits[..rows * cols].to_vec()).unwrap();
        // A name the parser would trim or unquote is refused, not written wrong.
        let Ok(bytes) = format_matrix_csv(&names, m.view()) else {
            let bad = names.iter().any(|n| n.trim() != n || (n.len() >= 2 && n.starts_with('"') && n.ends_with('"')));
            prop_assert!(bad, "format refused {:?}", names);
            return Ok(());
        };
        let text = String::from_utf8(bytes).unwrap();
        let (back_names, back) = parse_matrix_csv(&text)
            .map_err(|e| TestCaseError::fail(format!("{e} reading back {text:?}")))?;
        prop_assert_eq!(&back_names, &names, "{:?}", text);
        prop_assert_eq!(back.dim(), m.dim());
        for (a, b) in back.iter().zip(m.iter()) {
            prop_assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{} vs {} in {:?}", a, b, text);
        }
    }
}

// Regression tests: each failure the fuzz targets found, at its minimal input.

/// `format_matrix_csv` wrote a column named `""` (two quote characters) as ``, which
/// `parse_matrix_csv` read back as an empty name (it strips a quote pair left around a name):
/// such names are now refused when writing.
#[test]
fn quoted_name_is_refused_when_writing() {
    let m = Array2::<f32>::zeros((0, 1));
    let err = format_matrix_csv(&["\"\"".to_string()], m.view()).unwrap_err();
    assert!(err.to_string().contains("CSV column name"), "{err}");
    for name in ["\"Edema\"", " Edema", ""] {
        assert!(
            format_matrix_csv(&[name.to_string()], m.view()).is_err(),
            "{name:?}"
        );
    }
    assert!(format_matrix_csv(&["\"Edema".to_string()], m.view()).is_ok());
}
