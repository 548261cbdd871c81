//! Property-based fuzzing of every file format cxr-data reads (see
//! `tests/fuzz-support/mutate.rs` at the workspace root): label readers (CXR-LT through the
//! fast parser, gzipped and through polars; CheXpert; NIH; MIMIC metadata / split / labels),
//! image decoding and both preprocessing pipelines, and `.npy`.
//!
//! Property: no panic, whatever the bytes: a reader returns its table or an error. Where cheap,
//! an invariant too: the fast CXR-LT parser and polars agree when both read a file, every
//! preprocessed image is `size * size` pixels, and `.npy` write -> read is the identity.
//!
//! Seeds: `tests/fuzz-corpus/<target>/`, written by [`seed_files`] (cut from the synthetic
//! generator and the `xrv` fixtures); `seeds_match_their_generator` keeps them in step.
//! CI runs the default case counts; `PROPTEST_CASES=100000 cargo test -p cxr-data --test fuzz`
//! runs longer.

#[path = "../../../tests/fuzz-support/mutate.rs"]
mod mutate;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cxr_data::image::{decode_gray, preprocess_u8, Preprocess};
use cxr_data::synth::{generate, SynthConfig};
use image::GrayImage;
use proptest::prelude::*;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The first `n` lines of `text`, each ending in `\n`.
fn head(text: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n').take(n) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

/// A `.npy` file by hand, for the dtypes the writer does not write (u8, f16, Fortran order).
fn npy_bytes(descr: &str, fortran: bool, shape: &str, body: &[u8]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    header.push_str(&" ".repeat((64 - (10 + header.len() + 1) % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

fn png(img: image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Every seed, as `(target, file name, bytes)`.
fn seed_files() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let synth = generate(
        dir.path(),
        &SynthConfig {
            patients: 3,
            seed: 1,
            image_size: 32,
            max_studies_per_patient: 1,
            normal_fraction: 0.3,
        },
    )
    .unwrap();
    let labels = std::fs::read(&synth.labels_csv).unwrap();
    let meta = std::fs::read(&synth.metadata_csv).unwrap();
    let split = std::fs::read(&synth.split_csv).unwrap();
    // A study-level CheXpert label file for the same studies (MIMIC's `-chexpert.csv`).
    let mut mimic_labels = String::from(
        "subject_id,study_id,Atelectasis,Cardiomegaly,Edema,No Finding,Pleural Effusion\n",
    );
    let values = ["1.0", "0.0", "-1.0", "", "1.0"];
    for (i, line) in String::from_utf8_lossy(&meta)
        .lines()
        .skip(1)
        .take(4)
        .enumerate()
    {
        let cells: Vec<&str> = line.split(',').collect();
        let labels: Vec<&str> = (0..5).map(|j| values[(i + j) % 5]).collect();
        mimic_labels += &format!("{},{},{}\n", cells[1], cells[2], labels.join(","));
    }
    let pixels: Vec<u8> = (0..24 * 16).map(|i| (i * 7 % 251) as u8).collect();
    let jpeg = cxr_data::image::encode_jpeg_gray(&pixels, 24, 16, 90).unwrap();
    let gray = GrayImage::from_raw(24, 16, pixels.clone()).unwrap();
    let rgb = image::RgbImage::from_fn(9, 13, |x, y| image::Rgb([x as u8 * 20, y as u8 * 15, 7]));
    let gray16 = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(11, 5, |x, y| {
        image::Luma([(x * 5000 + y * 300) as u16])
    });
    let npy = |shape: &[usize], data: &[f32]| {
        let p = dir.path().join("x.npy");
        cxr_data::npy::write(&p, shape, data).unwrap();
        std::fs::read(p).unwrap()
    };
    let npy64 = {
        let p = dir.path().join("y.npy");
        cxr_data::npy::write(&p, &[3], &[1.5f64, -0.0, 1e300]).unwrap();
        std::fs::read(p).unwrap()
    };
    let f16: Vec<u8> = [0x3c00u16, 0xc000, 0x7bff, 0x0001]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    vec![
        ("cxr_lt", "labels.csv", head(&labels, 5)),
        ("mimic", "metadata.csv", head(&meta, 5)),
        ("mimic", "split.csv", head(&split, 5)),
        ("mimic", "labels.csv", mimic_labels.into_bytes()),
        (
            "chexpert",
            "train.csv",
            head(&gunzip(&fixture("xrv/chexpert_train.csv.gz")), 6),
        ),
        (
            "nih",
            "Data_Entry.csv",
            head(&gunzip(&fixture("xrv/Data_Entry_2017_v2020.csv.gz")), 6),
        ),
        ("image", "gray.jpg", jpeg),
        ("image", "gray.png", png(gray.into())),
        ("image", "rgb.png", png(rgb.into())),
        ("image", "gray16.png", png(gray16.into())),
        (
            "npy",
            "f32_2x3.npy",
            npy(&[2, 3], &[0.0, 1.0, -2.5, 3.0, 1e-8, 7.0]),
        ),
        ("npy", "f32_scalar.npy", npy(&[], &[4.0])),
        ("npy", "f64_3.npy", npy64),
        (
            "npy",
            "f16_2x2.npy",
            npy_bytes("<f2", false, "(2, 2)", &f16),
        ),
        (
            "npy",
            "u8_fortran.npy",
            npy_bytes("|u1", true, "(2, 3)", &[1, 2, 3, 4, 5, 255]),
        ),
    ]
}

#[test]
fn seeds_match_their_generator() {
    mutate::check_seeds(&corpus(), &seed_files());
}

fn target_seeds(target: &str) -> Vec<Vec<u8>> {
    mutate::seeds(&corpus().join(target))
}

/// `bytes` as `name` in a fresh folder.
fn write_in(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// `bytes` as `name`, or gzipped as `name.gz`.
fn write_maybe_gz(dir: &Path, name: &str, bytes: &[u8], gz: bool) -> PathBuf {
    if gz {
        write_in(dir, &format!("{name}.gz"), &gzip(bytes))
    } else {
        write_in(dir, name, bytes)
    }
}

fn cxr_lt_case(bytes: &[u8], compressed: bool) {
    let dir = tempfile::tempdir().unwrap();
    if compressed {
        // The gzip of the mutated text (the gz fast path and its polars fallback)...
        let p = write_in(dir.path(), "a.csv.gz", &gzip(bytes));
        let _ = cxr_data::read_cxr_lt(&p);
        // ... and the mutated bytes as a (corrupt) gzip stream.
        let p = write_in(dir.path(), "b.csv.gz", bytes);
        let _ = cxr_data::read_cxr_lt(&p);
    } else {
        let p = write_in(dir.path(), "labels.csv", bytes);
        let fast = cxr_data::read_cxr_lt(&p);
        let polars = cxr_data::read_cxr_lt_with_polars(&p);
        if let (Ok(f), Ok(s)) = (&fast, &polars) {
            assert_eq!(f, s, "fast parser and polars disagree");
        }
    }
}

/// The lenient reader (training's): no panic; what it keeps plus what it skips never exceeds
/// the file's lines, and a file it skips nothing of reads as the strict reader reads it.
fn cxr_lt_lenient_case(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let p = write_in(dir.path(), "labels.csv", bytes);
    if let Ok((table, skipped)) = cxr_data::read_cxr_lt_lenient(&p) {
        let lines = bytes.split(|&b| b == b'\n').count();
        assert!(table.records.len() + skipped.len() <= lines);
        if skipped.is_empty() {
            assert_eq!(Some(&table), cxr_data::read_cxr_lt(&p).ok().as_ref());
        }
    }
}

proptest! {
    #![proptest_config(mutate::config(2000))]

    #[test]
    fn cxr_lt_never_panics(bytes in mutate::input(target_seeds("cxr_lt"), mutate::CSV_TOKENS)) {
        cxr_lt_case(&bytes, false);
    }

    #[test]
    fn cxr_lt_gz_never_panics(bytes in mutate::input(target_seeds("cxr_lt"), mutate::CSV_TOKENS)) {
        cxr_lt_case(&bytes, true);
    }

    #[test]
    fn cxr_lt_lenient_never_panics(bytes in mutate::input(target_seeds("cxr_lt"), mutate::CSV_TOKENS)) {
        cxr_lt_lenient_case(&bytes);
    }

    #[test]
    fn chexpert_never_panics(bytes in mutate::input(target_seeds("chexpert"), mutate::CSV_TOKENS), gz in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let _ = cxr_data::read_chexpert(&write_maybe_gz(dir.path(), "train.csv", &bytes, gz));
    }

    #[test]
    fn nih_never_panics(bytes in mutate::input(target_seeds("nih"), mutate::CSV_TOKENS), gz in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let _ = cxr_data::read_nih(&write_maybe_gz(dir.path(), "Data_Entry.csv", &bytes, gz));
    }

    /// One of the three MIMIC files mutated (seeds sort as labels, metadata, split), the others
    /// as their seeds; the split file sometimes absent.
    #[test]
    fn mimic_never_panics(
        which in 0usize..3,
        bytes in mutate::input(target_seeds("mimic"), mutate::CSV_TOKENS),
        with_split in any::<bool>(),
    ) {
        let mut files = target_seeds("mimic");
        files[which] = bytes;
        let dir = tempfile::tempdir().unwrap();
        let labels = write_in(dir.path(), "labels.csv", &files[0]);
        let meta = write_in(dir.path(), "metadata.csv", &files[1]);
        let split = write_in(dir.path(), "split.csv", &files[2]);
        let _ = cxr_data::read_mimic(&meta, with_split.then_some(split.as_path()), &labels);
    }
}

const IMAGE_TOKENS: &[&[u8]] = &[
    b"\xff\xd8",
    b"\xff\xd9",
    b"\xff\xc0",
    b"\xff\xda",
    b"\x89PNG\r\n\x1a\n",
    b"IHDR",
    b"IDAT",
    b"IEND",
    b"\xff",
    b"\x00\x00\xff\xff",
];

proptest! {
    #![proptest_config(mutate::config(500))]

    /// Decoding never panics; what decodes preprocesses to `size * size` pixels in both modes.
    #[test]
    fn image_decode_and_preprocess_never_panic(
        bytes in mutate::input(target_seeds("image"), IMAGE_TOKENS),
        size in 1u32..48,
    ) {
        if let Ok(img) = decode_gray(&bytes) {
            if u64::from(img.width()) * u64::from(img.height()) <= 1 << 22 {
                for p in [Preprocess::chexzero(size), Preprocess::clip(size)] {
                    prop_assert_eq!(preprocess_u8(&img, &p).len(), (size * size) as usize);
                }
            }
        }
    }

    /// Arbitrary sizes and aspect ratios, down to 1 x 1 and up to 1:400 strips.
    #[test]
    fn preprocess_any_size(
        w in prop_oneof![1u32..8, 1u32..400],
        h in prop_oneof![1u32..8, 1u32..400],
        size in prop_oneof![1u32..8, 1u32..400],
        seed in any::<u8>(),
    ) {
        let img = GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 31 + y * 17) as u8 ^ seed]));
        for p in [Preprocess::chexzero(size), Preprocess::clip(size)] {
            prop_assert_eq!(preprocess_u8(&img, &p).len(), (size * size) as usize);
        }
    }
}

const NPY_TOKENS: &[&[u8]] = &[
    b"'descr': '<f4'",
    b"'<f8'",
    b"'<f2'",
    b"'|u1'",
    b"'>f4'",
    b"True",
    b"False",
    b"(",
    b")",
    b",",
    b"(0,)",
    b"(18446744073709551615, 2)",
    b"(4294967296, 4294967296)",
    b"-1",
    b"'shape': ()",
    b"\x93NUMPY\x02\x00",
    b"\x93NUMPY\x03\x00",
    b"}",
    b"{",
];

proptest! {
    #![proptest_config(mutate::config(2000))]

    #[test]
    fn npy_never_panics(bytes in mutate::input(target_seeds("npy"), NPY_TOKENS)) {
        let dir = tempfile::tempdir().unwrap();
        let p = write_in(dir.path(), "a.npy", &bytes);
        if let Ok((shape, v)) = cxr_data::npy::read::<f32>(&p) {
            prop_assert_eq!(shape.iter().product::<usize>(), v.len());
        }
        if let Ok((shape, v)) = cxr_data::npy::read::<f64>(&p) {
            prop_assert_eq!(shape.iter().product::<usize>(), v.len());
        }
    }

    #[test]
    fn npy_write_read_round_trip(
        shape in proptest::collection::vec(0usize..5, 0..4),
        seed in any::<u64>(),
    ) {
        let n: usize = shape.iter().product();
        let f32s: Vec<f32> = (0..n as u64)
            .map(|i| f32::from_bits((seed.wrapping_mul(i + 1) >> 16) as u32))
            .collect();
        let f64s: Vec<f64> = (0..n as u64)
            .map(|i| f64::from_bits(seed.wrapping_mul(2 * i + 1)))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        cxr_data::npy::write(&p, &shape, &f32s).unwrap();
        let (s, v) = cxr_data::npy::read::<f32>(&p).unwrap();
        prop_assert_eq!(&s, &shape);
        prop_assert!(v.iter().zip(&f32s).all(|(a, b)| a.to_bits() == b.to_bits()));
        cxr_data::npy::write(&p, &shape, &f64s).unwrap();
        let (s, v) = cxr_data::npy::read::<f64>(&p).unwrap();
        prop_assert_eq!(&s, &shape);
        prop_assert!(v.iter().zip(&f64s).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

// Regression tests: each crash the fuzz targets found, at its minimal input.

/// `read_nih` overflowed computing the study id `patient * 1000 + follow_up` for a `Patient
/// ID` of `1e58` (read as a float, saturated to `u64::MAX`).
#[test]
fn nih_huge_patient_id_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_in(
        dir.path(),
        "Data_Entry.csv",
        b"Image Index,Finding Labels,Follow-up #,Patient ID\n00000001_001.png,Hernia,1,1e58\n",
    );
    let err = cxr_data::read_nih(&p).unwrap_err().to_string();
    assert!(
        err.contains("Data_Entry.csv") && err.contains("Patient ID"),
        "{err}"
    );
}

/// The same overflow in `read_chexpert`, for a patient number past `u64::MAX / 1000`.
#[test]
fn chexpert_huge_patient_number_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_in(
        dir.path(),
        "train.csv",
        b"Path,Frontal/Lateral,AP/PA,Edema\n\
          CheXpert-v1.0-small/train/patient18446744073709552/study1/view1_frontal.jpg,Frontal,AP,1.0\n",
    );
    let err = cxr_data::read_chexpert(&p).unwrap_err().to_string();
    assert!(err.contains("train.csv") && err.contains("Path"), "{err}");
}

/// `npy::read` overflowed multiplying out a shape such as `(4294967296, 4294967296)`.
#[test]
fn npy_shape_overflow_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for shape in ["(4294967296, 4294967296)", "(18446744073709551615, 2)"] {
        let p = write_in(
            dir.path(),
            "a.npy",
            &npy_bytes("|u1", false, shape, &[1, 2]),
        );
        let err = cxr_data::npy::read::<f32>(&p).unwrap_err().to_string();
        assert!(err.contains("a.npy") && err.contains("too large"), "{err}");
    }
}

/// The seeds are valid inputs, so that mutations start from files the readers accept.
#[test]
fn seeds_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let cxr_lt = write_in(dir.path(), "labels.csv", &target_seeds("cxr_lt")[0]);
    assert!(!cxr_data::read_cxr_lt(&cxr_lt).unwrap().records.is_empty());
    let chexpert = write_in(dir.path(), "train.csv", &target_seeds("chexpert")[0]);
    assert!(!cxr_data::read_chexpert(&chexpert)
        .unwrap()
        .records
        .is_empty());
    let nih = write_in(dir.path(), "nih.csv", &target_seeds("nih")[0]);
    assert!(!cxr_data::read_nih(&nih).unwrap().records.is_empty());
    let m = target_seeds("mimic");
    let labels = write_in(dir.path(), "l.csv", &m[0]);
    let meta = write_in(dir.path(), "m.csv", &m[1]);
    let split = write_in(dir.path(), "s.csv", &m[2]);
    let mimic = cxr_data::read_mimic(&meta, Some(&split), &labels).unwrap();
    assert!(!mimic.table.records.is_empty());
    for img in target_seeds("image") {
        decode_gray(&img).unwrap();
    }
    for npy in target_seeds("npy") {
        let p = write_in(dir.path(), "a.npy", &npy);
        cxr_data::npy::read::<f64>(&p).unwrap();
    }
}

/// polars panicked (a slice index in its CSV parser, on a rayon worker) on a file whose data
/// starts with a NUL byte and a quote that runs to the end of the file: the minimal input the
/// CheXpert target found is its seed with `\0"` after the header and `"` for its last newline. Every
/// polars-read format (CheXpert, NIH, MIMIC, the CXR-LT fallback) now reports it as an error.
#[test]
fn polars_panic_on_unterminated_quote_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let seed = &target_seeds("chexpert")[0];
    let header_end = seed.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut bytes = seed[..header_end].to_vec();
    bytes.extend_from_slice(b"\0\"");
    bytes.extend_from_slice(seed[header_end..].strip_suffix(b"\n").unwrap());
    bytes.push(b'"');
    let p = write_in(dir.path(), "train.csv", &bytes);
    let err = cxr_data::read_chexpert(&p).unwrap_err().to_string();
    assert!(err.contains("train.csv"), "{err}");
    let err = cxr_data::read_cxr_lt_with_polars(&p)
        .unwrap_err()
        .to_string();
    assert!(err.contains("train.csv"), "{err}");
}
