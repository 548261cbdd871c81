//! The image-embedding cache of `xtask eval --weights`: scoring the same weights on the same
//! images again (other prompts, other classes, another label file over the same images) reads
//! the embeddings back instead of running the image tower, so it takes seconds.
//!
//! An entry is keyed by everything the embeddings depend on: the content of the weight files
//! (not their path), the preprocessing and input size, the image list (data root, then each
//! record's id and image path, in order, and a sample of each image's preprocessed pixels, so
//! images regenerated at the same paths are another entry) and the device kind. It is two files in the cache
//! folder, `<key>.npy` (`N x D` f32, L2-normalised rows, as scored) and `<key>.json` (the key
//! fields, the shape and a hash of the array), each written atomically, the JSON last. On
//! read, the key, the shape and the array hash are checked: a damaged or foreign entry is
//! logged and recomputed, never trusted.
//!
//! The cache folder is `--cache-dir`, else `$CXR_CACHE_DIR`, else `embedding-cache/` beside the
//! output folder (its parent). Hashing big weight files takes a while (~1 s per GB), so their
//! hashes are remembered in `weights-hashes.json` in the cache folder by path, size and
//! modification time.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::error::IoContext;
use crate::prepare::Prepared;
use crate::{Result, TrainError};

/// The environment variable naming the cache folder (when no flag does).
pub const CACHE_DIR_ENV: &str = "CXR_CACHE_DIR";
/// Bumped when the entry layout or what the embeddings mean changes.
const FORMAT: u32 = 1;
const WEIGHT_HASHES: &str = "weights-hashes.json";
/// Pixels per image (evenly strided) that enter the image-list hash: cheap (256 bytes per
/// image, ~0.1 s for all of MIMIC-CXR) yet any regenerated image changes it.
pub const PIXEL_SAMPLE: usize = 256;

/// The cache folder for results written to `out`: `$CXR_CACHE_DIR` if set, else
/// `embedding-cache/` in `out`'s parent folder.
pub fn default_dir(out: &Path) -> PathBuf {
    match std::env::var_os(CACHE_DIR_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."))
            .join("embedding-cache"),
    }
}

/// What the image embeddings depend on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingKey {
    pub format: u32,
    /// FNV-1a 64 (hex) over the weight files' names, sizes and contents.
    pub weights: String,
    /// `chexzero` or `clip`.
    pub preprocess: String,
    pub image_size: usize,
    /// FNV-1a 64 (hex) over the data root and each image's record id, path and a sample of
    /// [`PIXEL_SAMPLE`] of its preprocessed pixels, in order.
    pub images: String,
    pub n_images: usize,
    /// `cpu` or `cuda` (the two give embeddings that differ in the last digits).
    pub device: String,
}

impl EmbeddingKey {
    /// The key of `idx`'s images in `data`, embedded by weights whose files hash to
    /// `weights_hash`.
    pub fn new(weights_hash: u64, data: &Prepared, idx: &[usize], device: &str) -> Self {
        let mut h = cxr_data::StableHasher::new();
        h.write(data.root.to_string_lossy().as_bytes());
        for &i in idx {
            let r = &data.table.records[i];
            h.write(b"\0");
            h.write(r.dicom_id.as_bytes());
            h.write(b"\0");
            h.write(r.path.to_string_lossy().as_bytes());
            if let Some(px) = data.cache.pixels(i) {
                let step = (px.len() / PIXEL_SAMPLE).max(1);
                for b in px.iter().step_by(step) {
                    h.write(std::slice::from_ref(b));
                }
            }
        }
        Self {
            format: FORMAT,
            weights: format!("{weights_hash:016x}"),
            preprocess: format!("{:?}", data.mode).to_lowercase(),
            image_size: data.image_size,
            images: format!("{:016x}", h.finish()),
            n_images: idx.len(),
            device: device.to_owned(),
        }
    }

    /// The entry's file stem: a hash of every key field.
    pub fn stem(&self) -> String {
        let text = serde_json::to_string(self).expect("a key serialises");
        format!("{:016x}", cxr_data::stable_hash(text))
    }
}

/// The key file of an entry: the key, the array shape and a hash of its bytes.
#[derive(Debug, Serialize, Deserialize)]
struct EntryMeta {
    key: EmbeddingKey,
    shape: [usize; 2],
    /// FNV-1a 64 (hex) of the little-endian f32 values.
    data_hash: String,
}

fn data_hash(emb: &Array2<f32>) -> String {
    let mut h = cxr_data::StableHasher::new();
    for v in emb.iter() {
        h.write(&v.to_le_bytes());
    }
    format!("{:016x}", h.finish())
}

/// An embedding cache folder.
#[derive(Debug, Clone)]
pub struct EmbeddingCache {
    dir: PathBuf,
}

/// Where the embeddings of an evaluation came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheUse {
    /// `--no-cache`: embedded, nothing read or written.
    Off,
    /// Read back from this entry (no image was embedded).
    Hit(PathBuf),
    /// Embedded and stored as this entry (`reason`: why there was no usable entry).
    Stored { entry: PathBuf, reason: String },
}

impl EmbeddingCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, key: &EmbeddingKey) -> (PathBuf, PathBuf) {
        let stem = key.stem();
        (
            self.dir.join(format!("{stem}.npy")),
            self.dir.join(format!("{stem}.json")),
        )
    }

    /// The cached embeddings of `key`, or why there are none (absent, or damaged: then the
    /// reason is logged as a warning and the caller recomputes).
    pub fn load(&self, key: &EmbeddingKey) -> std::result::Result<Array2<f32>, String> {
        let (npy, json) = self.paths(key);
        if !json.is_file() {
            return Err("no entry".into());
        }
        let checked = (|| -> std::result::Result<Array2<f32>, String> {
            let bytes = std::fs::read(&json).map_err(|e| format!("cannot read: {e}"))?;
            let meta: EntryMeta =
                serde_json::from_slice(&bytes).map_err(|e| format!("invalid key file: {e}"))?;
            if &meta.key != key {
                return Err(format!(
                    "key file describes other embeddings ({:?})",
                    meta.key
                ));
            }
            let (shape, values) = cxr_data::npy::read_f32(&npy).map_err(|e| e.to_string())?;
            if shape != meta.shape || shape[0] != key.n_images {
                return Err(format!(
                    "array shape {shape:?}, the key says {:?} for {} images",
                    meta.shape, key.n_images
                ));
            }
            let emb =
                Array2::from_shape_vec((shape[0], shape[1]), values).map_err(|e| e.to_string())?;
            if data_hash(&emb) != meta.data_hash {
                return Err("array contents do not match the key file's hash".into());
            }
            Ok(emb)
        })();
        checked.map_err(|why| {
            tracing::warn!(
                "embedding cache entry {} is damaged ({why}); recomputing it",
                json.display()
            );
            format!("damaged entry: {why}")
        })
    }

    /// Stores `emb` under `key`: the array, then the key file (both atomically), so a reader
    /// sees a complete entry or none.
    pub fn store(&self, key: &EmbeddingKey, emb: &Array2<f32>) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.dir).at(&self.dir)?;
        let (npy, json) = self.paths(key);
        let tmp = npy.with_extension(format!("npy.tmp-{}", std::process::id()));
        let shape = [emb.nrows(), emb.ncols()];
        let values: Vec<f32> = emb.iter().copied().collect();
        cxr_data::npy::write(&tmp, &shape, &values)?;
        std::fs::rename(&tmp, &npy).at(&npy)?;
        let meta = EntryMeta {
            key: key.clone(),
            shape,
            data_hash: data_hash(emb),
        };
        let text = serde_json::to_vec_pretty(&meta).map_err(|e| TrainError::File {
            path: json.clone(),
            message: e.to_string(),
        })?;
        cxr_data::write_atomic(&json, &text)?;
        Ok(json)
    }

    /// The embeddings of `key`: read back if a valid entry exists, else computed by `embed`
    /// and stored.
    pub fn get_or_embed(
        &self,
        key: &EmbeddingKey,
        embed: impl FnOnce() -> Result<Array2<f32>>,
    ) -> Result<(Array2<f32>, CacheUse)> {
        match self.load(key) {
            Ok(emb) => {
                let (_, json) = self.paths(key);
                tracing::info!(
                    "image embeddings read from the cache ({}): no image embedded",
                    json.display()
                );
                Ok((emb, CacheUse::Hit(json)))
            }
            Err(reason) => {
                let emb = embed()?;
                let entry = self.store(key, &emb)?;
                tracing::info!("image embeddings cached in {}", entry.display());
                Ok((emb, CacheUse::Stored { entry, reason }))
            }
        }
    }

    /// FNV-1a 64 over `files` (each one's name, size and content), remembered in
    /// `weights-hashes.json` by path, size and modification time so that a big file is hashed
    /// once.
    pub fn weights_hash(&self, files: &[PathBuf]) -> Result<u64> {
        let memo_path = self.dir.join(WEIGHT_HASHES);
        let mut memo: BTreeMap<String, String> = std::fs::read(&memo_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut changed = false;
        let mut all = cxr_data::StableHasher::new();
        for file in files {
            let meta = std::fs::metadata(file).at(file)?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
            let memo_key = format!("{}|{}|{mtime}", abs.display(), meta.len());
            let hash = match memo.get(&memo_key) {
                Some(h) => h.clone(),
                None => {
                    let h = format!("{:016x}", hash_file(file)?);
                    memo.insert(memo_key, h.clone());
                    changed = true;
                    h
                }
            };
            all.write(
                file.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
                    .as_bytes(),
            );
            all.write(&meta.len().to_le_bytes());
            all.write(hash.as_bytes());
        }
        if changed {
            // The memo is only an optimisation: failing to write it is not an error.
            let written = std::fs::create_dir_all(&self.dir)
                .map_err(|e| e.to_string())
                .and_then(|()| serde_json::to_vec_pretty(&memo).map_err(|e| e.to_string()))
                .and_then(|b| cxr_data::write_atomic(&memo_path, &b).map_err(|e| e.to_string()));
            if let Err(e) = written {
                tracing::warn!(
                    "cannot remember weight hashes in {}: {e}",
                    memo_path.display()
                );
            }
        }
        Ok(all.finish())
    }
}

/// FNV-1a 64 of a file's bytes, streamed.
fn hash_file(path: &Path) -> Result<u64> {
    let mut f = std::fs::File::open(path).at(path)?;
    let mut h = cxr_data::StableHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        h.write(&buf[..n]);
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(images: &str) -> EmbeddingKey {
        EmbeddingKey {
            format: FORMAT,
            weights: "00".into(),
            preprocess: "chexzero".into(),
            image_size: 32,
            images: images.into(),
            n_images: 3,
            device: "cpu".into(),
        }
    }

    #[test]
    fn round_trip_then_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::new(dir.path().join("c"));
        let k = key("aa");
        let emb = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f32 / 10.0);
        assert_eq!(cache.load(&k).unwrap_err(), "no entry");
        cache.store(&k, &emb).unwrap();
        assert_eq!(cache.load(&k).unwrap(), emb);
        // Another image list is another entry.
        assert!(cache.load(&key("bb")).is_err());
        // Flip one value: the array hash no longer matches.
        let (npy, json) = cache.paths(&k);
        let mut bytes = std::fs::read(&npy).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(&npy, &bytes).unwrap();
        let why = cache.load(&k).unwrap_err();
        assert!(why.contains("hash"), "{why}");
        // Truncated array and garbage key file are damaged entries too, and get_or_embed
        // recomputes and repairs them.
        std::fs::write(&npy, &bytes[..bytes.len() / 2]).unwrap();
        assert!(cache.load(&k).unwrap_err().starts_with("damaged"));
        std::fs::write(&json, b"{not json").unwrap();
        assert!(cache.load(&k).unwrap_err().contains("invalid key file"));
        let mut calls = 0;
        let (got, used) = cache
            .get_or_embed(&k, || {
                calls += 1;
                Ok(emb.clone())
            })
            .unwrap();
        assert_eq!((calls, got), (1, emb.clone()));
        assert!(matches!(used, CacheUse::Stored { .. }));
        let (_, used) = cache
            .get_or_embed(&k, || panic!("a valid entry must not be recomputed"))
            .unwrap();
        assert!(matches!(used, CacheUse::Hit(_)));
    }

    #[test]
    fn weights_hash_follows_content_not_path() {
        let dir = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::new(dir.path().join("c"));
        let a = dir.path().join("a.bin");
        let b_dir = dir.path().join("b");
        std::fs::create_dir_all(&b_dir).unwrap();
        let b = b_dir.join("a.bin");
        std::fs::write(&a, b"weights one").unwrap();
        std::fs::write(&b, b"weights one").unwrap();
        let ha = cache.weights_hash(std::slice::from_ref(&a)).unwrap();
        assert_eq!(ha, cache.weights_hash(std::slice::from_ref(&b)).unwrap());
        // Remembered: the memo file exists and a second call gives the same value.
        assert!(dir.path().join("c").join(WEIGHT_HASHES).is_file());
        assert_eq!(ha, cache.weights_hash(std::slice::from_ref(&a)).unwrap());
        std::fs::write(&b, b"weights two, longer").unwrap();
        assert_ne!(ha, cache.weights_hash(&[b]).unwrap());
    }

    #[test]
    fn default_dir_is_beside_the_output_unless_the_env_says() {
        if std::env::var_os(CACHE_DIR_ENV).is_none() {
            assert_eq!(
                default_dir(Path::new("results/eval1")),
                Path::new("results/embedding-cache")
            );
            assert_eq!(
                default_dir(Path::new("eval1")),
                Path::new("./embedding-cache")
            );
        }
    }
}
