//! Parity with torch 2.15 / open_clip 3.3 goldens (values and gradients), produced by
//! `scripts/goldens/cxr-losses/make_loss_goldens.py` into `tests/fixtures/loss_goldens.json`.
//! References run in float64; we run in f32, hence tolerances around 1e-4 relative.

use candle_core::{Device, Tensor, Var};
use cxr_losses::{
    clip_loss, mine_triplets, pairwise_distances, soft_pseudo_labels, triplet_loss,
    weighted_metric_loss, Mining, TripletConfig, WeightedMetricConfig,
};
use serde_json::Value;

fn goldens() -> Value {
    let text = include_str!("fixtures/loss_goldens.json");
    serde_json::from_str(text).expect("fixture is valid JSON")
}

fn matrix(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn var(v: &Value) -> Var {
    let m = matrix(v);
    let (r, c) = (m.len(), m[0].len());
    let flat: Vec<f32> = m.into_iter().flatten().collect();
    Var::from_vec(flat, (r, c), &Device::Cpu).unwrap()
}

fn scalar_var(v: &Value) -> Var {
    Var::new(v.as_f64().unwrap() as f32, &Device::Cpu).unwrap()
}

fn f(v: &Value) -> f32 {
    v.as_f64().unwrap() as f32
}

/// `|got - want| <= tol * max(1, max|want|)`, element-wise over a matrix.
fn assert_close_matrix(got: &Tensor, want: &Value, tol: f32, what: &str) {
    let got = got.to_vec2::<f32>().unwrap();
    let want = matrix(want);
    let scale = want.iter().flatten().fold(1f32, |a, &b| a.max(b.abs()));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        for (j, (g, w)) in g.iter().zip(w).enumerate() {
            assert!(
                (g - w).abs() <= tol * scale,
                "{what}[{i}][{j}]: got {g}, want {w}"
            );
        }
    }
}

fn assert_close(got: f32, want: f32, tol: f32, what: &str) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn clip_loss_matches_open_clip_values_and_gradients() {
    let g = goldens();
    let cases = g["clip"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for (k, c) in cases.iter().enumerate() {
        let (img, txt, ls) = (
            var(&c["image"]),
            var(&c["text"]),
            scalar_var(&c["log_scale"]),
        );
        let loss = clip_loss(img.as_tensor(), txt.as_tensor(), ls.as_tensor()).unwrap();
        assert_close(
            loss.to_scalar::<f32>().unwrap(),
            f(&c["loss"]),
            1e-5,
            &format!("clip[{k}] loss"),
        );
        let grads = loss.backward().unwrap();
        assert_close_matrix(
            grads.get(&img).unwrap(),
            &c["grad_image"],
            1e-4,
            &format!("clip[{k}] d/dimage"),
        );
        assert_close_matrix(
            grads.get(&txt).unwrap(),
            &c["grad_text"],
            1e-4,
            &format!("clip[{k}] d/dtext"),
        );
        let gl = grads.get(&ls).unwrap().to_scalar::<f32>().unwrap();
        assert_close(
            gl,
            f(&c["grad_log_scale"]),
            1e-4,
            &format!("clip[{k}] d/dlog_scale"),
        );
    }
}

fn mining(s: &str) -> Mining {
    match s {
        "batch-all" => Mining::BatchAll,
        "batch-hard" => Mining::BatchHard,
        "semi-hard" => Mining::SemiHard,
        other => panic!("unknown mining {other}"),
    }
}

#[test]
fn triplet_loss_matches_torch_triplet_margin_loss_on_mined_triplets() {
    let g = goldens();
    let cases = g["triplet"].as_array().unwrap();
    assert_eq!(cases.len(), 11);
    for (k, c) in cases.iter().enumerate() {
        let emb = var(&c["emb"]);
        let labels: Vec<usize> = c["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        let cfg = TripletConfig {
            margin: f(&c["margin"]),
            mining: mining(c["mining"].as_str().unwrap()),
            normalise: c["normalise"].as_bool().unwrap(),
        };
        let what = format!("triplet[{k}] {:?} margin {}", cfg.mining, cfg.margin);

        // Same triplets as the torch mining (order-insensitive).
        let x = if cfg.normalise {
            cxr_losses::l2_normalise(emb.as_tensor()).unwrap()
        } else {
            emb.as_tensor().clone()
        };
        let dist = pairwise_distances(&x).unwrap().to_vec2::<f32>().unwrap();
        let mut ours = mine_triplets(&dist, &labels, cfg.mining);
        let mut theirs: Vec<[usize; 3]> = c["triplets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let t: Vec<usize> = t
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i.as_u64().unwrap() as usize)
                    .collect();
                [t[0], t[1], t[2]]
            })
            .collect();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs, "{what}: mined triplets differ");

        let loss = triplet_loss(emb.as_tensor(), &labels, &cfg).unwrap();
        assert_close(loss.to_scalar::<f32>().unwrap(), f(&c["loss"]), 2e-5, &what);
        let grads = loss.backward().unwrap();
        assert_close_matrix(grads.get(&emb).unwrap(), &c["grad_emb"], 1e-4, &what);
    }
}

#[test]
fn weighted_metric_loss_matches_torch_transcription() {
    let g = goldens();
    let cases = g["weighted_metric"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for (k, c) in cases.iter().enumerate() {
        let (img, txt) = (var(&c["image"]), var(&c["text"]));
        let plab = var(&c["pseudo_labels"]);
        let t = scalar_var(&c["temperature"]);
        let cfg = WeightedMetricConfig {
            base_margin: c["base_margin"].as_f64().unwrap(),
            ..Default::default()
        };
        let loss = weighted_metric_loss(
            img.as_tensor(),
            txt.as_tensor(),
            plab.as_tensor(),
            t.as_tensor(),
            &cfg,
        )
        .unwrap();
        let what = format!("weighted[{k}]");
        assert_close(loss.to_scalar::<f32>().unwrap(), f(&c["loss"]), 2e-5, &what);
        let grads = loss.backward().unwrap();
        assert_close_matrix(grads.get(&img).unwrap(), &c["grad_image"], 1e-4, &what);
        assert_close_matrix(grads.get(&txt).unwrap(), &c["grad_text"], 1e-4, &what);
        let gt = grads.get(&t).unwrap().to_scalar::<f32>().unwrap();
        assert_close(gt, f(&c["grad_temperature"]), 1e-4, &what);
    }
}

#[test]
fn soft_pseudo_labels_match_torch_transcription() {
    let g = goldens();
    let cases = g["soft_pseudo_labels"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for (k, c) in cases.iter().enumerate() {
        let m = matrix(&c["posteriors"]);
        let (r, cols) = (m.len(), m[0].len());
        // f64 in: the posteriors' tiny entries are what the sharpening amplifies.
        let flat: Vec<f64> = c["posteriors"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
            .collect();
        let post = Tensor::from_vec(flat, (r, cols), &Device::Cpu).unwrap();
        let got: Vec<Vec<f64>> = soft_pseudo_labels(&post, c["sharpen"].as_f64().unwrap())
            .unwrap()
            .to_vec2()
            .unwrap();
        let want = c["soft_labels"].as_array().unwrap();
        for (i, (gr, wr)) in got.iter().zip(want).enumerate() {
            let wr = wr.as_array().unwrap();
            assert!(
                (gr.iter().sum::<f64>() - 1.0).abs() < 1e-12,
                "row {i} sums to 1"
            );
            for (j, (gv, wv)) in gr.iter().zip(wr).enumerate() {
                let wv = wv.as_f64().unwrap();
                assert!(
                    (gv - wv).abs() <= 1e-12 + 1e-9 * wv.abs(),
                    "soft[{k}] ({i},{j}): {gv} vs {wv}"
                );
            }
        }
    }
}
