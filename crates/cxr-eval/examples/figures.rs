//! Renders the evaluation figures on synthetic long-tailed data:
//! `cargo run -p cxr-eval --example figures -- OUT_DIR [N_POINTS]`.
//! Writes roc.png, auc_by_frequency.png, tsne_by_class.png and tsne_by_cluster.png.

use std::path::PathBuf;

use cxr_eval::{
    evaluate, plot_auc_by_frequency, plot_roc, plot_scatter, rarest_positive_class, tsne,
    BootstrapConfig, ClassGroup, EvalOptions, TsneConfig,
};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "figures".into()));
    let n_points: usize = args.next().map_or(Ok(600), |s| s.parse())?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);

    // 12 classes with a long tail of training counts; embeddings near a class centre.
    let train_counts = [
        86079, 77482, 65376, 37256, 15371, 7531, 3409, 1169, 904, 646, 199, 129,
    ];
    let names: Vec<String> = [
        "Support Devices",
        "Lung Opacity",
        "Atelectasis",
        "Edema",
        "Consolidation",
        "Nodule",
        "Adenopathy",
        "Fibrosis",
        "Pulmonary Hypertension",
        "Hydropneumothorax",
        "Azygos Lobe",
        "Lobar Atelectasis",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let groups: Vec<ClassGroup> = train_counts
        .iter()
        .map(|&c| ClassGroup::from_train_count(c))
        .collect();
    let (n, c, dim) = (n_points, names.len(), 16);
    let mut labels = Array2::<f32>::zeros((n, c));
    let mut scores = Array2::<f32>::zeros((n, c));
    let mut emb = Array2::<f32>::zeros((n, dim));
    for i in 0..n {
        for j in 0..c {
            let prev = 0.02 + 0.3 * (train_counts[j] as f64 / 86079.0);
            let y = rng.gen_bool(prev);
            labels[[i, j]] = f32::from(u8::from(y));
            let signal = 0.3 + 1.5 * (j as f64 / c as f64);
            scores[[i, j]] = (rng.gen_range(-1.0..1.0)
                + rng.gen_range(-1.0..1.0)
                + if y { signal } else { 0.0 }) as f32;
            if y {
                emb[[i, j % dim]] += 3.0;
            }
        }
        for k in 0..dim {
            emb[[i, k]] += rng.gen_range(-1.0f32..1.0);
        }
    }
    let opts = EvalOptions {
        bootstrap: Some(BootstrapConfig::new(0)),
    };
    let mut results = evaluate(scores.view(), labels.view(), &names, &groups, &opts)?;
    results.set_train_counts(&train_counts)?;
    plot_roc(
        &out.join("roc.png"),
        scores.view(),
        labels.view(),
        &results,
        "Zero-shot ROC (synthetic demo)",
    )?;
    plot_auc_by_frequency(
        &out.join("auc_by_frequency.png"),
        &results,
        "Per-class AUC by training frequency (synthetic demo)",
    )?;
    let y = tsne(emb.view(), &TsneConfig::default())?;
    let by_class = rarest_positive_class(labels.view(), &train_counts)?;
    plot_scatter(
        &out.join("tsne_by_class.png"),
        y.view(),
        &by_class,
        &names,
        "t-SNE of image embeddings, rarest positive class",
    )?;
    // Stand-in for mixture assignments: the strongest of the first five embedding axes.
    let clusters: Vec<Option<usize>> = (0..n)
        .map(|i| (0..5).max_by(|&a, &b| emb[[i, a]].total_cmp(&emb[[i, b]])))
        .collect();
    let cluster_names: Vec<String> = (0..5).map(|k| format!("cluster {k}")).collect();
    plot_scatter(
        &out.join("tsne_by_cluster.png"),
        y.view(),
        &clusters,
        &cluster_names,
        "t-SNE coloured by cluster (stand-in)",
    )?;
    println!("wrote figures to {}", out.display());
    Ok(())
}
