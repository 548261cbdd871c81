//! Weights by hub id: the one place the CLI touches the network (the libraries never do).
//! `eval`, `train`, `cv` and `ablation` call [`fetch_if_hub_id`] before reading `--weights`.

use anyhow::Context;

/// Whether `spec` names a hub repository (`owner/name`, optionally `@revision`) rather than a
/// file: not an existing path, two non-empty parts of letters, digits, `-`, `_` and `.`, and
/// no weight-file extension.
pub fn is_hub_id(spec: &str) -> bool {
    if std::path::Path::new(spec).exists() {
        return false;
    }
    let id = spec.split_once('@').map_or(spec, |(id, _)| id);
    let ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let file_like = [".pt", ".pth", ".bin", ".ckpt", ".safetensors"]
        .iter()
        .any(|ext| id.ends_with(ext));
    matches!(id.split_once('/'), Some((owner, name)) if ok(owner) && ok(name)) && !file_like
}

/// Only the CLI touches the network: a hub id (`--weights owner/name`) missing from the hub
/// cache is downloaded into it here (progress bar; `HF_HUB_OFFLINE=1`: cache only), and the
/// library then reads it from the cache. Anything else is left to the library to read.
pub fn fetch_if_hub_id(spec: &str) -> anyhow::Result<()> {
    if !is_hub_id(spec) {
        return Ok(());
    }
    let fetched =
        cxr_clip::hub::fetch(spec, true).with_context(|| format!("resolving --weights {spec}"))?;
    if fetched.downloaded {
        tracing::info!("{spec} downloaded into {}", fetched.cache.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_hub_id;

    #[test]
    fn hub_ids_are_told_from_paths() {
        for id in [
            "openai/clip-vit-base-patch32",
            "org/name@main",
            "org/model.v2@0123abc",
        ] {
            assert!(is_hub_id(id), "{id}");
        }
        for not in [
            "c.pt",
            "chexzero/best_64.pt",
            "runs/demo/cxr-cml/checkpoints/best",
            "gpt2",
            "/abs/model",
            "../up/model",
            "org/",
            // An existing path is never a hub id (tests run in the package folder).
            "src/eval.rs",
        ] {
            assert!(!is_hub_id(not), "{not}");
        }
    }
}
