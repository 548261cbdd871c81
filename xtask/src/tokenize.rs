//! `cargo xtask tokenize TEXT...`: CLIP token ids as JSON, one array per text and line.
//!
//! ```text
//! $ cargo xtask tokenize "a photo of a cat" "no pleural effusion"
//! [49406,320,1125,539,320,2368,49407]
//! [49406,871,926,33948,1490,9364,49407]
//! ```

use std::path::Path;

use anyhow::Context;
use cxr_text::{ClipTokenizer, CONTEXT_LENGTH};

/// Print the CLIP BPE token ids of each text as a JSON array (one line per text).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Texts to tokenize.
    #[arg(required = true)]
    pub texts: Vec<String>,

    /// Tokenizer: a `tokenizer.json`, a gzipped OpenAI merges file (`*.gz`), or a Hugging Face
    /// repo id looked up in the local cache (e.g. `openai/clip-vit-base-patch32`). Default:
    /// the vocabulary bundled in cxr-text.
    #[arg(long)]
    pub tokenizer: Option<String>,

    /// Context length: longer texts are truncated, keeping the end token.
    #[arg(long, default_value_t = CONTEXT_LENGTH)]
    pub context_length: usize,

    /// Pad every array to the context length (as the model sees them).
    #[arg(long)]
    pub pad: bool,

    /// Pad id used with `--pad`: 49407 as Hugging Face (default), 0 as open_clip.
    #[arg(long, default_value_t = cxr_text::PAD_ID_HF, requires = "pad")]
    pub pad_id: u32,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    let tokenizer = load(args.tokenizer.as_deref())?.with_pad_id(args.pad_id)?;
    let texts: Vec<&str> = args.texts.iter().map(String::as_str).collect();
    let batch = tokenizer.encode_batch(&texts, args.context_length)?;
    let mut out = String::new();
    for (row, &len) in batch.lengths.iter().enumerate() {
        let ids = batch.row(row).context("row within the batch")?;
        let ids = if args.pad { ids } else { &ids[..len] };
        out.push_str(&serde_json::to_string(ids)?);
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

fn load(source: Option<&str>) -> anyhow::Result<ClipTokenizer> {
    let Some(source) = source else {
        return Ok(ClipTokenizer::bundled()?);
    };
    let path = Path::new(source);
    let tokenizer = if path.is_file() {
        if source.ends_with(".gz") {
            ClipTokenizer::from_vocab_gz(path)?
        } else {
            ClipTokenizer::from_tokenizer_json(path)?
        }
    } else if path.is_dir() {
        ClipTokenizer::from_tokenizer_json(&path.join("tokenizer.json"))?
    } else {
        ClipTokenizer::from_hf_cache(source)
            .with_context(|| format!("{source} is neither a file nor a cached HF repo"))?
    };
    Ok(tokenizer)
}
