//! Public API of the tokenizer: shapes, truncation, padding, loading paths and errors.

use std::sync::OnceLock;

use cxr_text::{
    ClipTokenizer, TextError, CONTEXT_LENGTH, EOT_ID, PAD_ID_HF, PAD_ID_OPEN_CLIP, SOT_ID,
    VOCAB_SIZE,
};

/// Built once per test binary: parsing 49k merges is the slow part.
fn tok() -> &'static ClipTokenizer {
    static TOK: OnceLock<ClipTokenizer> = OnceLock::new();
    TOK.get_or_init(|| ClipTokenizer::bundled().expect("bundled vocabulary builds"))
}

#[test]
fn known_ids_from_openai_clip_docs() {
    // Hugging Face's CLIPTokenizer docs example, openai/clip-vit-base-patch32.
    assert_eq!(
        tok().encode("a photo of a cat").unwrap(),
        [SOT_ID, 320, 1125, 539, 320, 2368, EOT_ID]
    );
    assert_eq!(tok().encode("").unwrap(), [SOT_ID, EOT_ID]);
    assert_eq!(tok().inner().get_vocab_size(true), VOCAB_SIZE);
}

#[test]
fn encode_truncates_long_text_keeping_end_token() {
    let long = "pleural effusion ".repeat(100);
    let ids = tok().encode(&long).unwrap();
    assert_eq!(ids.len(), CONTEXT_LENGTH);
    assert_eq!(ids[0], SOT_ID);
    assert_eq!(ids[CONTEXT_LENGTH - 1], EOT_ID);
    // The first 75 content tokens survive: the prefix of the untruncated encoding.
    let per_copy = tok().encode("pleural effusion").unwrap().len() - 2;
    let full = tok().encode_with_context(&long, 1000).unwrap();
    assert_eq!(full.len(), 2 + per_copy * 100);
    assert_eq!(ids[..CONTEXT_LENGTH - 1], full[..CONTEXT_LENGTH - 1]);
    let short = tok().encode_with_context(&long, 5).unwrap();
    assert_eq!(short, [full[0], full[1], full[2], full[3], EOT_ID]);
}

#[test]
fn batch_is_padded_row_major_with_eot_positions() {
    let texts = ["a photo of a cat", "", &"edema ".repeat(20)];
    let batch = tok().encode_batch(&texts, 16).unwrap();
    assert_eq!((batch.batch, batch.context_length), (3, 16));
    assert_eq!(batch.ids.len(), 3 * 16);
    assert_eq!(batch.lengths, [7, 2, 16]);
    assert_eq!(batch.eot_positions, [6, 1, 15]);
    let row0 = batch.row(0).unwrap();
    assert_eq!(row0[..7], [SOT_ID, 320, 1125, 539, 320, 2368, EOT_ID]);
    assert!(row0[7..].iter().all(|&id| id == PAD_ID_HF));
    assert_eq!(batch.row(2).unwrap()[15], EOT_ID);
    assert!(batch.row(3).is_none());
    let mask = batch.attention_mask();
    assert_eq!(mask.iter().sum::<u32>(), 7 + 2 + 16);
    assert_eq!(mask[16..18], [1, 1]);
    assert_eq!(mask[18], 0);
    // Each row equals the single-text encoding.
    for (i, text) in texts.iter().enumerate() {
        let single = tok().encode_with_context(text, 16).unwrap();
        assert_eq!(batch.row(i).unwrap()[..single.len()], single[..]);
    }
}

#[test]
fn open_clip_pad_id_is_an_option() {
    let t = tok().clone().with_pad_id(PAD_ID_OPEN_CLIP).unwrap();
    assert_eq!(t.pad_id(), 0);
    let batch = t.encode_batch(&["cat"], 6).unwrap();
    assert_eq!(batch.ids, [SOT_ID, 2368, EOT_ID, 0, 0, 0]);
    assert_eq!(batch.eot_positions, [2]);
    assert!(matches!(
        tok().clone().with_pad_id(VOCAB_SIZE as u32),
        Err(TextError::BadPadId { .. })
    ));
}

#[test]
fn literal_special_tokens_match_exact_case_only() {
    // As Hugging Face: matched on the raw text (see the golden test for open_clip).
    let ids = tok().encode("a cat <|endoftext|> a photo").unwrap();
    assert_eq!(ids, [SOT_ID, 320, 2368, EOT_ID, 320, 1125, EOT_ID]);
    let upper = tok().encode("<|ENDOFTEXT|>").unwrap();
    assert_eq!(upper.len(), 8, "plain text: {upper:?}");
    // Pooling position is the first end token, as OpenAI's argmax and HF's pooling pick.
    let batch = tok()
        .encode_batch(&["a cat <|endoftext|> a photo"], 8)
        .unwrap();
    assert_eq!(batch.eot_positions, [3]);
    assert_eq!(batch.lengths, [7]);
}

#[test]
fn too_short_context_is_an_error() {
    assert!(matches!(
        tok().encode_batch(&["edema"], 1),
        Err(TextError::ContextTooShort(1))
    ));
    assert!(matches!(
        tok().encode_with_context("edema", 0),
        Err(TextError::ContextTooShort(0))
    ));
}

#[test]
fn empty_batch_is_empty() {
    let batch = tok().encode_batch(&[], 77).unwrap();
    assert_eq!((batch.batch, batch.ids.len()), (0, 0));
}

#[test]
fn tokenizer_json_round_trip_and_vocab_gz_path() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("tokenizer.json");
    std::fs::write(&json, tok().to_tokenizer_json(false).unwrap()).unwrap();
    let loaded = ClipTokenizer::from_tokenizer_json(&json).unwrap();
    let gz = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/bpe_simple_vocab_16e6.txt.gz"
    );
    let from_gz = ClipTokenizer::from_vocab_gz(std::path::Path::new(gz)).unwrap();
    for text in ["Round(ed) Atelectasis", "no pneumothorax.", "Ünïcödé 123"] {
        let expected = tok().encode(text).unwrap();
        assert_eq!(loaded.encode(text).unwrap(), expected);
        assert_eq!(from_gz.encode(text).unwrap(), expected);
    }
}

#[test]
fn bad_files_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    assert!(matches!(
        ClipTokenizer::from_tokenizer_json(&missing),
        Err(TextError::Io { .. })
    ));
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{not json").unwrap();
    let err = ClipTokenizer::from_tokenizer_json(&garbage).unwrap_err();
    assert!(matches!(err, TextError::NotClip { .. }), "{err}");
    let not_gz = dir.path().join("vocab.txt.gz");
    std::fs::write(&not_gz, "plain text").unwrap();
    assert!(matches!(
        ClipTokenizer::from_vocab_gz(&not_gz),
        Err(TextError::BadVocab { .. })
    ));
}

#[test]
fn non_clip_tokenizer_json_is_rejected() {
    // A valid tokenizers file with a 3-token word-level vocabulary.
    let json = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
        "normalizer":null,"pre_tokenizer":null,"post_processor":null,"decoder":null,
        "model":{"type":"WordLevel","vocab":{"a":0,"b":1,"[UNK]":2},"unk_token":"[UNK]"}}"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, json).unwrap();
    let err = ClipTokenizer::from_tokenizer_json(&path).unwrap_err();
    assert!(err.to_string().contains("49408"), "{err}");
}

#[test]
fn missing_hf_cache_entry_is_an_error() {
    // The repo id cannot exist in any cache.
    let err = ClipTokenizer::from_hf_cache("cxr-cml-test/definitely-not-cached").unwrap_err();
    assert!(matches!(err, TextError::NotInHfCache { .. }), "{err}");
}

#[test]
fn decode_round_trips_lowercased_words() {
    let ids = tok().encode("Pleural Effusion is present.").unwrap();
    assert_eq!(tok().decode(&ids).unwrap(), "pleural effusion is present .");
    assert_eq!(
        tok().decode(&[SOT_ID, 320, 1125, EOT_ID]).unwrap(),
        "a photo"
    );
    assert!(matches!(
        tok().decode(&[VOCAB_SIZE as u32]),
        Err(TextError::UnknownId { .. })
    ));
}
