//! Downloading CLIP weights by hub id (feature `hub-download`): the crate's only network code,
//! kept out of the default build so that the library itself never touches the network (the
//! CLI enables the feature; see `docs/ARCHITECTURE.md`).
//!
//! Downloads go through hf-hub's own blocking client (`hf_hub::api::sync`, ureq + rustls) into
//! the standard cache layout (`models--owner--name/{blobs,snapshots,refs}`), so Python's
//! `huggingface_hub` and [`ClipWeights::from_hf_cache`] find the files afterwards. The
//! environment is honoured as `huggingface_hub` does:
//! - `HF_ENDPOINT`: the hub's URL (default `https://huggingface.co`), e.g. a mirror;
//! - `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`: the cache
//!   ([`default_hub_cache`]);
//! - `HF_HUB_OFFLINE=1` (or `true` / `yes` / `on`): no request at all, the cache only;
//! - `HF_TOKEN` / `HF_HOME/token`: a token for gated or private repositories (hf-hub reads it).
//!
//! A repository whose config and weights are already cached is used as is, without a request
//! (a later push to the hub is not picked up: delete the cache entry or name a revision,
//! `owner/name@<commit>`, to get another version).

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Repo, RepoType};

use crate::weights::{default_hub_cache, ClipWeights};
use crate::{Error, Result};

/// The files a CLIP repository needs: its config, then the first weight file the hub has.
const CONFIG: &str = "config.json";
const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// Whether `HF_HUB_OFFLINE` asks for the cache only (`1`, `true`, `yes`, `on`, any case).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// The hub's URL: `HF_ENDPOINT` (trailing `/` removed), else `https://huggingface.co`.
pub fn endpoint() -> String {
    match std::env::var("HF_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => e.trim().trim_end_matches('/').to_owned(),
        _ => "https://huggingface.co".to_owned(),
    }
}

/// Where [`fetch`] found or put a repository's files.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The cache folder (the `hub` folder holding `models--owner--name`).
    pub cache: PathBuf,
    /// `config.json` in the snapshot folder.
    pub config: PathBuf,
    /// The weight file in the snapshot folder.
    pub weights: PathBuf,
    /// Whether anything was downloaded (false: everything was cached already).
    pub downloaded: bool,
}

/// Makes sure `repo_id` (`owner/name`, optionally `@revision`) has its config and weights in
/// the hub cache, downloading what is missing (with a progress bar when `progress`), and says
/// where they are. With `HF_HUB_OFFLINE=1` nothing is requested: a repository missing from
/// the cache is an error naming the id and the cache folder.
pub fn fetch(repo_id: &str, progress: bool) -> Result<Fetched> {
    fetch_at(&default_hub_cache(), &endpoint(), repo_id, progress)
}

/// [`fetch`] then [`ClipWeights::from_hf_cache_at`]: the weights of a hub id, downloaded if
/// needed.
pub fn resolve_hub(repo_id: &str, progress: bool) -> Result<ClipWeights> {
    let fetched = fetch(repo_id, progress)?;
    ClipWeights::from_hf_cache_at(&fetched.cache, repo_id)
}

/// As [`ClipWeights::resolve`] (an existing path is read from disk), but a hub id missing
/// from the cache is downloaded first.
pub fn resolve_online(path_or_id: &str, progress: bool) -> Result<ClipWeights> {
    if Path::new(path_or_id).exists() {
        ClipWeights::from_path(path_or_id)
    } else {
        resolve_hub(path_or_id, progress)
    }
}

fn split_revision(repo_id: &str) -> (&str, &str) {
    repo_id.split_once('@').unwrap_or((repo_id, "main"))
}

/// [`fetch`] with an explicit cache folder and endpoint.
pub fn fetch_at(
    cache_dir: &Path,
    endpoint: &str,
    repo_id: &str,
    progress: bool,
) -> Result<Fetched> {
    let (id, revision) = split_revision(repo_id);
    if id.is_empty() || revision.is_empty() {
        return Err(Error::BadInput(format!(
            "`{repo_id}` is neither an existing path nor a hub id (`owner/name`, optionally \
             `@revision`)"
        )));
    }
    let repo = Repo::with_revision(id.to_owned(), RepoType::Model, revision.to_owned());
    let cached = hf_hub::Cache::new(cache_dir.to_owned()).repo(repo.clone());
    let in_cache = || -> Option<(PathBuf, PathBuf)> {
        let config = cached.get(CONFIG)?;
        let weights = WEIGHT_FILES.iter().find_map(|f| cached.get(f))?;
        Some((config, weights))
    };
    if let Some((config, weights)) = in_cache() {
        return Ok(Fetched {
            cache: cache_dir.to_owned(),
            config,
            weights,
            downloaded: false,
        });
    }
    if offline() {
        return Err(Error::NotCached {
            repo: repo_id.to_owned(),
            cache: cache_dir.to_owned(),
            file: format!(
                "{CONFIG} or {} (HF_HUB_OFFLINE is set, so nothing was downloaded: unset it to \
                 download)",
                WEIGHT_FILES.join(" / ")
            ),
        });
    }
    let api = ApiBuilder::from_cache(hf_hub::Cache::new(cache_dir.to_owned()))
        .with_endpoint(endpoint.to_owned())
        .with_progress(progress)
        .with_retries(2)
        .build()
        .map_err(|e| download_err(repo_id, endpoint, CONFIG, e))?;
    let remote = api.repo(repo);
    let config = remote
        .get(CONFIG)
        .map_err(|e| download_err(repo_id, endpoint, CONFIG, e))?;
    let mut last = None;
    for file in WEIGHT_FILES {
        match remote.get(file) {
            Ok(weights) => {
                return Ok(Fetched {
                    cache: cache_dir.to_owned(),
                    config,
                    weights,
                    downloaded: true,
                })
            }
            // Not on the hub: try the next weight format.
            Err(e) if is_not_found(&e) => last = Some(download_err(repo_id, endpoint, file, e)),
            Err(e) => return Err(download_err(repo_id, endpoint, file, e)),
        }
    }
    Err(last.expect("at least one weight file name"))
}

fn is_not_found(e: &ApiError) -> bool {
    match e {
        ApiError::RequestError(r) => matches!(**r, ureq::Error::Status(404, _)),
        ApiError::TooManyRetries(inner) => is_not_found(inner),
        _ => false,
    }
}

fn download_err(repo: &str, endpoint: &str, file: &str, e: ApiError) -> Error {
    let hint = if is_not_found(&e) {
        "the repository or file does not exist there (check the id, the revision after `@`, \
         and HF_TOKEN for a private or gated repository)"
    } else {
        "check the network, HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only"
    };
    Error::Download {
        repo: repo.to_owned(),
        url: {
            let (id, revision) = split_revision(repo);
            format!("{endpoint}/{id}/resolve/{revision}/{file}")
        },
        msg: format!("{e}; {hint}"),
    }
}
