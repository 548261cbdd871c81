//! The figure functions write decodable PNGs of the expected size that are not blank.

use cxr_eval::{
    evaluate, plot_auc_by_frequency, plot_roc, plot_scatter, roc_curve, BootstrapConfig,
    ClassGroup, EvalOptions,
};
use ndarray::{array, Array2};

fn non_white_fraction(path: &std::path::Path) -> (u32, u32, f64) {
    let img = image::open(path).unwrap().to_rgb8();
    let non_white = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    (
        img.width(),
        img.height(),
        non_white as f64 / (img.width() * img.height()) as f64,
    )
}

fn data() -> (Array2<f32>, Array2<f32>, Vec<String>, Vec<ClassGroup>) {
    let n = 60;
    let scores = Array2::from_shape_fn((n, 3), |(i, j)| {
        ((i * 7 + j * 13) % 17) as f32 / 17.0 + (i % 2) as f32 * 0.3
    });
    let labels = Array2::from_shape_fn(
        (n, 3),
        |(i, j)| if j == 2 && i > 5 { 0.0 } else { (i % 2) as f32 },
    );
    let names = vec![
        "Edema".to_string(),
        "Hernia".to_string(),
        "Azygos Lobe".to_string(),
    ];
    (
        scores,
        labels,
        names,
        vec![ClassGroup::Base, ClassGroup::Rare, ClassGroup::Rare],
    )
}

#[test]
fn roc_and_long_tail_figures_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let (scores, labels, names, groups) = data();
    let opts = EvalOptions {
        bootstrap: Some(BootstrapConfig {
            resamples: 50,
            seed: 0,
            level: 0.95,
        }),
    };
    let mut r = evaluate(scores.view(), labels.view(), &names, &groups, &opts).unwrap();
    r.set_train_counts(&[37256, 3986, 199]).unwrap();
    let roc = dir.path().join("sub/roc.png");
    plot_roc(&roc, scores.view(), labels.view(), &r, "ROC").unwrap();
    let (w, h, ink) = non_white_fraction(&roc);
    assert_eq!((w, h), (2 * 760, 810));
    assert!(ink > 0.01, "ROC figure is blank ({ink})");
    let bars = dir.path().join("auc.png");
    plot_auc_by_frequency(&bars, &r, "AUC by frequency").unwrap();
    let (_, _, ink) = non_white_fraction(&bars);
    assert!(ink > 0.01, "bar figure is blank ({ink})");
}

#[test]
fn scatter_is_written_and_checks_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let pts = array![[0.0f32, 0.0], [1.0, 1.0], [2.0, 0.5]];
    let names = vec!["a".to_string(), "b".to_string()];
    let path = dir.path().join("s.png");
    plot_scatter(
        &path,
        pts.view(),
        &[Some(0), Some(1), None],
        &names,
        "scatter",
    )
    .unwrap();
    assert!(non_white_fraction(&path).2 > 0.005);
    assert!(plot_scatter(&path, pts.view(), &[Some(0)], &names, "x").is_err());
    assert!(plot_scatter(&path, pts.view(), &[Some(0), Some(2), None], &names, "x").is_err());
}

#[test]
fn roc_curve_matches_sklearn_points() {
    // sklearn roc_curve([0,0,1,1],[0.1,0.4,0.35,0.8], drop_intermediate=False):
    // fpr [0, 0, .5, .5, 1], tpr [0, .5, .5, 1, 1]
    let (fpr, tpr) = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
    assert_eq!(fpr, [0.0, 0.0, 0.5, 0.5, 1.0]);
    assert_eq!(tpr, [0.0, 0.5, 0.5, 1.0, 1.0]);
    assert!(roc_curve(&[0.1], &[true]).is_none());
}
