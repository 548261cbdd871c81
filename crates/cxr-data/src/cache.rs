//! A preprocessed u8 image cache: decode + preprocess every image once, in parallel, into
//! shards on disk; training and evaluation then read pixels with no JPEG decoding.
//!
//! Finished shards are memory-mapped, not read into memory: all of MIMIC-CXR-JPG at 224 px is
//! about 19 GB, which the page cache can hold or evict as memory allows. A shard file is only
//! ever replaced by a rename (never written in place), so a mapping stays valid.
//!
//! Layout of `cache_dir`: `manifest.json` (preprocessing, image count, shard size and a hash of
//! the record paths) and, per shard of [`SHARD_SIZE`] images, `shard_NNNNN.bin` (raw
//! `size * size` pixels per image, zeros for a skipped one) plus `shard_NNNNN.json` (per image
//! `null` or the reason it was skipped). The `.json` is written last (via a rename), so it marks
//! a finished shard: an interrupted build resumes at the first unfinished shard. A cache built
//! for other records or another preprocessing is rebuilt.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::fsio::{write_atomic, StableHasher};
use crate::image::{load_gray, normalise_into, preprocess_u8, Preprocess};
use crate::table::Record;
use crate::{DataError, Result};

/// Images per shard (the unit of resumption).
pub const SHARD_SIZE: usize = 512;
const CACHE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Manifest {
    version: u32,
    preprocess: Preprocess,
    images: usize,
    shard_size: usize,
    paths_hash: String,
}

/// Options beyond [`ImageCache::build`]'s defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheOptions {
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Fail on the first missing or corrupt image instead of skipping it.
    pub strict: bool,
    /// Images per shard; 0 means [`SHARD_SIZE`].
    pub shard_size: usize,
}

/// Preprocessed pixels of a list of records, in record order.
#[derive(Debug)]
pub struct ImageCache {
    preprocess: Preprocess,
    shard_size: usize,
    shards: Vec<ShardBytes>,
    ok: Vec<bool>,
    skipped: Vec<(PathBuf, String)>,
}

/// One shard's pixels: memory-mapped, or read into memory where mapping fails.
#[derive(Debug)]
enum ShardBytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl ShardBytes {
    fn bytes(&self) -> &[u8] {
        match self {
            ShardBytes::Mapped(m) => m,
            ShardBytes::Owned(v) => v,
        }
    }

    /// Map the finished shard `path`; read it instead (with a warning) where the file system
    /// cannot map it.
    fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        // SAFETY: shard files are written to a temporary name and renamed into place, never
        // modified afterwards (a rebuild renames a new file over the name, leaving this inode
        // intact), so the mapped bytes do not change while mapped.
        #[allow(unsafe_code)]
        let mapped = unsafe { memmap2::Mmap::map(&file) };
        match mapped {
            Ok(m) => Ok(ShardBytes::Mapped(m)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot memory-map a cache shard; reading it into memory");
                Ok(ShardBytes::Owned(
                    std::fs::read(path).map_err(|e| DataError::io(path, e))?,
                ))
            }
        }
    }
}

/// FNV-1a over the record paths and the preprocessing: identifies what a cache holds.
fn paths_hash(records: &[Record], p: &Preprocess) -> String {
    let mut h = StableHasher::new();
    h.write(format!("{p:?}").as_bytes());
    for r in records {
        h.write(r.path.to_string_lossy().as_bytes());
        h.write(&[0]);
    }
    format!("{:016x}", h.finish())
}

impl ImageCache {
    /// Build (or resume, or reuse) the cache for `records` under `cache_dir`; image paths are
    /// relative to `root`. Missing or corrupt images are skipped and listed in [`Self::skipped`].
    pub fn build(
        root: &Path,
        records: &[Record],
        p: &Preprocess,
        cache_dir: &Path,
        progress: bool,
    ) -> Result<Self> {
        Self::build_with(
            root,
            records,
            p,
            cache_dir,
            CacheOptions {
                progress,
                ..Default::default()
            },
        )
    }

    /// [`Self::build`] with all options.
    pub fn build_with(
        root: &Path,
        records: &[Record],
        p: &Preprocess,
        cache_dir: &Path,
        opts: CacheOptions,
    ) -> Result<Self> {
        if p.size == 0 {
            return Err(DataError::InvalidParam(
                "preprocess size must be positive".into(),
            ));
        }
        std::fs::create_dir_all(cache_dir).map_err(|e| DataError::io(cache_dir, e))?;
        let shard_size = if opts.shard_size == 0 {
            SHARD_SIZE
        } else {
            opts.shard_size
        };
        let manifest = Manifest {
            version: CACHE_VERSION,
            preprocess: *p,
            images: records.len(),
            shard_size,
            paths_hash: paths_hash(records, p),
        };
        let manifest_path = cache_dir.join("manifest.json");
        let existing: Option<Manifest> = std::fs::read(&manifest_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if existing.as_ref() != Some(&manifest) {
            // Stale or foreign: remove our shard files only, then start afresh.
            if let Ok(rd) = std::fs::read_dir(cache_dir) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if name.starts_with("shard_") {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
            let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
            write_atomic(&manifest_path, &json)?;
        }

        let px = (p.size * p.size) as usize;
        let n_shards = records.len().div_ceil(shard_size);
        let bar = if opts.progress {
            let b = indicatif::ProgressBar::new(records.len() as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "caching images {bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}]",
                )
                .expect("valid template"),
            );
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        let mut shards = Vec::with_capacity(n_shards);
        let mut ok = Vec::with_capacity(records.len());
        let mut skipped = Vec::new();
        for s in 0..n_shards {
            let lo = s * shard_size;
            let hi = (lo + shard_size).min(records.len());
            let bin = cache_dir.join(format!("shard_{s:05}.bin"));
            let meta = cache_dir.join(format!("shard_{s:05}.json"));
            let bin_len = std::fs::metadata(&bin).map(|m| m.len()).ok();
            let done = match std::fs::read(&meta) {
                Ok(m) if bin_len == Some(((hi - lo) * px) as u64) => {
                    serde_json::from_slice::<Vec<Option<String>>>(&m)
                        .ok()
                        .filter(|v| v.len() == hi - lo)
                }
                _ => None,
            };
            let status = match done {
                Some(status) => status,
                None => {
                    let results: Vec<std::result::Result<Vec<u8>, String>> = records[lo..hi]
                        .par_iter()
                        .map(|r| {
                            let out = load_gray(&root.join(&r.path))
                                .map(|img| preprocess_u8(&img, p))
                                .map_err(|e| e.to_string());
                            bar.inc(1);
                            out
                        })
                        .collect();
                    let mut bytes = Vec::with_capacity((hi - lo) * px);
                    let mut status = Vec::with_capacity(hi - lo);
                    for (r, res) in records[lo..hi].iter().zip(results) {
                        match res {
                            Ok(v) => {
                                bytes.extend_from_slice(&v);
                                status.push(None);
                            }
                            Err(msg) => {
                                if opts.strict {
                                    return Err(DataError::Image {
                                        path: root.join(&r.path),
                                        message: msg,
                                    });
                                }
                                bytes.resize(bytes.len() + px, 0);
                                status.push(Some(msg));
                            }
                        }
                    }
                    write_atomic(&bin, &bytes)?;
                    write_atomic(
                        &meta,
                        &serde_json::to_vec(&status).expect("status serialises"),
                    )?;
                    status
                }
            };
            shards.push(ShardBytes::open(&bin)?);
            if done_len(&bar) < hi as u64 {
                bar.set_position(hi as u64);
            }
            for (r, st) in records[lo..hi].iter().zip(&status) {
                ok.push(st.is_none());
                if let Some(msg) = st {
                    skipped.push((r.path.clone(), msg.clone()));
                }
            }
        }
        bar.finish_and_clear();
        if !skipped.is_empty() {
            tracing::warn!(
                skipped = skipped.len(),
                "images could not be read and were skipped"
            );
        }
        Ok(Self {
            preprocess: *p,
            shard_size,
            shards,
            ok,
            skipped,
        })
    }

    /// Number of records (including skipped ones).
    pub fn len(&self) -> usize {
        self.ok.len()
    }
    /// True when the cache holds no records.
    pub fn is_empty(&self) -> bool {
        self.ok.is_empty()
    }
    /// The preprocessing the cache was built with.
    pub fn preprocess(&self) -> Preprocess {
        self.preprocess
    }
    /// Side length of every cached image.
    pub fn size(&self) -> u32 {
        self.preprocess.size
    }
    /// `size * size` pixels of record `i`; `None` if the image was skipped or `i` is out of range.
    pub fn pixels(&self, i: usize) -> Option<&[u8]> {
        if !*self.ok.get(i)? {
            return None;
        }
        let px = (self.preprocess.size * self.preprocess.size) as usize;
        let (s, j) = (i / self.shard_size, i % self.shard_size);
        Some(&self.shards[s].bytes()[j * px..(j + 1) * px])
    }
    /// Whether record `i` has pixels.
    pub fn is_ok(&self, i: usize) -> bool {
        self.ok.get(i).copied().unwrap_or(false)
    }
    /// Indices of the records that have pixels.
    pub fn valid_indices(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.ok[i]).collect()
    }
    /// A normalised batch, B x 3 x S x S flattened, for the records at `idx`. Skipped or
    /// out-of-range records contribute a black image (filter with [`Self::valid_indices`]).
    pub fn batch_f32(&self, idx: &[usize]) -> Vec<f32> {
        let px = (self.preprocess.size * self.preprocess.size) as usize;
        let black = vec![0u8; px];
        let mut out = Vec::with_capacity(idx.len() * 3 * px);
        for &i in idx {
            normalise_into(
                self.pixels(i).unwrap_or(&black),
                self.preprocess.mode,
                &mut out,
            );
        }
        out
    }
    /// Images that could not be read: (path relative to the root, reason).
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }
    /// Write the skipped list as `path<TAB>reason` lines (e.g. into the run directory).
    pub fn write_skipped(&self, path: &Path) -> Result<()> {
        let text: String = self
            .skipped
            .iter()
            .map(|(p, why)| format!("{}\t{}\n", p.display(), why.replace(['\n', '\t'], " ")))
            .collect();
        write_atomic(path, text.as_bytes())
    }
}

fn done_len(bar: &indicatif::ProgressBar) -> u64 {
    bar.position()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::LabelState;

    fn rec(path: &str) -> Record {
        Record {
            dicom_id: path.into(),
            subject_id: 1,
            study_id: 1,
            view_position: Some("PA".into()),
            path: PathBuf::from(path),
            labels: vec![LabelState::Negative],
        }
    }

    #[test]
    fn paths_hash_is_pinned() {
        // Cache folders built by earlier versions stay valid only while this value holds.
        let p = Preprocess::default();
        let h = paths_hash(&[rec("a.png"), rec("b/c.jpg")], &p);
        assert_eq!(format!("{p:?}"), "Preprocess { mode: CheXzero, size: 224 }");
        assert_eq!(h, "b39a364e58bcc1c6");
    }

    #[test]
    fn builds_skips_bad_images_and_reuses_shards() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        image::GrayImage::from_pixel(40, 30, image::Luma([200]))
            .save(root.join("a.png"))
            .unwrap();
        std::fs::write(root.join("bad.jpg"), b"garbage").unwrap();
        let records = vec![rec("a.png"), rec("bad.jpg"), rec("missing.jpg")];
        let p = Preprocess::clip(16);
        let cache_dir = dir.path().join("cache");
        let c = ImageCache::build(&root, &records, &p, &cache_dir, false).unwrap();
        assert_eq!(c.len(), 3);
        assert!(c.pixels(0).unwrap().iter().all(|&v| v == 200));
        assert!(c.pixels(1).is_none() && c.pixels(2).is_none() && c.pixels(3).is_none());
        assert_eq!(c.skipped().len(), 2);
        assert!(
            c.skipped()[1].1.contains("missing.jpg"),
            "{:?}",
            c.skipped()
        );
        assert_eq!(c.batch_f32(&[0, 1]).len(), 2 * 3 * 16 * 16);
        assert_eq!(c.valid_indices(), vec![0]);

        // Resume: a finished shard is read back, not recomputed (we change the image on disk).
        image::GrayImage::from_pixel(40, 30, image::Luma([10]))
            .save(root.join("a.png"))
            .unwrap();
        let again = ImageCache::build(&root, &records, &p, &cache_dir, false).unwrap();
        assert_eq!(again.pixels(0), c.pixels(0));
        // A different preprocessing invalidates the cache.
        let other =
            ImageCache::build(&root, &records, &Preprocess::clip(8), &cache_dir, false).unwrap();
        assert!(other.pixels(0).unwrap().iter().all(|&v| v == 10));
        // The rebuild replaced the shard files by renames: caches already open still map the
        // old bytes.
        assert!(c.pixels(0).unwrap().iter().all(|&v| v == 200));

        let e = ImageCache::build_with(
            &root,
            &records,
            &p,
            &dir.path().join("c2"),
            CacheOptions {
                strict: true,
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bad.jpg"), "{e}");
        let list = dir.path().join("skipped.tsv");
        c.write_skipped(&list).unwrap();
        assert_eq!(std::fs::read_to_string(list).unwrap().lines().count(), 2);
    }

    #[test]
    fn pixels_are_found_across_shards() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let records: Vec<Record> = (0..5u8)
            .map(|i| {
                let name = format!("{i}.png");
                image::GrayImage::from_pixel(8, 8, image::Luma([i * 40]))
                    .save(root.join(&name))
                    .unwrap();
                rec(&name)
            })
            .collect();
        let opts = CacheOptions {
            shard_size: 2,
            ..Default::default()
        };
        let p = Preprocess::clip(4);
        let c = ImageCache::build_with(&root, &records, &p, &dir.path().join("c"), opts).unwrap();
        for i in 0..5u8 {
            let px = c.pixels(i as usize).unwrap();
            assert!(px.iter().all(|&v| v == i * 40), "image {i}: {px:?}");
        }
        assert!(c.pixels(5).is_none());
    }

    #[test]
    fn an_interrupted_build_resumes_at_the_first_unfinished_shard() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let names: Vec<String> = (0..5).map(|i| format!("{i}.png")).collect();
        for n in &names {
            image::GrayImage::from_pixel(8, 8, image::Luma([100]))
                .save(root.join(n))
                .unwrap();
        }
        let records: Vec<Record> = names.iter().map(|n| rec(n)).collect();
        let p = Preprocess::clip(4);
        let cache_dir = dir.path().join("cache");
        let opts = CacheOptions {
            shard_size: 2,
            ..Default::default()
        };
        ImageCache::build_with(&root, &records, &p, &cache_dir, opts).unwrap();
        assert!(cache_dir.join("shard_00002.json").is_file());
        // Simulate a crash while shard 1 was being written: its marker never appeared.
        std::fs::remove_file(cache_dir.join("shard_00001.json")).unwrap();
        for n in &names {
            image::GrayImage::from_pixel(8, 8, image::Luma([50]))
                .save(root.join(n))
                .unwrap();
        }
        let c = ImageCache::build_with(&root, &records, &p, &cache_dir, opts).unwrap();
        let first: Vec<u8> = (0..5).map(|i| c.pixels(i).unwrap()[0]).collect();
        // shards 0 and 2 were finished and are reused; shard 1 (images 2, 3) is rebuilt
        assert_eq!(first, vec![100, 100, 50, 50, 100]);
    }
}
