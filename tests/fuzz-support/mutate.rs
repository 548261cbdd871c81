//! Structured mutations of seed files, shared by every crate's `tests/fuzz.rs` (included with
//! `#[path = "../../../tests/fuzz-support/mutate.rs"] mod mutate;`).
//!
//! Fuzzing on the stable toolchain: proptest draws a seed from the crate's committed corpus
//! (`tests/fuzz-corpus/<target>/`) and a short list of mutations (bit flips, byte sets,
//! insertions of bytes or of format tokens, deletions, truncations, splices with another seed),
//! or plain arbitrary bytes. A failure shrinks to the fewest, smallest mutations.
//!
//! Case counts: each target passes its CI default to [`config`]; `PROPTEST_CASES` overrides it
//! (`PROPTEST_CASES=100000 cargo test -p cxr-data --test fuzz` for a long local run). Seeds
//! are written by code: [`check_seeds`] compares the committed corpus with what the test's
//! generator makes, and rewrites it under `FUZZ_WRITE_SEEDS=1`.
#![allow(dead_code)] // each crate uses a subset

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;

/// `default_cases` cases, or `PROPTEST_CASES` when set.
pub fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    }
}

/// Where in the input a mutation applies: anywhere, or near either end (headers, zip
/// directories and trailers are where parsers branch).
#[derive(Debug, Clone, Copy)]
pub enum Pos {
    Any(Index),
    Head(usize),
    Tail(usize),
}

impl Pos {
    /// An offset in `0..=len`.
    fn at(self, len: usize) -> usize {
        match self {
            Pos::Any(i) => i.index(len + 1),
            Pos::Head(k) => k.min(len),
            Pos::Tail(k) => len - k.min(len),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Mutation {
    FlipBit(Pos, u8),
    SetByte(Pos, u8),
    Insert(Pos, Vec<u8>),
    /// Insert `tokens[i]` (a format's interesting words: delimiters, keys, numbers).
    InsertToken(Pos, Index),
    Delete(Pos, usize),
    Truncate(Pos),
    /// Keep this input up to the first position, then another seed from the second on.
    Splice(Pos, Index, Pos),
    /// Repeat a stretch of the input in place.
    Duplicate(Pos, usize),
}

fn pos() -> impl Strategy<Value = Pos> {
    prop_oneof![
        2 => any::<Index>().prop_map(Pos::Any),
        1 => (0usize..96).prop_map(Pos::Head),
        1 => (0usize..96).prop_map(Pos::Tail),
    ]
}

/// Tokens for CSV targets: delimiters, quoting, line ends, numbers and missing values, a BOM,
/// invalid UTF-8, path pieces, and the column names of the label files.
#[rustfmt::skip]
pub const CSV_TOKENS: &[&[u8]] = &[
    b",", b"\"", b"\"\"", b"\n", b"\r\n", b"\r", b" ", b",,", b"1", b"0", b"-1", b"-0", b"1.0",
    b"-1.0", b"nan", b"NaN", b"NA", b"inf", b"-inf", b"1e39", b"1e400", b"0x1",
    b"18446744073709551616", b"\xef\xbb\xbf", b"\xc3\xa9", b"\xff", b"../", b"/abs", b"|",
    b"p10", b"s5", b"id", b"Edema", b"No Finding", b"dicom_id", b"subject_id", b"study_id",
    b"ViewPosition", b"fpath", b"Path", b"Image Index", b"Finding Labels", b"Patient ID",
    b"Follow-up #",
];

/// Bytes that parsers of text and binary formats tend to branch on.
const SPECIAL: &[u8] = b"\x00\xff\x7f\x80,;|\"'\n\r\t =.-+0129eE[]{}()#\\";

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![any::<u8>(), proptest::sample::select(SPECIAL)];
    prop_oneof![
        3 => (pos(), 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        3 => (pos(), byte.clone()).prop_map(|(p, b)| Mutation::SetByte(p, b)),
        2 => (pos(), proptest::collection::vec(byte, 1..8)).prop_map(|(p, v)| Mutation::Insert(p, v)),
        3 => (pos(), any::<Index>()).prop_map(|(p, i)| Mutation::InsertToken(p, i)),
        2 => (pos(), 1usize..64).prop_map(|(p, n)| Mutation::Delete(p, n)),
        1 => pos().prop_map(Mutation::Truncate),
        1 => (pos(), any::<Index>(), pos()).prop_map(|(p, s, q)| Mutation::Splice(p, s, q)),
        1 => (pos(), 1usize..64).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
    ]
}

/// Apply `m` to `data` in place.
pub fn apply(data: &mut Vec<u8>, m: &Mutation, seeds: &[Vec<u8>], tokens: &[&[u8]]) {
    let len = data.len();
    match *m {
        Mutation::FlipBit(p, bit) => {
            if len > 0 {
                let i = p.at(len - 1);
                data[i] ^= 1 << bit;
            }
        }
        Mutation::SetByte(p, b) => {
            if len > 0 {
                let i = p.at(len - 1);
                data[i] = b;
            }
        }
        Mutation::Insert(p, ref bytes) => {
            let i = p.at(len);
            data.splice(i..i, bytes.iter().copied());
        }
        Mutation::InsertToken(p, t) => {
            if !tokens.is_empty() {
                let i = p.at(len);
                let tok = tokens[t.index(tokens.len())];
                data.splice(i..i, tok.iter().copied());
            }
        }
        Mutation::Delete(p, n) => {
            let i = p.at(len);
            data.drain(i..(i + n).min(len));
        }
        Mutation::Truncate(p) => data.truncate(p.at(len)),
        Mutation::Splice(p, s, q) => {
            let other = &seeds[s.index(seeds.len())];
            data.truncate(p.at(len));
            data.extend_from_slice(&other[q.at(other.len())..]);
        }
        Mutation::Duplicate(p, n) => {
            let i = p.at(len);
            let stretch = data[i..(i + n).min(len)].to_vec();
            data.splice(i..i, stretch);
        }
    }
}

/// Inputs for a target: mostly a seed with 1 to 6 mutations, sometimes arbitrary bytes.
pub fn input(seeds: Vec<Vec<u8>>, tokens: &'static [&'static [u8]]) -> BoxedStrategy<Vec<u8>> {
    assert!(!seeds.is_empty(), "a fuzz target needs at least one seed");
    let n = seeds.len();
    let mutated = (0..n, proptest::collection::vec(mutation(), 0..7)).prop_map(move |(s, muts)| {
        let mut data = seeds[s].clone();
        for m in &muts {
            apply(&mut data, m, &seeds, tokens);
        }
        data
    });
    prop_oneof![
        8 => mutated,
        1 => proptest::collection::vec(any::<u8>(), 0..512),
    ]
    .boxed()
}

/// [`input`] as text (invalid UTF-8 replaced), for parsers that take `&str`.
pub fn text_input(seeds: Vec<Vec<u8>>, tokens: &'static [&'static [u8]]) -> BoxedStrategy<String> {
    input(seeds, tokens)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
        .boxed()
}

/// The files of a corpus folder, sorted by name.
pub fn seeds(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "seed corpus {} is empty", dir.display());
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// The committed corpus under `root` must equal `files` (`(target, name, bytes)`, made by the
/// test's generator); `FUZZ_WRITE_SEEDS=1` writes them instead.
pub fn check_seeds(root: &Path, files: &[(&str, &str, Vec<u8>)]) {
    let write = std::env::var_os("FUZZ_WRITE_SEEDS").is_some_and(|v| v == "1");
    for (target, name, bytes) in files {
        let path = root.join(target).join(name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_default();
            assert!(
                &committed == bytes,
                "{} differs from its generator: rerun with FUZZ_WRITE_SEEDS=1 and commit",
                path.display()
            );
        }
        assert!(
            bytes.len() <= 16 * 1024,
            "seed {} over 16 KiB",
            path.display()
        );
    }
}
