//! `multi_positive_clip_loss` against a numpy reference (values and analytic gradients, the
//! latter checked by finite differences in the script): goldens made by
//! `scripts/goldens/cxr-losses/make_multi_positive_goldens.py` into
//! `tests/fixtures/multi_positive_goldens.json`. The reference runs in float64, we in f32.

use candle_core::{Device, Tensor, Var};
use cxr_losses::{clip_loss, groups_of, multi_positive_clip_loss};
use serde_json::Value;

fn goldens() -> Value {
    serde_json::from_str(include_str!("fixtures/multi_positive_goldens.json")).unwrap()
}

fn var(v: &Value) -> Var {
    let rows = v.as_array().unwrap();
    let flat: Vec<f32> = rows
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect();
    Var::from_vec(flat, (rows.len(), flat_len(rows)), &Device::Cpu).unwrap()
}

fn flat_len(rows: &[Value]) -> usize {
    rows[0].as_array().unwrap().len()
}

fn assert_close_matrix(got: &Tensor, want: &Value, tol: f32, what: &str) {
    let got = got.to_vec2::<f32>().unwrap();
    for (i, (g, w)) in got.iter().zip(want.as_array().unwrap()).enumerate() {
        for (j, (g, w)) in g.iter().zip(w.as_array().unwrap()).enumerate() {
            let w = w.as_f64().unwrap() as f32;
            assert!((g - w).abs() <= tol, "{what}[{i}][{j}]: got {g}, want {w}");
        }
    }
}

#[test]
fn multi_positive_clip_loss_matches_the_numpy_reference() {
    let g = goldens();
    let cases = g["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for (k, c) in cases.iter().enumerate() {
        let img = var(&c["image"]);
        let txt = var(&c["text"]);
        let ls = Var::new(c["log_scale"].as_f64().unwrap() as f32, &Device::Cpu).unwrap();
        let groups: Vec<usize> = c["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        let loss =
            multi_positive_clip_loss(img.as_tensor(), txt.as_tensor(), ls.as_tensor(), &groups)
                .unwrap();
        let want = c["loss"].as_f64().unwrap() as f32;
        let got = loss.to_scalar::<f32>().unwrap();
        assert!(
            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
            "case {k}: loss {got} vs {want}"
        );
        let grads = loss.backward().unwrap();
        let what = format!("case {k}");
        assert_close_matrix(
            grads.get(img.as_tensor()).unwrap(),
            &c["grad_image"],
            1e-5,
            &format!("{what} grad_image"),
        );
        assert_close_matrix(
            grads.get(txt.as_tensor()).unwrap(),
            &c["grad_text"],
            1e-5,
            &format!("{what} grad_text"),
        );
        let want = c["grad_log_scale"].as_f64().unwrap() as f32;
        let got = grads
            .get(ls.as_tensor())
            .map_or(0.0, |t| t.to_scalar::<f32>().unwrap());
        assert!(
            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{what} grad_log_scale {got} vs {want}"
        );
    }
}

#[test]
fn with_all_texts_distinct_it_is_infonce_exactly() {
    for (n, d, seed) in [(4, 6, 1u64), (16, 32, 2), (33, 8, 3)] {
        let dev = Device::Cpu;
        // A deterministic pseudo-random fill (no RNG state shared with other tests).
        let fill = |len: usize, salt: u64| -> Vec<f32> {
            (0..len as u64)
                .map(|i| {
                    let x = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (seed * 31 + salt);
                    ((x >> 11) % 2001) as f32 / 1000.0 - 1.0
                })
                .collect()
        };
        let img = Var::from_vec(fill(n * d, 7), (n, d), &dev).unwrap();
        let txt = Var::from_vec(fill(n * d, 13), (n, d), &dev).unwrap();
        let ls = Var::new(2.5f32, &dev).unwrap();
        let groups: Vec<usize> = (0..n).map(|i| 10 * i + 3).collect();
        let a = clip_loss(img.as_tensor(), txt.as_tensor(), ls.as_tensor()).unwrap();
        let b = multi_positive_clip_loss(img.as_tensor(), txt.as_tensor(), ls.as_tensor(), &groups)
            .unwrap();
        assert_eq!(
            a.to_scalar::<f32>().unwrap(),
            b.to_scalar::<f32>().unwrap(),
            "n = {n}"
        );
        let (ga, gb) = (a.backward().unwrap(), b.backward().unwrap());
        for v in [&img, &txt] {
            let x = ga.get(v.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
            let y = gb.get(v.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
            for (r, s) in x.iter().flatten().zip(y.iter().flatten()) {
                assert!((r - s).abs() <= 1e-7, "n = {n}: gradient {r} vs {s}");
            }
        }
    }
}

#[test]
fn identical_texts_with_identical_embeddings_leave_infonce_unchanged() {
    // Identical texts (same token ids) embed identically, so their logits are equal in every
    // row: the uniform target over them costs what the one-hot target costs, in value and in
    // gradient. The goldens' groups of identical texts have identical text rows; on them the
    // multi-positive loss equals InfoNCE up to rounding.
    let g = goldens();
    for (k, c) in g["cases"].as_array().unwrap().iter().enumerate() {
        let img = var(&c["image"]);
        let txt = var(&c["text"]);
        let ls = Var::new(c["log_scale"].as_f64().unwrap() as f32, &Device::Cpu).unwrap();
        let keys: Vec<u64> = c["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        let groups = groups_of(&keys);
        let a = clip_loss(img.as_tensor(), txt.as_tensor(), ls.as_tensor()).unwrap();
        let b = multi_positive_clip_loss(img.as_tensor(), txt.as_tensor(), ls.as_tensor(), &groups)
            .unwrap();
        let (x, y) = (a.to_scalar::<f32>().unwrap(), b.to_scalar::<f32>().unwrap());
        assert!((x - y).abs() <= 1e-5, "case {k}: {x} vs {y}");
        let (ga, gb) = (a.backward().unwrap(), b.backward().unwrap());
        let x = ga.get(img.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        let y = gb.get(img.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        for (r, s) in x.iter().flatten().zip(y.iter().flatten()) {
            assert!((r - s).abs() <= 1e-5, "case {k}: image gradient {r} vs {s}");
        }
        // Identical texts come from one set of text-tower parameters, which receive the sum of
        // their rows' gradients: per group, the sums agree.
        let x = ga.get(txt.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        let y = gb.get(txt.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        for group in 0..=*groups.iter().max().unwrap() {
            let sum = |m: &[Vec<f32>]| -> Vec<f32> {
                let mut acc = vec![0f32; m[0].len()];
                for (row, _) in m.iter().zip(&groups).filter(|(_, g)| **g == group) {
                    for (a, v) in acc.iter_mut().zip(row) {
                        *a += v;
                    }
                }
                acc
            };
            for (r, s) in sum(&x).iter().zip(&sum(&y)) {
                assert!(
                    (r - s).abs() <= 1e-5,
                    "case {k} group {group}: text gradient {r} vs {s}"
                );
            }
        }
    }
    // Rows that share a group but not an embedding are where the two losses part.
    let dev = Device::Cpu;
    let img = Tensor::new(&[[1f32, 0.2], [0.1, 1.0], [0.8, -0.5]], &dev).unwrap();
    let txt = Tensor::new(&[[1f32, 0.0], [0.0, 1.0], [0.6, -0.8]], &dev).unwrap();
    let ls = Tensor::new(2f32, &dev).unwrap();
    let info = clip_loss(&img, &txt, &ls)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let multi = multi_positive_clip_loss(&img, &txt, &ls, &[0, 1, 0])
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((multi - info).abs() > 1e-3, "{multi} vs {info}");
}
