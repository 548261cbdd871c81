//! Text for CLIP on chest X-rays: the CLIP byte-level BPE tokenizer, the meta-label sentences
//! CXR-CML trains with, and the zero-shot prompt sets CheXzero evaluates with.
//!
//! - [`ClipTokenizer`]: OpenAI CLIP's tokenizer (49,408 tokens, context 77) built through the
//!   `tokenizers` crate from the bundled `bpe_simple_vocab_16e6.txt.gz`, or loaded from a
//!   Hugging Face `tokenizer.json`. Ids equal Hugging Face's `CLIPTokenizer` and open_clip's
//!   `tokenize`; the known differences (ftfy / HTML cleanup, pad id) are listed in the
//!   [`tokenizer`] module docs.
//! - [`MetaLabelText`]: "adenopathy is present, pleural effusion is present" (paper) or
//!   "Adenopathy is present. Pleural Effusion is present." (released code), custom templates,
//!   fixed or shuffled class order.
//! - [`PromptSet`]: (positive, negative) template pairs and class aliases for zero-shot
//!   classification.
//!
//! This crate does no network I/O; the only file it reads is one the caller names.

mod error;
mod meta_label;
mod prompts;
mod template;
pub mod tokenizer;

pub use error::{Result, TextError};
pub use meta_label::{positives_from_mask, MetaLabelText, NO_FINDING};
pub use prompts::PromptSet;
pub use template::{ClassCase, Template};
pub use tokenizer::{
    ClipTokenizer, TokenBatch, CONTEXT_LENGTH, EOT_ID, EOT_TOKEN, PAD_ID_HF, PAD_ID_OPEN_CLIP,
    SOT_ID, SOT_TOKEN, VOCAB_SIZE,
};
