//! Property-based fuzzing of the CLIP tokenizer (see `tests/fuzz-support/mutate.rs` at the
//! workspace root): `ClipTokenizer::bundled().encode_batch` on arbitrary Unicode and on
//! mutations of report / meta-label text, at any context length >= 2.
//!
//! Property: no panic and a well-formed batch: `batch * context_length` ids below the
//! vocabulary size, every row starting with the start token and holding the end token at
//! `eot_positions[i] < lengths[i] <= context_length`, padding after it, and `decode` of
//! every row succeeds.
//!
//! Seeds: `tests/fuzz-corpus/text/`, one text per category of `fixtures/tokenizer_corpus.json`
//! (written by [`seed_files`]). `PROPTEST_CASES=100000 cargo test -p cxr-text --test fuzz`
//! runs longer than CI.

#[path = "../../../tests/fuzz-support/mutate.rs"]
mod mutate;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cxr_text::{ClipTokenizer, EOT_ID, SOT_ID, VOCAB_SIZE};
use proptest::prelude::*;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

/// The first text of each category of the tokenizer goldens' corpus.
fn seed_files() -> Vec<(&'static str, String, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer_corpus.json");
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for e in &entries {
        let category = e["category"].as_str().unwrap().to_owned();
        if seen.insert(category.clone()) {
            let text = e["text"].as_str().unwrap();
            out.push(("text", format!("{category}.txt"), text.as_bytes().to_vec()));
        }
    }
    out
}

#[test]
fn seeds_match_their_generator() {
    let files = seed_files();
    let files: Vec<(&str, &str, Vec<u8>)> = files
        .iter()
        .map(|(t, n, b)| (*t, n.as_str(), b.clone()))
        .collect();
    mutate::check_seeds(&corpus(), &files);
}

fn tokenizer() -> &'static ClipTokenizer {
    static TOK: OnceLock<ClipTokenizer> = OnceLock::new();
    TOK.get_or_init(|| ClipTokenizer::bundled().unwrap())
}

const TEXT_TOKENS: &[&[u8]] = &[
    b"<|startoftext|>",
    b"<|endoftext|>",
    b"</w>",
    b" ",
    b"  ",
    b"\n",
    b"\t",
    b"'s",
    b"'ll",
    b"\xc3\xa9",
    b"\xe2\x80\x8b",
    b"\xf0\x9f\x98\x80",
    b"\xcc\x81",
    b"\xef\xbc\xa1",
    b"\x00",
    b"1,234.5",
    b"no ",
    b"is present",
    b"\xe4\xb8\xad\xe6\x96\x87",
];

fn check(texts: &[&str], context_length: usize) -> Result<(), TestCaseError> {
    let tok = tokenizer();
    let b = tok
        .encode_batch(texts, context_length)
        .map_err(|e| TestCaseError::fail(format!("encode_batch failed: {e}")))?;
    prop_assert_eq!(b.batch, texts.len());
    prop_assert_eq!(b.ids.len(), texts.len() * context_length);
    prop_assert!(b.ids.iter().all(|&id| (id as usize) < VOCAB_SIZE));
    for i in 0..b.batch {
        let row = b.row(i).unwrap();
        prop_assert_eq!(row.len(), context_length);
        prop_assert_eq!(row[0], SOT_ID);
        prop_assert!(b.lengths[i] >= 2 && b.lengths[i] <= context_length);
        prop_assert!(b.eot_positions[i] < b.lengths[i]);
        prop_assert_eq!(row[b.eot_positions[i]], EOT_ID);
        prop_assert!(row[b.lengths[i]..].iter().all(|&id| id == tok.pad_id()));
        tok.decode(row)
            .map_err(|e| TestCaseError::fail(format!("decode failed: {e}")))?;
    }
    let single = tok
        .encode_with_context(texts.first().copied().unwrap_or(""), context_length)
        .map_err(|e| TestCaseError::fail(format!("encode failed: {e}")))?;
    prop_assert!(single.len() <= context_length);
    Ok(())
}

proptest! {
    #![proptest_config(mutate::config(2000))]

    #[test]
    fn encode_batch_arbitrary_unicode(
        texts in proptest::collection::vec(any::<String>(), 0..4),
        context_length in prop_oneof![2usize..8, 2usize..200],
    ) {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        check(&refs, context_length)?;
    }

    #[test]
    fn encode_batch_mutated_text(
        texts in proptest::collection::vec(
            mutate::text_input(mutate::seeds(&corpus().join("text")), TEXT_TOKENS),
            1..4,
        ),
        context_length in prop_oneof![2usize..8, 2usize..200],
    ) {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        check(&refs, context_length)?;
    }
}

#[test]
fn context_lengths_below_two_are_errors() {
    for n in [0, 1] {
        assert!(tokenizer().encode_batch(&["x"], n).is_err());
    }
}
