//! Patient-level splits and folds, deterministic by seed.
//!
//! [`patient_kfold`] is iterative stratification (Sechidis, Tsoumakas & Vlahavas, 2011) over
//! patient groups: a patient's records always land in one fold, and the rarest labels are placed
//! first so that every fold gets its share of each rare class where counts allow.
//! [`label_string_kfold`] reproduces the released CXR-CML code's split (sklearn
//! `StratifiedKFold(shuffle=True)` over the label string, NOT patient-grouped) for parity runs.

use std::collections::BTreeMap;

use ndarray::ArrayView2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{DataError, Result};

/// Unique subjects in ascending order and, per subject, the record indices.
fn groups(subjects: &[u64]) -> Vec<(u64, Vec<usize>)> {
    let mut map: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, &s) in subjects.iter().enumerate() {
        map.entry(s).or_default().push(i);
    }
    map.into_iter().collect()
}

/// Split record indices into (train, test) by patient: `round(patients * test_fraction)`
/// randomly chosen patients (fraction clamped to [0, 1]) go to test. Both lists are ascending.
pub fn patient_train_test(
    subjects: &[u64],
    test_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut g = groups(subjects);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    g.shuffle(&mut rng);
    let frac = if test_fraction.is_finite() {
        test_fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let n_test = (g.len() as f64 * frac).round() as usize;
    let mut test: Vec<usize> = g[..n_test]
        .iter()
        .flat_map(|(_, r)| r.iter().copied())
        .collect();
    let mut train: Vec<usize> = g[n_test..]
        .iter()
        .flat_map(|(_, r)| r.iter().copied())
        .collect();
    test.sort_unstable();
    train.sort_unstable();
    (train, test)
}

fn check_k(n_items: usize, k: usize, what: &str) -> Result<()> {
    if k < 2 {
        return Err(DataError::InvalidParam(format!(
            "k-fold needs k >= 2, got {k}"
        )));
    }
    if n_items < k {
        return Err(DataError::InvalidParam(format!(
            "{k} folds need at least {k} {what}, got {n_items}"
        )));
    }
    Ok(())
}

/// K-fold cross-validation grouped by patient and stratified over the multi-label matrix
/// (`labels`: N x C, 1 = positive). Returns each fold's test indices (ascending); the folds
/// partition `0..N` and no patient appears in two folds.
pub fn patient_kfold(
    subjects: &[u64],
    labels: ArrayView2<'_, f32>,
    k: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    check_label_rows(subjects, labels)?;
    let g = groups(subjects);
    check_k(g.len(), k, "patients")?;
    Ok(stratified_parts(
        g,
        subjects.len(),
        labels,
        seed,
        k,
        |t, _| t / k as f64,
    ))
}

/// A patient-level split into parts of the given `fractions` (summing to 1), stratified over
/// the multi-label matrix like [`patient_kfold`]: the rarest labels are placed first, each
/// positive patient into the part furthest below its share of that label. Every class with
/// enough positive records gets about `fraction` of them in each part, whatever the seed, where
/// a random patient split can leave a rare class out of a small part altogether. Returns each
/// part's record indices (ascending); the parts partition `0..N` by patient.
pub fn patient_stratified_split(
    subjects: &[u64],
    labels: ArrayView2<'_, f32>,
    fractions: &[f64],
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    check_label_rows(subjects, labels)?;
    let sum: f64 = fractions.iter().sum();
    if fractions.is_empty()
        || fractions.iter().any(|f| !f.is_finite() || *f < 0.0)
        || (sum - 1.0).abs() > 1e-9
    {
        return Err(DataError::InvalidParam(format!(
            "split fractions {fractions:?} must be finite, non-negative and sum to 1"
        )));
    }
    let g = groups(subjects);
    Ok(stratified_parts(
        g,
        subjects.len(),
        labels,
        seed,
        fractions.len(),
        |t, part| t * fractions[part],
    ))
}

fn check_label_rows(subjects: &[u64], labels: ArrayView2<'_, f32>) -> Result<()> {
    if labels.nrows() != subjects.len() {
        return Err(DataError::InvalidParam(format!(
            "{} subjects but {} label rows",
            subjects.len(),
            labels.nrows()
        )));
    }
    Ok(())
}

/// The patient groups `g` (of `n_records` records) shuffled by `seed` for tie-breaking, then
/// stratified into `parts` parts; `share(total, part)` is the part's share of a total (a
/// class's positives, or the records).
fn stratified_parts(
    mut g: Vec<(u64, Vec<usize>)>,
    n_records: usize,
    labels: ArrayView2<'_, f32>,
    seed: u64,
    parts: usize,
    share: impl Fn(f64, usize) -> f64,
) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    g.shuffle(&mut rng); // random tie-breaking, fixed by the seed
    let counts = positives_per_group(&g, labels);
    let totals = column_totals(&counts, labels.ncols());
    let want_label: Vec<Vec<f64>> = (0..parts)
        .map(|p| totals.iter().map(|&t| share(t, p)).collect())
        .collect();
    let want_size = (0..parts).map(|p| share(n_records as f64, p)).collect();
    stratify(&g, &counts, want_label, want_size)
}

/// Positive records per (group, class).
fn positives_per_group(g: &[(u64, Vec<usize>)], labels: ArrayView2<'_, f32>) -> Vec<Vec<f64>> {
    g.iter()
        .map(|(_, rows)| {
            (0..labels.ncols())
                .map(|j| rows.iter().filter(|&&i| labels[[i, j]] > 0.5).count() as f64)
                .collect()
        })
        .collect()
}

fn column_totals(counts: &[Vec<f64>], c: usize) -> Vec<f64> {
    (0..c)
        .map(|j| counts.iter().map(|gc| gc[j]).sum())
        .collect()
}

/// Iterative stratification (Sechidis et al., 2011) of the (shuffled) patient groups `g` into
/// parts that still want `want_label[part][class]` positives and `want_size[part]` records.
fn stratify(
    g: &[(u64, Vec<usize>)],
    counts: &[Vec<f64>],
    mut want_label: Vec<Vec<f64>>,
    mut want_size: Vec<f64>,
) -> Vec<Vec<usize>> {
    let k = want_size.len();
    let c = counts.first().map_or(0, Vec::len);
    let mut fold_of: Vec<Option<usize>> = vec![None; g.len()];

    let assign = |gi: usize,
                  f: usize,
                  fold_of: &mut Vec<Option<usize>>,
                  want_label: &mut Vec<Vec<f64>>,
                  want_size: &mut Vec<f64>| {
        fold_of[gi] = Some(f);
        want_size[f] -= g[gi].1.len() as f64;
        for j in 0..c {
            want_label[f][j] -= counts[gi][j];
        }
    };
    let argmax = |score: &dyn Fn(usize) -> (f64, f64)| -> usize {
        let mut best = 0;
        for f in 1..k {
            let (a, b) = (score(f), score(best));
            if a.0 > b.0 || (a.0 == b.0 && a.1 > b.1) {
                best = f;
            }
        }
        best
    };

    loop {
        // The label with the fewest remaining positives among unassigned patients.
        let mut remaining = vec![0.0; c];
        for (gi, gc) in counts.iter().enumerate() {
            if fold_of[gi].is_none() {
                for j in 0..c {
                    remaining[j] += gc[j];
                }
            }
        }
        let Some(lab) = (0..c)
            .filter(|&j| remaining[j] > 0.0)
            .min_by(|&a, &b| remaining[a].total_cmp(&remaining[b]))
        else {
            break;
        };
        for gi in 0..g.len() {
            if fold_of[gi].is_none() && counts[gi][lab] > 0.0 {
                let f = argmax(&|f| (want_label[f][lab], want_size[f]));
                assign(gi, f, &mut fold_of, &mut want_label, &mut want_size);
            }
        }
    }
    // Patients with no positive label: fill the folds that are furthest below their size.
    for gi in 0..g.len() {
        if fold_of[gi].is_none() {
            let f = argmax(&|f| (want_size[f], 0.0));
            assign(gi, f, &mut fold_of, &mut want_label, &mut want_size);
        }
    }
    let mut folds = vec![Vec::new(); k];
    for (gi, (_, rows)) in g.iter().enumerate() {
        folds[fold_of[gi].expect("every group assigned")].extend_from_slice(rows);
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    folds
}

/// The released CXR-CML code's folds: sklearn `StratifiedKFold(k, shuffle=True)` with the
/// class of a record being its whole label string (e.g. "0101..."). Records of one patient MAY
/// land in different folds (that is the point of keeping it for parity runs). The per-fold
/// class allocation follows sklearn exactly; the shuffle uses our seeded RNG, not numpy's.
pub fn label_string_kfold(
    labels: ArrayView2<'_, f32>,
    k: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    let n = labels.nrows();
    check_k(n, k, "records")?;
    // Encode label strings by order of first appearance (as sklearn does).
    let mut code_of: BTreeMap<Vec<bool>, usize> = BTreeMap::new();
    let mut first_seen = Vec::new();
    let mut y = Vec::with_capacity(n);
    for row in labels.rows() {
        let key: Vec<bool> = row.iter().map(|&v| v > 0.5).collect();
        let next = code_of.len();
        let code = *code_of.entry(key).or_insert_with(|| {
            first_seen.push(next);
            next
        });
        y.push(code);
    }
    let n_classes = code_of.len();
    let mut y_sorted = y.clone();
    y_sorted.sort_unstable();
    // allocation[f][cls] = bincount(y_sorted[f::k])
    let mut allocation = vec![vec![0usize; n_classes]; k];
    for (i, &cls) in y_sorted.iter().enumerate() {
        allocation[i % k][cls] += 1;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut folds = vec![Vec::new(); k];
    for cls in 0..n_classes {
        let mut fold_ids: Vec<usize> = (0..k)
            .flat_map(|f| std::iter::repeat_n(f, allocation[f][cls]))
            .collect();
        fold_ids.shuffle(&mut rng);
        let members = y
            .iter()
            .enumerate()
            .filter(|(_, &c)| c == cls)
            .map(|(i, _)| i);
        for (i, f) in members.zip(fold_ids) {
            folds[f].push(i);
        }
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    Ok(folds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::Rng;
    use std::collections::HashSet;

    fn data(n_patients: usize, seed: u64) -> (Vec<u64>, Array2<f32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut subjects = Vec::new();
        let mut rows = Vec::new();
        for p in 0..n_patients {
            let n_img = rng.gen_range(1..=4);
            // class 0 common, 1 medium, 2 rare (about 10 patients), patient-level labels
            let lab = [
                rng.gen_bool(0.4),
                rng.gen_bool(0.15),
                rng.gen_bool((10.0 / n_patients as f64).min(1.0)),
            ];
            for _ in 0..n_img {
                subjects.push(1000 + p as u64 * 7);
                rows.extend(lab.iter().map(|&b| if b { 1.0f32 } else { 0.0 }));
            }
        }
        let n = subjects.len();
        (subjects, Array2::from_shape_vec((n, 3), rows).unwrap())
    }

    #[test]
    fn train_test_is_patient_disjoint_and_deterministic() {
        let (s, _) = data(200, 1);
        let (tr, te) = patient_train_test(&s, 0.2, 7);
        assert_eq!(tr.len() + te.len(), s.len());
        let a: HashSet<u64> = tr.iter().map(|&i| s[i]).collect();
        let b: HashSet<u64> = te.iter().map(|&i| s[i]).collect();
        assert!(a.is_disjoint(&b));
        assert_eq!(b.len(), 40);
        assert_eq!(patient_train_test(&s, 0.2, 7), (tr.clone(), te.clone()));
        assert_ne!(patient_train_test(&s, 0.2, 8).1, te);
    }

    #[test]
    fn kfold_is_a_patient_disjoint_stratified_partition() {
        let (s, y) = data(300, 2);
        let folds = patient_kfold(&s, y.view(), 5, 3).unwrap();
        let mut all: Vec<usize> = folds.concat();
        all.sort_unstable();
        assert_eq!(all, (0..s.len()).collect::<Vec<_>>());
        let sets: Vec<HashSet<u64>> = folds
            .iter()
            .map(|f| f.iter().map(|&i| s[i]).collect())
            .collect();
        for a in 0..5 {
            for b in a + 1..5 {
                assert!(
                    sets[a].is_disjoint(&sets[b]),
                    "patient in folds {a} and {b}"
                );
            }
        }
        for j in 0..3 {
            let total: f32 = y.column(j).sum();
            for f in &folds {
                let in_fold: f32 = f.iter().map(|&i| y[[i, j]]).sum();
                // each fold holds its share of each class, within a couple of patients' images
                assert!(
                    (in_fold - total / 5.0).abs() <= 8.0,
                    "class {j}: {in_fold} of {total}"
                );
                assert!(in_fold > 0.0, "class {j} missing from a fold");
            }
        }
        assert_eq!(patient_kfold(&s, y.view(), 5, 3).unwrap(), folds);
    }

    #[test]
    fn stratified_split_gives_every_part_its_share_of_a_rare_class_for_every_seed() {
        // 400 patients, class 2 has about 10 positive patients (20-30 images): a random
        // 8% part often misses it; the stratified one never does.
        let (s, y) = data(400, 6);
        let fractions = [0.72, 0.08, 0.2];
        let total: Vec<f32> = (0..3).map(|j| y.column(j).sum()).collect();
        let mut random_missed = 0;
        for seed in 0..20 {
            let parts = patient_stratified_split(&s, y.view(), &fractions, seed).unwrap();
            assert_eq!(parts.len(), 3);
            let mut all: Vec<usize> = parts.concat();
            all.sort_unstable();
            assert_eq!(all, (0..s.len()).collect::<Vec<_>>());
            let sets: Vec<HashSet<u64>> = parts
                .iter()
                .map(|f| f.iter().map(|&i| s[i]).collect())
                .collect();
            assert!(sets[0].is_disjoint(&sets[1]) && sets[0].is_disjoint(&sets[2]));
            assert!(sets[1].is_disjoint(&sets[2]));
            for (p, part) in parts.iter().enumerate() {
                let share = (part.len() as f64 / s.len() as f64 - fractions[p]).abs();
                assert!(share < 0.03, "part {p}: {} of {}", part.len(), s.len());
                for j in 0..3 {
                    let n: f32 = part.iter().map(|&i| y[[i, j]]).sum();
                    let want = total[j] * fractions[p] as f32;
                    assert!(n >= 1.0, "seed {seed}: class {j} missing from part {p}");
                    assert!((n - want).abs() <= 5.0, "class {j} part {p}: {n} vs {want}");
                }
            }
            assert_eq!(
                patient_stratified_split(&s, y.view(), &fractions, seed).unwrap(),
                parts
            );
            let (trainval, _) = patient_train_test(&s, 0.2, seed);
            let trainval_subjects: Vec<u64> = trainval.iter().map(|&i| s[i]).collect();
            let (_, val) = patient_train_test(&trainval_subjects, 0.1, seed + 1);
            random_missed += val.iter().all(|&v| y[[trainval[v], 2]] == 0.0) as usize;
        }
        assert!(
            random_missed > 0,
            "the random split never missed the rare class"
        );
    }

    #[test]
    fn stratified_split_rejects_bad_fractions() {
        let (s, y) = data(20, 7);
        for bad in [&[0.5, 0.4][..], &[], &[1.2, -0.2], &[f64::NAN, 1.0]] {
            let e = patient_stratified_split(&s, y.view(), bad, 0).unwrap_err();
            assert!(e.to_string().contains("sum to 1"), "{e}");
        }
        assert!(patient_stratified_split(&s[1..], y.view(), &[0.5, 0.5], 0).is_err());
    }

    #[test]
    fn kfold_rejects_bad_parameters() {
        let (s, y) = data(3, 4);
        assert!(patient_kfold(&s, y.view(), 1, 0)
            .unwrap_err()
            .to_string()
            .contains("k >= 2"));
        assert!(patient_kfold(&s, y.view(), 5, 0)
            .unwrap_err()
            .to_string()
            .contains("patients"));
        assert!(patient_kfold(&s[1..], y.view(), 2, 0).is_err());
        assert!(label_string_kfold(y.view(), 1, 0).is_err());
    }

    #[test]
    fn label_string_folds_follow_sklearn_allocation() {
        let (_, y) = data(100, 5);
        let folds = label_string_kfold(y.view(), 5, 42).unwrap();
        let mut all = folds.concat();
        all.sort_unstable();
        assert_eq!(all, (0..y.nrows()).collect::<Vec<_>>());
        let sizes: Vec<usize> = folds.iter().map(Vec::len).collect();
        let (mn, mx) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(mx - mn <= 1, "{sizes:?}");
    }
}
