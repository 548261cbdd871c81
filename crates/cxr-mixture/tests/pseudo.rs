//! Pseudo-label sources: shapes, clipping, warm starts, errors.

mod common;

use cxr_mixture::{
    ComponentRule, CovarianceType, FittedMixture, GaussianMixture, MixtureKind, NuPolicy,
    PseudoLabelConfig, PseudoLabelSource, PseudoLabeler, StudentMixture,
};
use ndarray::{s, Array2};

fn embeddings() -> Array2<f32> {
    let (x, _) = common::blobs(4, 40, 8, 11);
    x.mapv(|v| v as f32)
}

fn cfg(source: PseudoLabelSource, kind: MixtureKind) -> PseudoLabelConfig {
    PseudoLabelConfig {
        source,
        k: 4,
        kind,
        covariance: CovarianceType::Diag,
        ..Default::default()
    }
}

#[test]
fn per_batch_clips_k_to_the_batch() {
    let x = embeddings();
    let mut pl = PseudoLabeler::new(PseudoLabelConfig {
        k: 40,
        source: PseudoLabelSource::PerBatch,
        ..Default::default()
    })
    .unwrap();
    let batch = x.slice(s![0..32, ..]);
    let labels = pl.assign(batch).unwrap();
    assert_eq!(labels.len(), 32);
    assert!(labels.iter().all(|&l| l < 32));
    assert_eq!(pl.model().unwrap().n_components(), 32);
}

#[test]
fn memory_bank_is_fifo_and_warm_started() {
    let x = embeddings();
    let mut pl = PseudoLabeler::new(cfg(
        PseudoLabelSource::MemoryBank { capacity: 100 },
        MixtureKind::Gaussian,
    ))
    .unwrap();
    for step in 0..5 {
        let b = x.slice(s![step * 32..(step + 1) * 32, ..]);
        let labels = pl.assign(b).unwrap();
        assert_eq!(labels.len(), 32);
        assert_eq!(pl.bank_len(), ((step + 1) * 32).min(100));
    }
    assert_eq!(pl.model().unwrap().n_components(), 4);
}

#[test]
fn student_memory_bank_labels_separate_blobs() {
    let (x, truth) = common::blobs(4, 40, 8, 12);
    let x = x.mapv(|v| v as f32);
    let mut pl = PseudoLabeler::new(cfg(
        PseudoLabelSource::MemoryBank { capacity: 4096 },
        MixtureKind::StudentT {
            nu: NuPolicy::Fixed(6.0),
        },
    ))
    .unwrap();
    pl.assign(x.view()).unwrap();
    let labels = pl.assign(x.view()).unwrap();
    assert!(common::rand_index(&labels, &truth) > 0.99);
}

#[test]
fn epoch_source_uses_the_refit_until_the_next() {
    let x = embeddings();
    let mut pl = PseudoLabeler::new(cfg(PseudoLabelSource::Epoch, MixtureKind::Gaussian)).unwrap();
    let first = pl.assign(x.slice(s![0..32, ..])).unwrap();
    assert_eq!(first.len(), 32);
    pl.refit_epoch(x.view()).unwrap();
    let bank_before = pl.bank_len();
    let a = pl.assign(x.slice(s![0..32, ..])).unwrap();
    let b = pl.assign(x.slice(s![0..32, ..])).unwrap();
    assert_eq!(a, b, "no refit between epoch-level fits");
    assert_eq!(pl.bank_len(), bank_before);
}

#[test]
fn non_finite_and_wrong_width_are_errors() {
    let mut x = embeddings();
    let mut pl =
        PseudoLabeler::new(cfg(PseudoLabelSource::PerBatch, MixtureKind::Gaussian)).unwrap();
    pl.assign(x.slice(s![0..32, ..])).unwrap();
    let narrow = Array2::<f32>::zeros((4, 3));
    assert!(matches!(
        pl.assign(narrow.view()),
        Err(cxr_mixture::MixtureError::DimensionMismatch { .. })
    ));
    x[[3, 2]] = f32::NAN;
    assert!(matches!(
        pl.assign(x.slice(s![0..32, ..])),
        Err(cxr_mixture::MixtureError::NonFinite { row: 3, col: 2 })
    ));
}

#[test]
fn zero_capacity_is_rejected() {
    let e = PseudoLabeler::new(cfg(
        PseudoLabelSource::MemoryBank { capacity: 0 },
        MixtureKind::Gaussian,
    ))
    .unwrap_err();
    assert!(e.to_string().contains("capacity"), "{e}");
}

#[test]
fn assign_proba_updates_the_fit_as_assign_does_and_returns_its_posteriors() {
    let x = embeddings();
    let source = PseudoLabelSource::MemoryBank { capacity: 100 };
    let mut hard = PseudoLabeler::new(cfg(source, MixtureKind::Gaussian)).unwrap();
    let mut soft = PseudoLabeler::new(cfg(source, MixtureKind::Gaussian)).unwrap();
    for step in 0..3 {
        let b = x.slice(s![step * 32..(step + 1) * 32, ..]);
        let labels = hard.assign(b).unwrap();
        let proba = soft.assign_proba(b).unwrap();
        assert_eq!(soft.bank_len(), hard.bank_len());
        assert_eq!(
            proba,
            hard.predict_proba(b).unwrap(),
            "step {step}: same fit"
        );
        for (row, &l) in proba.rows().into_iter().zip(&labels) {
            assert!((row.sum() - 1.0).abs() < 1e-12);
            let best = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(
                row[l], best,
                "step {step}: hard label is the posterior argmax"
            );
        }
    }
}

#[test]
fn one_pass_student_t_scores_the_gaussian_fit_with_t_densities() {
    // Per batch, as the released code: a seeded GMM fit, then one Student-t pass with its
    // parameters; the labeler must give exactly that pass's posteriors.
    let x = embeddings();
    let batch = x.slice(s![0..64, ..]);
    let config = cfg(
        PseudoLabelSource::PerBatch,
        MixtureKind::StudentTOnePass { nu: 8.0 },
    );
    let mut pl = PseudoLabeler::new(config.clone()).unwrap();
    let proba = pl.assign_proba(batch).unwrap();

    let xf = batch.mapv(f64::from);
    let gmm = GaussianMixture::params(4)
        .covariance_type(config.covariance)
        .reg_covar(config.reg_covar)
        .max_iter(config.max_iter)
        .tol(config.tol)
        .n_init(config.n_init)
        .seed(config.seed)
        .fit(xf.view())
        .unwrap();
    let t = StudentMixture::from_gaussian(&gmm, 8.0).unwrap();
    assert_eq!(proba, t.predict_proba(xf.view()).unwrap());
    match pl.model().unwrap() {
        FittedMixture::StudentT(m) => {
            assert_eq!(m.n_iter(), 0, "no Student-t EM");
            assert_eq!(m.nu().to_vec(), vec![8.0; 4]);
            assert_eq!(m.means(), gmm.means());
        }
        other => panic!("expected a Student-t mixture, got {other:?}"),
    }

    // In a memory bank the next Gaussian fit warm-starts from the one-pass mixture's
    // parameters, and the state survives a checkpoint round trip.
    let mut bank = PseudoLabeler::new(cfg(
        PseudoLabelSource::MemoryBank { capacity: 96 },
        MixtureKind::StudentTOnePass { nu: 8.0 },
    ))
    .unwrap();
    for step in 0..4 {
        bank.assign(x.slice(s![step * 32..(step + 1) * 32, ..]))
            .unwrap();
    }
    let mut restored = PseudoLabeler::new(bank.config().clone()).unwrap();
    restored.restore(bank.state()).unwrap();
    let next = x.slice(s![128..160, ..]);
    assert_eq!(bank.assign(next).unwrap(), restored.assign(next).unwrap());

    let bad = PseudoLabeler::new(cfg(
        PseudoLabelSource::PerBatch,
        MixtureKind::StudentTOnePass { nu: 0.0 },
    ))
    .unwrap_err()
    .to_string();
    assert!(bad.contains("nu"), "{bad}");
}

#[test]
fn released_code_component_rule_follows_the_batch_size() {
    let rule = ComponentRule::ReleasedCode;
    let got: Vec<usize> = [2, 10, 32, 49, 50, 64, 200, 1000]
        .iter()
        .map(|&n| rule.components(40, n))
        .collect();
    assert_eq!(got, vec![1, 3, 5, 5, 12, 16, 40, 40]);
    assert_eq!(ComponentRule::Fixed.components(40, 32), 32);
    assert_eq!(ComponentRule::Fixed.components(4, 32), 4);

    let x = embeddings();
    let mut pl = PseudoLabeler::new(PseudoLabelConfig {
        k: 40,
        k_rule: ComponentRule::ReleasedCode,
        source: PseudoLabelSource::PerBatch,
        ..Default::default()
    })
    .unwrap();
    for (n, k) in [(32, 5), (10, 3), (64, 16)] {
        let labels = pl.assign(x.slice(s![0..n, ..])).unwrap();
        assert_eq!(labels.len(), n);
        assert_eq!(pl.model().unwrap().n_components(), k, "batch of {n}");
    }
}
