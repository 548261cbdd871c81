//! Fast re-scoring (`cargo xtask eval --weights`): the image-embedding cache (a second
//! scoring with other prompts embeds no image, a damaged entry is recomputed, other weights
//! miss) and `--save-embeddings` (the saved embeddings reproduce `scores.csv`).

use std::path::{Path, PathBuf};

use cxr_cml::data::Dataset;
use cxr_cml::train::config::{Preprocessing, Views};
use cxr_cml::train::embed_cache::CacheUse;
use cxr_cml::train::run_eval::{
    evaluate_weights_with, EmbeddingOptions, WeightsEval, IMAGE_IDS_FILE, PROMPTS_FILE,
    PROMPT_EMBEDDINGS_FILE,
};
use cxr_cml::train::TrainConfig;
use ndarray::Array2;

use crate::common;

/// A tiny Hugging Face model folder (random weights from `seed`) and the synthetic data root.
fn tiny_weights(tmp: &Path, seed: u64) -> anyhow::Result<(PathBuf, PathBuf)> {
    let mut cfg: TrainConfig = common::tiny_config(tmp, 12);
    cfg.seed = seed;
    let root = cxr_cml::train::prepare::ensure_synthetic(&cfg.data)?;
    let (varmap, model) = cxr_cml::train::model::build_model(&cfg, &candle_core::Device::Cpu)?;
    let hf = tmp.join(format!("hf-{seed}"));
    cxr_cml::clip::save_pretrained(&varmap, model.config(), &hf)?;
    Ok((hf, root))
}

fn opts(weights: &Path, root: &Path, out: PathBuf) -> WeightsEval {
    WeightsEval {
        weights: weights.display().to_string(),
        dataset: Dataset::CxrLt,
        root: Some(root.to_path_buf()),
        labels: None,
        preprocess: Preprocessing::CheXzero,
        views: Views::All,
        prompts: None,
        out,
        figures: false,
        device: "cpu".into(),
        bootstrap: 0,
    }
}

fn scores(out: &Path) -> anyhow::Result<(Vec<String>, Vec<String>, Array2<f32>)> {
    let text = std::fs::read_to_string(out.join("scores.csv"))?;
    let header = cxr_cml::eval::parse_csv_header(&text)?;
    let (names, m) = cxr_cml::eval::parse_matrix_csv_columns(&text, Some(&header[1..]))?;
    // Synthetic ids hold no comma or quote.
    let ids = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or_default().to_string())
        .collect();
    Ok((ids, names, m))
}

fn npy(path: &Path) -> anyhow::Result<Array2<f32>> {
    let (shape, values) = cxr_cml::data::npy::read_f32(path)?;
    anyhow::ensure!(shape.len() == 2, "{}: shape {shape:?}", path.display());
    Ok(Array2::from_shape_vec((shape[0], shape[1]), values)?)
}

fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Prompts other than the default: the demo's wording (Normal scored from its positive
/// prompts alone) with an alias.
fn other_prompts() -> cxr_cml::text::PromptSet {
    cxr_cml::text::PromptSet::present_absent().with_alias("Pleural Effusion", "effusion")
}

#[test]
fn rescoring_with_other_prompts_reads_the_cached_image_embeddings() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (hf, root) = tiny_weights(tmp.path(), 1)?;
    let cache_dir = tmp.path().join("embedding-cache");
    let cached = EmbeddingOptions {
        cache: Some(cache_dir.clone()),
        save: false,
    };

    // First scoring: embedded and stored.
    let (_, first) = evaluate_weights_with(&opts(&hf, &root, tmp.path().join("a")), &cached)?;
    let CacheUse::Stored { entry, reason } = first else {
        panic!("first scoring should embed and store, got {first:?}");
    };
    assert_eq!(reason, "no entry");
    assert!(entry.is_file() && entry.with_extension("npy").is_file());

    // Second scoring, other prompts, another output folder: no image embedded.
    let mut again = opts(&hf, &root, tmp.path().join("b"));
    again.prompts = Some(other_prompts());
    let (_, second) = evaluate_weights_with(&again, &cached)?;
    assert_eq!(second, CacheUse::Hit(entry.clone()));
    let emb_a = npy(&tmp.path().join("a/image_embeddings.npy"))?;
    assert_eq!(emb_a, npy(&tmp.path().join("b/image_embeddings.npy"))?);

    // The cached scores equal those of a scoring without cache.
    let mut fresh = opts(&hf, &root, tmp.path().join("c"));
    fresh.prompts = Some(other_prompts());
    let (_, off) = evaluate_weights_with(&fresh, &EmbeddingOptions::default())?;
    assert_eq!(off, CacheUse::Off);
    let (ids_b, names_b, s_b) = scores(&tmp.path().join("b"))?;
    let (ids_c, names_c, s_c) = scores(&tmp.path().join("c"))?;
    assert_eq!((ids_b, names_b), (ids_c, names_c));
    assert!(max_abs_diff(&s_b, &s_c) < 1e-6);

    // A damaged entry is not trusted: recomputed, rewritten, same result.
    let npy_path = entry.with_extension("npy");
    let mut bytes = std::fs::read(&npy_path)?;
    let n = bytes.len();
    bytes[n - 3] ^= 0x55;
    std::fs::write(&npy_path, &bytes)?;
    let (_, repaired) = evaluate_weights_with(&opts(&hf, &root, tmp.path().join("d")), &cached)?;
    let CacheUse::Stored { reason, .. } = repaired else {
        panic!("a damaged entry must be recomputed, got {repaired:?}");
    };
    assert!(reason.starts_with("damaged entry"), "{reason}");
    assert_eq!(emb_a, npy(&tmp.path().join("d/image_embeddings.npy"))?);
    let (_, hit) = evaluate_weights_with(&opts(&hf, &root, tmp.path().join("e")), &cached)?;
    assert!(matches!(hit, CacheUse::Hit(_)), "{hit:?}");

    // Other weights (same architecture, same path after a rewrite) are another entry.
    let (hf2, _) = tiny_weights(tmp.path(), 2)?;
    std::fs::remove_dir_all(&hf)?;
    std::fs::rename(&hf2, &hf)?;
    let (_, other) = evaluate_weights_with(&opts(&hf, &root, tmp.path().join("f")), &cached)?;
    assert!(matches!(other, CacheUse::Stored { .. }), "{other:?}");
    Ok(())
}

#[test]
fn saved_embeddings_reproduce_scores_csv() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (hf, root) = tiny_weights(tmp.path(), 3)?;
    let out = tmp.path().join("out");
    let mut o = opts(&hf, &root, out.clone());
    o.prompts = Some(other_prompts());
    let save = EmbeddingOptions {
        cache: None,
        save: true,
    };
    evaluate_weights_with(&o, &save)?;
    let (ids, classes, want) = scores(&out)?;

    let img = npy(&out.join("image_embeddings.npy"))?;
    let image_ids: Vec<String> = std::fs::read_to_string(out.join(IMAGE_IDS_FILE))?
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(image_ids, ids, "image_ids.txt follows scores.csv's rows");
    for row in img.rows() {
        let norm = row.dot(&row).sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "image rows are L2-normalised: {norm}"
        );
    }
    let prompt_emb = npy(&out.join(PROMPT_EMBEDDINGS_FILE))?;
    let tsv = std::fs::read_to_string(out.join(PROMPTS_FILE))?;
    let mut lines = tsv.lines();
    assert_eq!(lines.next(), Some("class\tpolarity\ttext"));
    let prompts: Vec<(String, bool, String)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "{l}");
            assert!(f[1] == "positive" || f[1] == "negative", "{l}");
            (f[0].to_string(), f[1] == "positive", f[2].to_string())
        })
        .collect();
    assert_eq!(prompts.len(), prompt_emb.nrows());
    assert!(prompts.contains(&(
        "Pleural Effusion".into(),
        true,
        "effusion is present".into()
    )));
    // Normal has no negative prompt: it is scored from its positive prompts alone, which
    // include a report's wording for a normal study.
    assert!(prompts
        .iter()
        .any(|(c, pos, t)| c == "Normal" && *pos && t == cxr_cml::text::NORMAL_REPORT_TEXT));
    assert!(!prompts.iter().any(|(c, pos, _)| c == "Normal" && !pos));

    // The numpy recipe (scripts/examples/rescore_from_embeddings.py), written out here.
    let normalise = |v: ndarray::Array1<f32>| {
        let n = v.dot(&v).sqrt().max(1e-12);
        v / n
    };
    let side = |class: &str, positive: bool| -> Option<ndarray::Array1<f32>> {
        let rows: Vec<usize> = (0..prompts.len())
            .filter(|&i| prompts[i].0 == class && prompts[i].1 == positive)
            .collect();
        (!rows.is_empty()).then(|| {
            normalise(
                prompt_emb
                    .select(ndarray::Axis(0), &rows)
                    .mean_axis(ndarray::Axis(0))
                    .unwrap(),
            )
        })
    };
    let pos: Vec<_> = classes.iter().map(|c| side(c, true).unwrap()).collect();
    let negs: Vec<_> = classes.iter().map(|c| side(c, false)).collect();
    let mut got = Array2::<f32>::zeros(want.dim());
    for j in 0..classes.len() {
        // A class without negative rows is scored from its positive prompts alone.
        let neg = negs[j]
            .clone()
            .unwrap_or_else(|| ndarray::Array1::<f32>::zeros(img.ncols()));
        for i in 0..img.nrows() {
            let d = img.row(i).dot(&neg) - img.row(i).dot(&pos[j]);
            got[[i, j]] = 1.0 / (1.0 + d.exp());
        }
    }
    let diff = max_abs_diff(&got, &want);
    assert!(
        diff < 1e-5,
        "saved embeddings give scores {diff} away from scores.csv"
    );
    Ok(())
}
