//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while building a tokenizer or rendering text.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file we tried to read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// The gzipped merges file is not OpenAI's `bpe_simple_vocab_16e6.txt.gz` layout.
    #[error(
        "BPE vocabulary {source_name} is malformed: {reason}; expected OpenAI's \
         bpe_simple_vocab_16e6.txt.gz (gzip, one header line, then 48,894 'a b' merge lines)"
    )]
    BadVocab {
        /// Where the vocabulary came from (a path or "bundled").
        source_name: String,
        /// What was wrong with it.
        reason: String,
    },

    /// A `tokenizer.json` loaded but is not a CLIP tokenizer we can use.
    #[error(
        "{source_name} is not a CLIP BPE tokenizer: {reason}; pass the tokenizer.json of an \
         OpenAI CLIP checkpoint (e.g. openai/clip-vit-base-patch32)"
    )]
    NotClip {
        /// Where the tokenizer came from.
        source_name: String,
        /// Which check failed.
        reason: String,
    },

    /// No `tokenizer.json` for a repository in the local Hugging Face cache.
    #[error(
        "no tokenizer.json for {repo_id} in the Hugging Face cache at {cache}; download it \
         first (`huggingface-cli download {repo_id} tokenizer.json`) or pass a file path"
    )]
    NotInHfCache {
        /// The repository id, e.g. `openai/clip-vit-base-patch32`.
        repo_id: String,
        /// The cache directory searched.
        cache: PathBuf,
    },

    /// An error raised inside the `tokenizers` crate.
    #[error("tokenizer failed: {0}")]
    Tokenizer(String),

    /// An id outside the tokenizer's vocabulary.
    #[error("token id {id} is not in the vocabulary (CLIP ids are 0..49408)")]
    UnknownId {
        /// The id.
        id: u32,
    },

    /// A context length too short to hold the start and end tokens.
    #[error("context length {0} is too short: it must be at least 2 (start and end tokens)")]
    ContextTooShort(usize),

    /// A pad id outside the vocabulary.
    #[error("pad id {pad_id} is outside the vocabulary of {vocab_size} tokens")]
    BadPadId {
        /// The requested pad id.
        pad_id: u32,
        /// The vocabulary size.
        vocab_size: usize,
    },

    /// A text template without exactly one `{}` placeholder.
    #[error("template {template:?} must contain exactly one \"{{}}\" placeholder (found {found})")]
    BadTemplate {
        /// The template as given.
        template: String,
        /// How many placeholders it had.
        found: usize,
    },

    /// A prompt set without any template pair.
    #[error("a prompt set needs at least one (positive, negative) template pair")]
    NoTemplates,

    /// A label mask whose length differs from the class list.
    #[error("label mask has {mask} entries but there are {classes} class names")]
    MaskLength {
        /// Length of the mask.
        mask: usize,
        /// Number of class names.
        classes: usize,
    },
}

impl TextError {
    pub(crate) fn tokenizer(e: impl std::fmt::Display) -> Self {
        Self::Tokenizer(e.to_string())
    }
}

/// This crate's result type.
pub type Result<T, E = TextError> = std::result::Result<T, E>;
