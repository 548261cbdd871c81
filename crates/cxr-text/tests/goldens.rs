//! Token ids against the Python references, on the committed corpus of 1,215 strings.
//!
//! Goldens made by `scripts/goldens/cxr-text/make_tokenizer_goldens.py` with transformers
//! 5.24.0 (`CLIPTokenizer`, tokenizers 0.23.3, built offline from the same vocabulary) and
//! open_clip_torch 3.3.0 (`open_clip.tokenize`, OpenAI's pure-Python BPE, ftfy 6.3.1).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use cxr_text::{ClipTokenizer, CONTEXT_LENGTH, EOT_ID, PAD_ID_OPEN_CLIP};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Entry {
    category: String,
    text: String,
}

#[derive(Deserialize)]
struct Row {
    hf: Vec<u32>,
    /// `None` where open_clip's ids equal Hugging Face's.
    open_clip: Option<Vec<u32>>,
    /// open_clip's `basic_clean(text)` (ftfy + html.unescape) where it changes the text.
    open_clip_cleaned: Option<String>,
}

#[derive(Deserialize)]
struct Batch {
    indices: Vec<usize>,
    hf_input_ids: Vec<Vec<u32>>,
    hf_attention_mask: Vec<Vec<u32>>,
    open_clip: Vec<Vec<u32>>,
}

#[derive(Deserialize)]
struct Goldens {
    references: BTreeMap<String, String>,
    context_length: usize,
    n: usize,
    rows: Vec<Row>,
    batch: Batch,
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn tok() -> &'static ClipTokenizer {
    static TOK: OnceLock<ClipTokenizer> = OnceLock::new();
    TOK.get_or_init(|| ClipTokenizer::bundled().expect("bundled vocabulary builds"))
}

fn read_json<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture parses")
}

fn corpus() -> &'static (Vec<Entry>, Goldens) {
    static DATA: OnceLock<(Vec<Entry>, Goldens)> = OnceLock::new();
    DATA.get_or_init(|| {
        let entries: Vec<Entry> = read_json("tokenizer_corpus.json");
        let goldens: Goldens = read_json("tokenizer_goldens.json");
        assert_eq!(entries.len(), goldens.rows.len());
        assert_eq!(goldens.n, entries.len());
        assert_eq!(goldens.context_length, CONTEXT_LENGTH);
        (entries, goldens)
    })
}

#[test]
fn ids_equal_hugging_face_on_the_whole_corpus() {
    let (entries, goldens) = corpus();
    assert!(
        entries.len() >= 1000,
        "corpus has {} strings",
        entries.len()
    );
    assert_eq!(goldens.references["transformers"], "5.24.0");
    let mut mismatches = Vec::new();
    for (entry, row) in entries.iter().zip(&goldens.rows) {
        let ours = tok().encode(&entry.text).unwrap();
        if ours != row.hf {
            mismatches.push(format!("{:?}: ours {ours:?}, HF {:?}", entry.text, row.hf));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ from Hugging Face, e.g. {:#?}",
        mismatches.len(),
        entries.len(),
        &mismatches[..mismatches.len().min(5)]
    );
}

/// Strings where open_clip 3.3.0 differs from Hugging Face for a reason other than ftfy/HTML
/// cleanup: open_clip names its special tokens `<start_of_text>` / `<end_of_text>`, so the
/// OpenAI names are plain text to it and its own names are special; and Python's `str.lower`
/// gives a word-final capital sigma `ς` where per-character lowercasing gives `σ`.
const SPECIAL_TOKEN_NAMES: [&str; 5] = [
    "<|startoftext|>",
    "<|endoftext|>",
    "a <|endoftext|> b",
    "<start_of_text>",
    "<end_of_text>",
];
const FINAL_SIGMA: &str = "ΣΊΣΥΦΟΣ";

#[test]
fn ids_equal_open_clip_up_to_the_documented_differences() {
    let (entries, goldens) = corpus();
    let mut same = 0;
    let mut via_cleanup = 0;
    let mut special = Vec::new();
    let mut sigma = 0;
    for (entry, row) in entries.iter().zip(&goldens.rows) {
        let Some(open_clip) = &row.open_clip else {
            same += 1; // equal to HF, which equals ours (test above)
            continue;
        };
        let text = entry.text.as_str();
        if let Some(cleaned) = &row.open_clip_cleaned {
            // ftfy / html.unescape: ours on open_clip's cleaned text equals open_clip.
            assert_eq!(
                &tok().encode(cleaned).unwrap(),
                open_clip,
                "{text:?} cleaned to {cleaned:?}"
            );
            via_cleanup += 1;
        } else if text == FINAL_SIGMA {
            // Lowercasing the whole string first (Rust's str::to_lowercase knows final sigma,
            // as Python's str.lower does) gives open_clip's ids.
            assert_eq!(&tok().encode(&text.to_lowercase()).unwrap(), open_clip);
            sigma += 1;
        } else {
            assert!(
                SPECIAL_TOKEN_NAMES.contains(&text),
                "undocumented difference from open_clip on {text:?} ({}): ours {:?}, \
                 open_clip {open_clip:?}",
                entry.category,
                row.hf
            );
            special.push(text);
        }
    }
    assert_eq!(special.len(), SPECIAL_TOKEN_NAMES.len(), "{special:?}");
    assert_eq!(sigma, 1);
    assert!(via_cleanup > 40, "{via_cleanup} cleanup cases");
    assert!(same > 1100, "only {same} strings agree without cleanup");
}

#[test]
fn padded_batches_equal_both_references() {
    let (entries, goldens) = corpus();
    let b = &goldens.batch;
    let texts: Vec<&str> = b
        .indices
        .iter()
        .map(|&i| entries[i].text.as_str())
        .collect();
    let hf = tok().encode_batch(&texts, CONTEXT_LENGTH).unwrap();
    assert_eq!(
        hf.ids,
        b.hf_input_ids.concat(),
        "Hugging Face pads with 49407"
    );
    assert_eq!(hf.attention_mask(), b.hf_attention_mask.concat());
    let oc = tok()
        .clone()
        .with_pad_id(PAD_ID_OPEN_CLIP)
        .unwrap()
        .encode_batch(&texts, CONTEXT_LENGTH)
        .unwrap();
    let mut compared = 0;
    for (row, &i) in b.indices.iter().enumerate() {
        if goldens.rows[i].open_clip.is_none() {
            assert_eq!(
                oc.row(row).unwrap(),
                &b.open_clip[row][..],
                "{:?}",
                texts[row]
            );
            compared += 1;
        }
    }
    assert!(compared >= 20, "only {compared} rows compared");
}

#[test]
fn corpus_exercises_truncation_and_every_category() {
    let (entries, goldens) = corpus();
    let mut per_category: BTreeMap<&str, usize> = BTreeMap::new();
    for e in entries {
        *per_category.entry(e.category.as_str()).or_default() += 1;
    }
    for (category, min) in [
        ("class_name", 120),
        ("prompt", 180),
        ("meta_label", 250),
        ("report", 300),
        ("general", 140),
        ("truncation", 15),
    ] {
        assert!(
            per_category.get(category).copied().unwrap_or(0) >= min,
            "{per_category:?}"
        );
    }
    let truncated = goldens
        .rows
        .iter()
        .filter(|r| r.hf.len() == CONTEXT_LENGTH && r.hf[CONTEXT_LENGTH - 1] == EOT_ID)
        .count();
    assert!(
        truncated >= 50,
        "only {truncated} strings reach the context length"
    );
    for name in [
        "Round(ed) Atelectasis",
        "Calcification of the Aorta",
        "Support Devices",
    ] {
        assert!(entries.iter().any(|e| e.text == name));
    }
}

/// Our `tokenizer.json` equals the one transformers writes, apart from the vocabulary and
/// merges, which equal it on a sample (the fixture keeps ids < 600 and every 37th entry).
#[test]
fn tokenizer_json_matches_what_transformers_writes() {
    let mut hf: Value = read_json("hf_clip_tokenizer_sampled.json");
    let mut ours: Value = serde_json::from_str(&tok().to_tokenizer_json(false).unwrap()).unwrap();
    let hf_model = hf["model"].as_object_mut().unwrap();
    let sample_vocab = hf_model.remove("vocab").unwrap();
    let sample_merges = hf_model.remove("merges").unwrap();
    let vocab_len = hf_model.remove("vocab_len").unwrap();
    let merges_len = hf_model.remove("merges_len").unwrap();
    let our_model = ours["model"].as_object_mut().unwrap();
    let our_vocab = our_model.remove("vocab").unwrap();
    let our_merges = our_model.remove("merges").unwrap();
    assert_eq!(
        ours, hf,
        "pipeline configuration differs from Hugging Face's"
    );

    let our_vocab = our_vocab.as_object().unwrap();
    assert_eq!(our_vocab.len() as u64, vocab_len.as_u64().unwrap());
    let sample_vocab = sample_vocab.as_object().unwrap();
    assert!(sample_vocab.len() > 1800);
    for (token, id) in sample_vocab {
        assert_eq!(our_vocab.get(token), Some(id), "vocab entry {token:?}");
    }
    let our_merges = our_merges.as_array().unwrap();
    assert_eq!(our_merges.len() as u64, merges_len.as_u64().unwrap());
    for (index, merge) in sample_merges.as_object().unwrap() {
        let index: usize = index.parse().unwrap();
        assert_eq!(&our_merges[index], merge, "merge {index}");
    }
}

/// The meta-label and prompt texts our renderers produce are in the corpus, so their ids are
/// covered by the goldens above (the script builds them with plain Python formatting).
#[test]
fn rendered_meta_labels_and_prompts_are_covered_by_the_corpus() {
    use cxr_text::{MetaLabelText, PromptSet};
    let (entries, goldens) = corpus();
    let index: BTreeMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.text.as_str(), i))
        .collect();
    let check = |text: &str| {
        let i = *index
            .get(text)
            .unwrap_or_else(|| panic!("{text:?} not in corpus"));
        assert_eq!(tok().encode(text).unwrap(), goldens.rows[i].hf, "{text:?}");
    };
    check(&MetaLabelText::paper().render(&["Adenopathy", "Pulmonary Effusion"]));
    check(&MetaLabelText::paper().render(&[]));
    check(&MetaLabelText::released_code().render(&[]));
    let classes: Vec<&str> = entries
        .iter()
        .filter(|e| e.category == "class_name")
        .take(3 * 40)
        .step_by(3)
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(classes.len(), 40);
    for set in [PromptSet::chexzero(), PromptSet::present_absent()] {
        for class in &classes {
            let (pos, neg) = set.prompts(class);
            pos.iter().chain(&neg).for_each(|t| check(t));
        }
    }
    // Multi-class meta-labels in both forms, as the script wrote them.
    let paper = MetaLabelText::paper().render(&classes[..3]);
    let released = MetaLabelText::released_code().render(&classes[..3]);
    assert_eq!(
        paper,
        "adenopathy is present, atelectasis is present, azygos lobe is present"
    );
    assert_eq!(
        released,
        "Adenopathy is present. Atelectasis is present. Azygos Lobe is present."
    );
    let n_meta = entries
        .iter()
        .filter(|e| e.category == "meta_label")
        .count();
    assert!(n_meta > 250);
}
