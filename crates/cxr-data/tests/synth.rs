//! The synthetic dataset end to end: formats, determinism, readability by our own readers.

use std::collections::BTreeMap;
use std::path::Path;

use cxr_data::cache::ImageCache;
use cxr_data::classes::cxr_lt_class_names;
use cxr_data::image::Preprocess;
use cxr_data::synth::{generate, SynthConfig};
use cxr_data::{read_cxr_lt, read_report_impression, UncertainPolicy, ViewFilter};

fn all_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn same_seed_same_bytes_and_readable_by_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        patients: 25,
        seed: 3,
        image_size: 64,
        ..Default::default()
    };
    let a = generate(&dir.path().join("a"), &cfg).unwrap();
    let b = generate(&dir.path().join("b"), &cfg).unwrap();
    assert_eq!(a.images, b.images);
    let fa = all_files(&dir.path().join("a"));
    let fb = all_files(&dir.path().join("b"));
    assert_eq!(fa.len(), fb.len());
    assert!(fa == fb, "same seed must give identical files");
    let c = generate(
        &dir.path().join("c"),
        &SynthConfig {
            seed: 4,
            ..cfg.clone()
        },
    )
    .unwrap();
    let fc = all_files(&dir.path().join("c"));
    assert!(fa != fc);
    assert!(c.images > 0);

    // The label CSV: leading columns then the 40 classes in official order.
    let header = std::fs::read_to_string(&a.labels_csv).unwrap();
    let header = header.lines().next().unwrap();
    let cols: Vec<&str> = header.split(',').collect();
    assert_eq!(
        &cols[..6],
        &[
            "dicom_id",
            "subject_id",
            "study_id",
            "ViewPosition",
            "ViewCodeSequence_CodeMeaning",
            "fpath"
        ]
    );
    assert_eq!(
        cols[6..].iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        cxr_lt_class_names()
    );
    let meta = std::fs::read_to_string(&a.metadata_csv).unwrap();
    assert!(meta.starts_with("dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,StudyDate,StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,PatientOrientationCodeSequence_CodeMeaning"));
    assert!(meta.contains(",LATERAL,") || meta.contains(",LL,"));
    let split = std::fs::read_to_string(&a.split_csv).unwrap();
    assert_eq!(split.lines().count(), a.images + 1);

    // Our reader, the frontal filter and the image cache accept it.
    let root = dir.path().join("a");
    let mut t = read_cxr_lt(&a.labels_csv).unwrap();
    assert_eq!(t.len(), a.images);
    // The fast parser and the general polars reader agree on the generated file.
    assert_eq!(t, cxr_data::read_cxr_lt_with_polars(&a.labels_csv).unwrap());
    assert_eq!(t.classes, cxr_lt_class_names());
    let removed = t.filter_views(&ViewFilter::frontal());
    assert_eq!(t.len(), a.frontal_images);
    assert!(removed > 0);
    let y = t.multi_hot(UncertainPolicy::default());
    assert_eq!(y.dim(), (a.frontal_images, 40));
    let per_class: Vec<usize> = (0..40)
        .map(|j| y.column(j).iter().filter(|&&v| v == 1.0).count())
        .collect();
    assert_eq!(per_class, a.frontal_class_counts);
    for r in &t.records {
        assert!(root.join(&r.path).is_file(), "{}", r.path.display());
    }
    let cache = ImageCache::build(
        &root,
        &t.records,
        &Preprocess::chexzero(64),
        &dir.path().join("cache"),
        false,
    )
    .unwrap();
    assert_eq!(cache.len(), t.len());
    assert!(cache.skipped().is_empty());
    let r0 = &t.records[0];
    let imp = read_report_impression(&root, r0.subject_id, r0.study_id)
        .unwrap()
        .unwrap();
    assert!(!imp.is_empty());
}

#[test]
fn default_size_set_keeps_rare_classes_rarest_and_splits_and_folds_cover_them() {
    use cxr_data::classes::{cxr_lt_index, PAPER_RARE_CLASSES};
    use std::collections::HashSet;
    let dir = tempfile::tempdir().unwrap();
    // Labels do not depend on the image size, so tiny images keep this fast.
    let cfg = SynthConfig {
        patients: 400,
        seed: 0,
        image_size: 32,
        ..Default::default()
    };
    let s = generate(dir.path(), &cfg).unwrap();
    let rare: Vec<usize> = PAPER_RARE_CLASSES
        .iter()
        .map(|n| cxr_lt_index(n).unwrap())
        .collect();
    let normal = cxr_lt_index("Normal").unwrap();
    let counts = &s.frontal_class_counts;
    for &k in &rare {
        assert!(
            counts[k] >= 4,
            "rare class {k} has only {} frontal positives",
            counts[k]
        );
    }
    let rare_mean = rare.iter().map(|&k| counts[k]).sum::<usize>() as f64 / rare.len() as f64;
    let base: Vec<usize> = (0..40)
        .filter(|k| !rare.contains(k) && *k != normal)
        .collect();
    let base_min = base.iter().map(|&k| counts[k]).min().unwrap();
    assert!(
        rare_mean < base_min as f64,
        "rare mean {rare_mean} vs smallest base {base_min}"
    );

    let mut t = read_cxr_lt(&s.labels_csv).unwrap();
    t.filter_views(&ViewFilter::frontal());
    let y = t.multi_hot(UncertainPolicy::default());
    let subjects = t.subjects();

    // Every finding has its floor of positive patients (frontal images), rare classes fewer
    // than base ones.
    for k in (0..40).filter(|&k| k != normal) {
        let patients: HashSet<u64> = (0..t.len())
            .filter(|&i| y[[i, k]] == 1.0)
            .map(|i| subjects[i])
            .collect();
        let floor = if rare.contains(&k) {
            cxr_data::synth::RARE_PATIENT_FLOOR
        } else {
            cxr_data::synth::BASE_PATIENT_FLOOR
        };
        assert!(
            patients.len() as f64 >= (400.0 * floor).ceil(),
            "class {k}: {} positive patients",
            patients.len()
        );
    }
    // The demo's split (stratified by patient; test 0.2, validation 0.15 of the rest, see
    // TrainConfig::demo) has at least 10 / 2 / 3 positive images of every class in train /
    // validation / test whatever the run seed, so every class's AUC is defined.
    let (t_frac, v_frac) = (0.2, 0.15);
    let fractions = [
        (1.0 - t_frac) * (1.0 - v_frac),
        (1.0 - t_frac) * v_frac,
        t_frac,
    ];
    let mut fewest = [usize::MAX; 3];
    for seed in 0..5 {
        let parts =
            cxr_data::split::patient_stratified_split(&subjects, y.view(), &fractions, seed)
                .unwrap();
        for k in 0..40 {
            for (p, part) in parts.iter().enumerate() {
                let n = part.iter().filter(|&&i| y[[i, k]] == 1.0).count();
                fewest[p] = fewest[p].min(n);
            }
        }
    }
    assert!(
        fewest[0] >= 10 && fewest[1] >= 2 && fewest[2] >= 3,
        "fewest positives of a class in train / val / test over 5 seeds: {fewest:?}"
    );
    // Patient-grouped stratified 5-fold: disjoint patients, every class with >= 5 positive
    // patients present in every fold.
    let folds = cxr_data::split::patient_kfold(&subjects, y.view(), 5, 0).unwrap();
    let sets: Vec<HashSet<u64>> = folds
        .iter()
        .map(|f| f.iter().map(|&i| subjects[i]).collect())
        .collect();
    for a in 0..5 {
        for b in a + 1..5 {
            assert!(sets[a].is_disjoint(&sets[b]));
        }
    }
    for k in 0..40 {
        let pos_patients: HashSet<u64> = (0..t.len())
            .filter(|&i| y[[i, k]] == 1.0)
            .map(|i| subjects[i])
            .collect();
        if pos_patients.len() >= 5 {
            for (f, idx) in folds.iter().enumerate() {
                assert!(
                    idx.iter().any(|&i| y[[i, k]] == 1.0),
                    "class {k} missing from fold {f}"
                );
            }
        }
    }
}
