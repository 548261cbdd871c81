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
//! This crate does no network I/O; the only files it reads are ones the caller names (or the
//! local Hugging Face cache, for [`ClipTokenizer::from_hf_cache`]).
//!
//! ```
//! use cxr_text::{ClipTokenizer, MetaLabelText, PromptSet, CONTEXT_LENGTH, EOT_ID, SOT_ID};
//!
//! let tokenizer = ClipTokenizer::bundled()?; // build once, share
//! let text = MetaLabelText::paper().render(&["Adenopathy", "Pleural Effusion"]);
//! assert_eq!(text, "adenopathy is present, pleural effusion is present");
//! let (positives, negatives) = PromptSet::chexzero().prompts("Pleural Effusion");
//! assert_eq!((positives[0].as_str(), negatives[0].as_str()), ("Pleural Effusion", "no Pleural Effusion"));
//!
//! let batch = tokenizer.encode_batch(&[text.as_str(), "a photo of a cat"], CONTEXT_LENGTH)?;
//! assert_eq!(batch.ids.len(), 2 * CONTEXT_LENGTH);
//! assert_eq!(batch.row(1).unwrap()[..7], [SOT_ID, 320, 1125, 539, 320, 2368, EOT_ID]);
//! assert_eq!(batch.eot_positions[1], 6);
//! # Ok::<(), cxr_text::TextError>(())
//! ```

mod error;
mod meta_label;
mod prompts;
mod template;
pub mod tokenizer;

pub use error::{Result, TextError};
pub use meta_label::{positives_from_mask, MetaLabelText, NO_FINDING};
pub use prompts::{PromptSet, NORMAL_REPORT_TEXT, NO_FINDING_CLASSES};
pub use template::{ClassCase, Template};
pub use tokenizer::{
    ClipTokenizer, TokenBatch, CONTEXT_LENGTH, EOT_ID, EOT_TOKEN, PAD_ID_HF, PAD_ID_OPEN_CLIP,
    SOT_ID, SOT_TOKEN, VOCAB_SIZE,
};
