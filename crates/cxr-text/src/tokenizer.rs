//! CLIP's byte-level BPE tokenizer, built in code from OpenAI's merges file.
//!
//! The pipeline is the one Hugging Face's `CLIPTokenizerFast` serialises into `tokenizer.json`
//! (`transformers.convert_slow_tokenizer.CLIPConverter`), so ids equal both Hugging Face's
//! `CLIPTokenizer` and open_clip's `SimpleTokenizer` on clean text:
//!
//! 1. normalizer: NFC, collapse every whitespace run to one space, lowercase;
//! 2. pre-tokenizer: CLIP's pattern
//!    `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
//!    (whitespace dropped), then the GPT-2 byte-to-unicode mapping;
//! 3. model: BPE over the 48,894 merges, with `</w>` marking the end of each word;
//! 4. post-processor: `<|startoftext|>` (49406) ... `<|endoftext|>` (49407).
//!
//! Truncation and padding are done here, not by `tokenizers`, so that one tokenizer serves every
//! context length: a sequence longer than the context keeps its first `L - 1` tokens and ends
//! with `<|endoftext|>` (open_clip's `tokenize` and Hugging Face's `truncation=True` agree).
//!
//! # Known differences from the Python references
//!
//! The golden test (`tests/goldens.rs`, 1,215 strings) checks equality with Hugging Face on
//! every string and with open_clip on every string up to the differences below.
//!
//! - **ftfy and HTML cleanup.** open_clip runs `ftfy.fix_text` and `html.unescape` (twice)
//!   before tokenizing; Hugging Face's `CLIPTokenizer` (and this one) does not. ftfy uncurls
//!   quotes (`don’t` → `don't`, which then splits as a contraction), replaces ligatures and
//!   full-width characters, repairs mojibake (`cafÃ©` → `café`) and drops control characters;
//!   `html.unescape` turns `&amp;` into `&`. On such strings the ids equal Hugging Face's, and
//!   equal open_clip's once the text is cleaned the same way (tested on 51 strings). Clean
//!   report text upstream where this matters.
//! - **Special-token literals.** Like Hugging Face, the literal text `<|startoftext|>` /
//!   `<|endoftext|>` (exact case) becomes the special token; open_clip 3.x names its special
//!   tokens `<start_of_text>` / `<end_of_text>`, so it reads the OpenAI names as punctuation and
//!   words and its own names as special tokens.
//! - **Lowercasing** is per character (as in Hugging Face's tokenizer); Python's `str.lower()`
//!   turns a word-final capital sigma into `ς`, this gives `σ`.
//! - **Whitespace.** Python's `\s` also matches U+001C..U+001F; Rust's does not. open_clip's
//!   ftfy removes these control characters anyway; here, as in Hugging Face, they are tokens.
//! - **Pad id.** Hugging Face pads with `<|endoftext|>` (49407), open_clip with 0. The default
//!   here is 49407 (the model follows Hugging Face's `CLIPModel`); see
//!   [`ClipTokenizer::with_pad_id`] and [`PAD_ID_OPEN_CLIP`]. With CLIP's causal mask and
//!   pooling at the end token, the pad id does not change the text embedding.
//!
//! Since transformers 5, `CLIPTokenizer` is itself backed by the `tokenizers` library with
//! this same pipeline (the test checks that our serialised `tokenizer.json` equals the one it
//! writes); open_clip's pure-Python BPE is the independent implementation checked against.

use std::io::Read;
use std::path::{Path, PathBuf};

use tokenizers::models::bpe::{Merges, Vocab, BPE};
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{Lowercase, Replace, Sequence as NormSequence, NFC};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::error::{Result, TextError};

/// Id of `<|startoftext|>`.
pub const SOT_ID: u32 = 49406;
/// Id of `<|endoftext|>`; also Hugging Face's pad id for CLIP.
pub const EOT_ID: u32 = 49407;
/// Vocabulary size: 256 bytes + 256 bytes with `</w>` + 48,894 merges + 2 special tokens.
pub const VOCAB_SIZE: usize = 49408;
/// CLIP's text context length.
pub const CONTEXT_LENGTH: usize = 77;
/// open_clip's pad id (`torch.zeros` in `open_clip.tokenize`); token 0 is `!`.
pub const PAD_ID_OPEN_CLIP: u32 = 0;
/// Hugging Face's pad id for OpenAI CLIP checkpoints (`<|endoftext|>`); the default here.
pub const PAD_ID_HF: u32 = EOT_ID;

/// `<|startoftext|>`.
pub const SOT_TOKEN: &str = "<|startoftext|>";
/// `<|endoftext|>`.
pub const EOT_TOKEN: &str = "<|endoftext|>";

/// Number of merges CLIP uses from the file: `49152 - 256 - 2` (as in OpenAI's code).
const NUM_MERGES: usize = 49152 - 256 - 2;

/// CLIP's pre-tokenizer pattern (OpenAI `simple_tokenizer.py`, Hugging Face `CLIPConverter`).
const CLIP_PATTERN: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// OpenAI's `bpe_simple_vocab_16e6.txt.gz` (MIT), embedded so that a bundled tokenizer needs
/// no file at run time. See `data/README.md`.
static BUNDLED_VOCAB_GZ: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/bpe_simple_vocab_16e6.txt.gz"
));

/// The CLIP BPE tokenizer: text in, `[SOT, ..., EOT]` ids out.
///
/// Cheap to share (`Send + Sync`); building one parses 49k merges (tens of milliseconds),
/// so build it once and reuse it.
#[derive(Clone)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    pad_id: u32,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTokenizer")
            .field("vocab_size", &self.inner.get_vocab_size(true))
            .field("pad_id", &self.pad_id)
            .finish()
    }
}

/// A padded batch of token ids, ready to become a `(batch, context_length)` tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// `batch * context_length` ids, row-major, padded with the tokenizer's pad id.
    pub ids: Vec<u32>,
    /// Number of rows.
    pub batch: usize,
    /// Row length.
    pub context_length: usize,
    /// Per row, the index of the first `<|endoftext|>`: where CLIP pools the text features
    /// (OpenAI's `argmax(ids)`, Hugging Face's first `eos_token_id`). For ordinary text this is
    /// the end token appended by the tokenizer, i.e. `lengths[i] - 1`.
    pub eot_positions: Vec<usize>,
    /// Per row, the number of real (non-pad) tokens, start and end tokens included.
    pub lengths: Vec<usize>,
}

impl TokenBatch {
    /// Row `i` of the batch (`context_length` ids), or `None` when out of range.
    pub fn row(&self, i: usize) -> Option<&[u32]> {
        (i < self.batch).then(|| &self.ids[i * self.context_length..(i + 1) * self.context_length])
    }

    /// `batch * context_length` attention mask, row-major: 1 on real tokens, 0 on padding
    /// (Hugging Face's `attention_mask`).
    pub fn attention_mask(&self) -> Vec<u32> {
        let mut mask = vec![0u32; self.ids.len()];
        for (row, &len) in self.lengths.iter().enumerate() {
            let start = row * self.context_length;
            mask[start..start + len].fill(1);
        }
        mask
    }
}

impl ClipTokenizer {
    /// The tokenizer built from the vocabulary embedded in this crate (no file needed).
    pub fn bundled() -> Result<Self> {
        Self::from_gz_bytes(BUNDLED_VOCAB_GZ, "bundled bpe_simple_vocab_16e6.txt.gz")
    }

    /// Builds the tokenizer from a gzipped OpenAI merges file (`bpe_simple_vocab_16e6.txt.gz`).
    pub fn from_vocab_gz(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| TextError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_gz_bytes(&bytes, &path.display().to_string())
    }

    /// Loads a Hugging Face `tokenizer.json` (e.g. from a CLIP checkpoint folder) and checks
    /// that it is CLIP's: vocabulary of 49,408, `<|startoftext|>` = 49406, `<|endoftext|>` =
    /// 49407, and the post-processor adds both. Truncation and padding stored in the file are
    /// dropped (this type applies its own).
    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| TextError::Io {
            path: path.to_owned(),
            source,
        })?;
        let source_name = path.display().to_string();
        let inner = Tokenizer::from_bytes(&bytes).map_err(|e| TextError::NotClip {
            source_name: source_name.clone(),
            reason: format!("cannot parse it as a tokenizers JSON file ({e})"),
        })?;
        Self::checked(inner, &source_name)
    }

    /// Loads `tokenizer.json` of `repo_id` (e.g. `openai/clip-vit-base-patch32`) from the local
    /// Hugging Face cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
    /// `~/.cache/huggingface/hub`). Never touches the network.
    pub fn from_hf_cache(repo_id: &str) -> Result<Self> {
        let cache = hf_hub_cache_dir();
        let path = find_in_hf_cache(&cache, repo_id, "tokenizer.json").ok_or_else(|| {
            TextError::NotInHfCache {
                repo_id: repo_id.to_owned(),
                cache: cache.clone(),
            }
        })?;
        Self::from_tokenizer_json(&path)
    }

    /// Sets the id used to pad rows in [`encode_batch`](Self::encode_batch): [`PAD_ID_HF`]
    /// (the default) or [`PAD_ID_OPEN_CLIP`].
    pub fn with_pad_id(mut self, pad_id: u32) -> Result<Self> {
        if pad_id as usize >= VOCAB_SIZE {
            return Err(TextError::BadPadId {
                pad_id,
                vocab_size: VOCAB_SIZE,
            });
        }
        self.pad_id = pad_id;
        Ok(self)
    }

    /// The id used for padding.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The wrapped `tokenizers` tokenizer (e.g. to save it as `tokenizer.json`).
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Serialises the tokenizer in Hugging Face's `tokenizer.json` format.
    pub fn to_tokenizer_json(&self, pretty: bool) -> Result<String> {
        self.inner.to_string(pretty).map_err(TextError::tokenizer)
    }

    /// Encodes one text as `[SOT, ..., EOT]`, truncated to [`CONTEXT_LENGTH`] tokens keeping
    /// the end token; not padded.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_with_context(text, CONTEXT_LENGTH)
    }

    /// [`encode`](Self::encode) with another context length (at least 2).
    pub fn encode_with_context(&self, text: &str, context_length: usize) -> Result<Vec<u32>> {
        if context_length < 2 {
            return Err(TextError::ContextTooShort(context_length));
        }
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(TextError::tokenizer)?;
        let mut ids = encoding.get_ids().to_vec();
        truncate_keep_eot(&mut ids, context_length);
        Ok(ids)
    }

    /// Encodes the texts into one padded `(batch, context_length)` block; each row is
    /// truncated as in [`encode`](Self::encode) and padded with [`pad_id`](Self::pad_id).
    pub fn encode_batch(&self, texts: &[&str], context_length: usize) -> Result<TokenBatch> {
        if context_length < 2 {
            return Err(TextError::ContextTooShort(context_length));
        }
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), true)
            .map_err(TextError::tokenizer)?;
        let batch = encodings.len();
        let mut ids = vec![self.pad_id; batch * context_length];
        let mut eot_positions = Vec::with_capacity(batch);
        let mut lengths = Vec::with_capacity(batch);
        for (row, encoding) in encodings.iter().enumerate() {
            let mut row_ids = encoding.get_ids().to_vec();
            truncate_keep_eot(&mut row_ids, context_length);
            let start = row * context_length;
            ids[start..start + row_ids.len()].copy_from_slice(&row_ids);
            // The post-processor always appends EOT, so a first EOT exists.
            let eot = row_ids
                .iter()
                .position(|&id| id == EOT_ID)
                .unwrap_or(row_ids.len() - 1);
            eot_positions.push(eot);
            lengths.push(row_ids.len());
        }
        Ok(TokenBatch {
            ids,
            batch,
            context_length,
            eot_positions,
            lengths,
        })
    }

    /// Decodes ids back to text as open_clip's `SimpleTokenizer.decode` does, `</w>` read as a
    /// space, start and end tokens skipped (so Hugging Face's 49407 padding vanishes; open_clip's
    /// 0 padding is the token `!` and stays). Lossy: CLIP lowercases and drops whitespace
    /// structure, so "Effusion." comes back as "effusion .".
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let byte_of = byte_decoder();
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            if id == SOT_ID || id == EOT_ID {
                continue;
            }
            let token = self
                .inner
                .id_to_token(id)
                .ok_or(TextError::UnknownId { id })?;
            let (body, word_end) = match token.strip_suffix("</w>") {
                Some(body) => (body, true),
                None => (token.as_str(), false),
            };
            // Tokens of a byte-level vocabulary only hold mapped characters.
            bytes.extend(body.chars().filter_map(|c| byte_of.get(&c).copied()));
            if word_end {
                bytes.push(b' ');
            }
        }
        Ok(String::from_utf8_lossy(&bytes).trim_end().to_owned())
    }

    fn from_gz_bytes(gz: &[u8], source_name: &str) -> Result<Self> {
        let bad = |reason: String| TextError::BadVocab {
            source_name: source_name.to_owned(),
            reason,
        };
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut text)
            .map_err(|e| bad(format!("cannot gunzip it as UTF-8 text ({e})")))?;
        let merges = parse_merges(&text).map_err(bad)?;
        Self::checked(build_clip_tokenizer(merges)?, source_name)
    }

    /// Drops stored truncation/padding and checks the CLIP invariants.
    fn checked(mut inner: Tokenizer, source_name: &str) -> Result<Self> {
        let not_clip = |reason: String| TextError::NotClip {
            source_name: source_name.to_owned(),
            reason,
        };
        inner
            .with_truncation(None)
            .map_err(|e| not_clip(e.to_string()))?;
        inner.with_padding(None);
        let size = inner.get_vocab_size(true);
        if size != VOCAB_SIZE {
            return Err(not_clip(format!(
                "vocabulary has {size} tokens, CLIP's has {VOCAB_SIZE}"
            )));
        }
        for (token, id) in [(SOT_TOKEN, SOT_ID), (EOT_TOKEN, EOT_ID)] {
            let found = inner.token_to_id(token);
            if found != Some(id) {
                return Err(not_clip(format!("{token} has id {found:?}, expected {id}")));
            }
        }
        let empty = inner
            .encode("", true)
            .map_err(|e| not_clip(format!("cannot encode the empty string ({e})")))?;
        if empty.get_ids() != [SOT_ID, EOT_ID] {
            return Err(not_clip(format!(
                "the empty string encodes as {:?}, expected [{SOT_ID}, {EOT_ID}] \
                 (the post-processor must add start and end tokens)",
                empty.get_ids()
            )));
        }
        Ok(Self {
            inner,
            pad_id: PAD_ID_HF,
        })
    }
}

/// Truncates to `context_length` keeping the end token last (open_clip's `tokenize`).
fn truncate_keep_eot(ids: &mut Vec<u32>, context_length: usize) {
    if ids.len() > context_length {
        ids.truncate(context_length);
        ids[context_length - 1] = EOT_ID;
    }
}

/// Reads the merges the way OpenAI's `SimpleTokenizer` does: skip the header line, take the
/// next 48,894 lines, each `left right`.
fn parse_merges(text: &str) -> std::result::Result<Merges, String> {
    let mut merges = Vec::with_capacity(NUM_MERGES);
    for (i, line) in text.split('\n').skip(1).take(NUM_MERGES).enumerate() {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) => merges.push((a.to_owned(), b.to_owned())),
            _ => return Err(format!("line {} is {line:?}, not a merge 'a b'", i + 2)),
        }
    }
    if merges.len() != NUM_MERGES {
        return Err(format!(
            "it has {} merges, CLIP needs {NUM_MERGES}",
            merges.len()
        ));
    }
    Ok(merges)
}

/// GPT-2's reversible byte-to-unicode table, in OpenAI's order (printable bytes first, then
/// the rest mapped to U+0100 upwards). The order fixes the ids of the first 512 tokens.
pub(crate) fn bytes_to_unicode() -> Vec<(u8, char)> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table: Vec<(u8, char)> = (0..=255u8)
        .filter(|&b| printable(b))
        .map(|b| (b, char::from(b)))
        .collect();
    let mut n = 0u32;
    for b in 0..=255u8 {
        if !printable(b) {
            // 256 + n < 512 is always a valid scalar value.
            table.push((b, char::from_u32(256 + n).unwrap_or('\u{100}')));
            n += 1;
        }
    }
    table
}

/// The inverse of [`bytes_to_unicode`], built once.
fn byte_decoder() -> &'static std::collections::HashMap<char, u8> {
    static TABLE: std::sync::OnceLock<std::collections::HashMap<char, u8>> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        bytes_to_unicode()
            .into_iter()
            .map(|(b, c)| (c, b))
            .collect()
    })
}

/// OpenAI's vocabulary order: byte symbols, byte symbols + `</w>`, merges, special tokens.
fn clip_vocab(merges: &Merges) -> Vocab {
    let symbols: Vec<String> = bytes_to_unicode()
        .into_iter()
        .map(|(_, c)| c.to_string())
        .collect();
    let words = symbols.iter().map(|s| format!("{s}</w>"));
    let merged = merges.iter().map(|(a, b)| format!("{a}{b}"));
    symbols
        .iter()
        .cloned()
        .chain(words)
        .chain(merged)
        .chain([SOT_TOKEN.to_owned(), EOT_TOKEN.to_owned()])
        .enumerate()
        .map(|(id, token)| (token, id as u32))
        .collect()
}

/// Builds the `tokenizers` pipeline that Hugging Face's `CLIPConverter` writes.
fn build_clip_tokenizer(merges: Merges) -> Result<Tokenizer> {
    let vocab = clip_vocab(&merges);
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .unk_token(EOT_TOKEN.to_owned())
        .continuing_subword_prefix(String::new())
        .end_of_word_suffix("</w>".to_owned())
        .fuse_unk(false)
        .build()
        .map_err(TextError::tokenizer)?;
    let mut tokenizer = Tokenizer::new(bpe);
    let normalizer = NormSequence::new(vec![
        NFC.into(),
        Replace::new(ReplacePattern::Regex(r"\s+".to_owned()), " ")
            .map_err(TextError::tokenizer)?
            .into(),
        Lowercase.into(),
    ]);
    tokenizer
        .with_normalizer(Some(normalizer))
        .map_err(TextError::tokenizer)?;
    let split = Split::new(
        SplitPattern::Regex(CLIP_PATTERN.to_owned()),
        SplitDelimiterBehavior::Removed,
        true,
    )
    .map_err(TextError::tokenizer)?;
    tokenizer.with_pre_tokenizer(Some(PreSequence::new(vec![
        split.into(),
        // use_regex as Hugging Face writes it; a no-op after CLIP's split.
        ByteLevel::new(false, true, true).into(),
    ])));
    tokenizer.with_post_processor(Some(
        RobertaProcessing::new(
            (EOT_TOKEN.to_owned(), EOT_ID),
            (SOT_TOKEN.to_owned(), SOT_ID),
        )
        .trim_offsets(false)
        .add_prefix_space(false),
    ));
    // As in Hugging Face's file; `ClipTokenizer::decode` does not use it.
    tokenizer.with_decoder(Some(ByteLevel::default()));
    // Matched on the raw text, as in the file transformers writes: "<|endoftext|>" is the end
    // token, "<|ENDOFTEXT|>" is plain text.
    tokenizer
        .add_special_tokens([
            AddedToken::from(SOT_TOKEN, true),
            AddedToken::from(EOT_TOKEN, true),
        ])
        .map_err(TextError::tokenizer)?;
    Ok(tokenizer)
}

/// The Hugging Face hub cache directory, as `huggingface_hub` resolves it.
fn hf_hub_cache_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = env("HF_HUB_CACHE").or_else(|| env("HUGGINGFACE_HUB_CACHE")) {
        return p;
    }
    if let Some(home) = env("HF_HOME") {
        return home.join("hub");
    }
    let cache = env("XDG_CACHE_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("huggingface").join("hub")
}

/// `cache/models--org--name/snapshots/<refs/main>/<file>`, else any snapshot holding the file.
pub(crate) fn find_in_hf_cache(cache: &Path, repo_id: &str, file: &str) -> Option<PathBuf> {
    let repo_dir = cache.join(format!("models--{}", repo_id.replace('/', "--")));
    let snapshots = repo_dir.join("snapshots");
    if let Ok(commit) = std::fs::read_to_string(repo_dir.join("refs").join("main")) {
        let path = snapshots.join(commit.trim()).join(file);
        if path.is_file() {
            return Some(path);
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join(file)))
        .filter(|p| p.is_file())
        .collect();
    candidates.sort();
    candidates.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection_in_openai_order() {
        let table = bytes_to_unicode();
        assert_eq!(table.len(), 256);
        assert_eq!(table[0], (b'!', '!'));
        // First non-printable byte (0x00) comes right after the 188 printable ones.
        assert_eq!(table[188], (0, '\u{100}'));
        assert_eq!(table[255].1, '\u{143}');
        let mut chars: Vec<char> = table.iter().map(|&(_, c)| c).collect();
        chars.sort_unstable();
        chars.dedup();
        assert_eq!(chars.len(), 256);
    }

    #[test]
    fn merges_parser_rejects_short_or_bad_files() {
        assert!(parse_merges("#version\ni n\nt h\n").is_err());
        let bad = format!("#h\n{}", "a b c\n".repeat(3));
        assert!(parse_merges(&bad).unwrap_err().contains("line 2"));
    }

    #[test]
    fn truncation_keeps_end_token() {
        let mut ids: Vec<u32> = (0..10).collect();
        truncate_keep_eot(&mut ids, 4);
        assert_eq!(ids, vec![0, 1, 2, EOT_ID]);
        let mut short = vec![SOT_ID, 5, EOT_ID];
        truncate_keep_eot(&mut short, 4);
        assert_eq!(short, vec![SOT_ID, 5, EOT_ID]);
    }

    #[test]
    fn hf_cache_lookup_follows_refs_main() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let repo = dir.join("models--openai--clip-vit-base-patch32");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots/abc")).unwrap();
        std::fs::write(repo.join("refs/main"), "abc\n").unwrap();
        std::fs::write(repo.join("snapshots/abc/tokenizer.json"), "{}").unwrap();
        let found = find_in_hf_cache(dir, "openai/clip-vit-base-patch32", "tokenizer.json");
        assert_eq!(found, Some(repo.join("snapshots/abc/tokenizer.json")));
        assert_eq!(
            find_in_hf_cache(dir, "openai/other", "tokenizer.json"),
            None
        );
    }
}
