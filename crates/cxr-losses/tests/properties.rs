//! Analytic and edge-case checks (the torch goldens live in `tests/goldens.rs`).

use candle_core::{Device, Tensor, Var};
use cxr_losses::{clip_loss, triplet_loss, LossError, Mining, TripletConfig};

#[test]
fn clip_loss_of_orthogonal_pairs_is_log1p_exp_minus_scale() {
    // Matching pairs identical, different pairs orthogonal: every row's logits are [s, 0].
    let dev = Device::Cpu;
    let img = Tensor::new(&[[2f32, 0.0], [0.0, 3.0]], &dev).unwrap();
    let txt = Tensor::new(&[[0.5f32, 0.0], [0.0, 7.0]], &dev).unwrap();
    let s = 4.0f64;
    let log_s = Tensor::new(s.ln() as f32, &dev).unwrap();
    let loss = clip_loss(&img, &txt, &log_s)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let expected = (1.0 + (-s).exp()).ln() as f32;
    assert!((loss - expected).abs() < 1e-6, "{loss} vs {expected}");
}

#[test]
fn clip_loss_clamps_the_scale_at_100_and_stops_its_gradient() {
    let dev = Device::Cpu;
    let img = Tensor::new(&[[1f32, 0.2], [0.1, 1.0], [0.5, -0.5]], &dev).unwrap();
    let txt = Tensor::new(&[[0.9f32, 0.1], [0.0, 1.0], [0.4, -0.7]], &dev).unwrap();
    let big = Var::new(6.0f32, &dev).unwrap(); // exp(6) = 403 > 100
    let at100 = Tensor::new(100f32.ln(), &dev).unwrap();
    let l_big = clip_loss(&img, &txt, big.as_tensor()).unwrap();
    let l_100 = clip_loss(&img, &txt, &at100).unwrap();
    let (a, b) = (
        l_big.to_scalar::<f32>().unwrap(),
        l_100.to_scalar::<f32>().unwrap(),
    );
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    let g = l_big.backward().unwrap();
    let gs = g.get(big.as_tensor()).unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(gs, 0.0);
}

#[test]
fn clip_loss_rejects_mismatched_shapes() {
    let dev = Device::Cpu;
    let a = Tensor::zeros((3, 4), candle_core::DType::F32, &dev).unwrap();
    let b = Tensor::zeros((3, 5), candle_core::DType::F32, &dev).unwrap();
    let s = Tensor::new(1f32, &dev).unwrap();
    assert!(matches!(
        clip_loss(&a, &b, &s),
        Err(LossError::Shape { .. })
    ));
    let v = Tensor::new(&[1f32, 2.0], &dev).unwrap();
    assert!(matches!(
        clip_loss(&a, &a, &v),
        Err(LossError::Shape { .. })
    ));
}

#[test]
fn triplet_loss_without_valid_triplets_is_zero_with_zero_gradient() {
    let dev = Device::Cpu;
    let emb = Var::new(&[[1f32, 0.0], [0.0, 1.0], [1.0, 1.0]], &dev).unwrap();
    for mining in [Mining::BatchAll, Mining::BatchHard, Mining::SemiHard] {
        let cfg = TripletConfig {
            mining,
            ..TripletConfig::default()
        };
        // All singletons: no anchor has a positive. Then one label: no negatives.
        for labels in [[0usize, 1, 2], [4, 4, 4]] {
            let loss = triplet_loss(emb.as_tensor(), &labels, &cfg).unwrap();
            assert_eq!(loss.to_scalar::<f32>().unwrap(), 0.0);
            let g = loss.backward().unwrap();
            let g = g.get(emb.as_tensor()).expect("graph reaches emb");
            assert_eq!(
                g.abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap(),
                0.0
            );
        }
    }
}

#[test]
fn triplet_loss_rejects_bad_input() {
    let dev = Device::Cpu;
    let emb = Tensor::new(&[[1f32, 0.0], [0.0, 1.0]], &dev).unwrap();
    let cfg = TripletConfig::default();
    assert!(matches!(
        triplet_loss(&emb, &[0], &cfg),
        Err(LossError::LabelCount { labels: 1, rows: 2 })
    ));
    let neg = TripletConfig {
        margin: -0.1,
        ..cfg.clone()
    };
    assert!(matches!(
        triplet_loss(&emb, &[0, 1], &neg),
        Err(LossError::Config(_))
    ));
    let nan = TripletConfig {
        margin: f32::NAN,
        ..cfg
    };
    assert!(matches!(
        triplet_loss(&emb, &[0, 1], &nan),
        Err(LossError::Config(_))
    ));
}

#[test]
fn weighted_metric_loss_rejects_bad_input() {
    use cxr_losses::{weighted_metric_loss, WeightedMetricConfig};
    let dev = Device::Cpu;
    let emb = Tensor::new(&[[1f32, 0.0], [0.0, 1.0], [1.0, 1.0]], &dev).unwrap();
    let plab = Tensor::new(&[[1f32, 0.0], [0.0, 1.0], [0.5, 0.5]], &dev).unwrap();
    let t = Tensor::new(1f32, &dev).unwrap();
    let cfg = WeightedMetricConfig::default();
    assert_eq!(cfg.base_margin, 0.3);
    let ok = weighted_metric_loss(&emb, &emb, &plab, &t, &cfg).unwrap();
    assert!(ok.to_scalar::<f32>().unwrap().is_finite());
    let short = plab.narrow(0, 0, 2).unwrap();
    assert!(matches!(
        weighted_metric_loss(&emb, &emb, &short, &t, &cfg),
        Err(LossError::Shape {
            what: "pseudo_labels",
            ..
        })
    ));
    assert!(matches!(
        weighted_metric_loss(&emb, &emb.narrow(1, 0, 1).unwrap(), &plab, &t, &cfg),
        Err(LossError::Shape {
            what: "text_emb",
            ..
        })
    ));
    let neg = WeightedMetricConfig {
        base_margin: -1.0,
        ..Default::default()
    };
    assert!(matches!(
        weighted_metric_loss(&emb, &emb, &plab, &t, &neg),
        Err(LossError::Config(_))
    ));
    for (lo, hi) in [
        (0.0, 1.0),
        (2.0, 1.0),
        (0.1, f64::INFINITY),
        (f64::NAN, 1.0),
    ] {
        let bounds = WeightedMetricConfig {
            min_temperature: lo,
            max_temperature: hi,
            ..Default::default()
        };
        assert!(
            matches!(
                weighted_metric_loss(&emb, &emb, &plab, &t, &bounds),
                Err(LossError::Config(_))
            ),
            "[{lo}, {hi}]"
        );
    }
}

/// The temperature is clamped in the forward pass: outside its bounds the loss is the bound's
/// and the temperature gets no gradient; inside, the clamp changes nothing.
#[test]
fn weighted_metric_temperature_is_clamped_with_no_gradient_past_a_bound() {
    use cxr_losses::{weighted_metric_loss, WeightedMetricConfig, MIN_TEMPERATURE};
    let dev = Device::Cpu;
    let img = Tensor::new(&[[1f32, 0.2], [0.1, 1.0], [1.0, 0.9]], &dev).unwrap();
    let txt = Tensor::new(&[[0.9f32, 0.1], [0.3, 1.0], [0.8, 1.0]], &dev).unwrap();
    let plab = Tensor::new(&[[1f32, 0.0], [0.0, 1.0], [0.5, 0.5]], &dev).unwrap();
    let cfg = WeightedMetricConfig::default();
    let at = |t: f32| {
        let v = Var::new(t, &dev).unwrap();
        let loss = weighted_metric_loss(&img, &txt, &plab, v.as_tensor(), &cfg).unwrap();
        let g = loss
            .backward()
            .unwrap()
            .get(v.as_tensor())
            .map(|g| g.to_scalar::<f32>().unwrap());
        (loss.to_scalar::<f32>().unwrap(), g.unwrap_or(0.0))
    };
    let (below, g_below) = at(MIN_TEMPERATURE as f32 / 10.0);
    let (bound, _) = at(MIN_TEMPERATURE as f32);
    assert_eq!(below, bound);
    assert_eq!(g_below, 0.0);
    let (inside, g_inside) = at(5.0);
    assert!(inside > 0.0 && g_inside != 0.0, "{inside} {g_inside}");
}

#[test]
fn mining_and_config_deserialise_from_kebab_case() {
    let cfg: TripletConfig =
        serde_json::from_str(r#"{"margin":0.3,"mining":"semi-hard"}"#).unwrap();
    assert_eq!(cfg.mining, Mining::SemiHard);
    assert!(cfg.normalise, "normalise defaults to true");
    assert!(serde_json::from_str::<TripletConfig>(r#"{"margn":0.3}"#).is_err());
}

#[test]
fn soft_pseudo_labels_keep_one_hot_rows_and_reject_bad_input() {
    use cxr_losses::soft_pseudo_labels;
    let dev = candle_core::Device::Cpu;
    // One-hot posteriors stay one-hot whatever the cluster masses.
    let one_hot = Tensor::new(&[[1f32, 0., 0.], [0., 1., 0.], [1., 0., 0.]], &dev).unwrap();
    let s: Vec<Vec<f32>> = soft_pseudo_labels(&one_hot, 0.05)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(
        s,
        vec![vec![1., 0., 0.], vec![0., 1., 0.], vec![1., 0., 0.]]
    );
    // Ties stay ties; rarer clusters get more weight after the mass reweighting.
    let tied = Tensor::new(&[[0.5f64, 0.5], [0.9, 0.1], [0.9, 0.1]], &dev).unwrap();
    let s: Vec<Vec<f64>> = soft_pseudo_labels(&tied, 1.0).unwrap().to_vec2().unwrap();
    assert!(
        s[0][1] > s[0][0],
        "the rarer cluster 1 gains weight: {:?}",
        s[0]
    );
    assert!(matches!(
        soft_pseudo_labels(&one_hot, 0.0),
        Err(cxr_losses::LossError::Config(_))
    ));
    let nan = Tensor::new(&[[f32::NAN, 1.0]], &dev).unwrap();
    assert!(soft_pseudo_labels(&nan, 0.05).is_err());
    assert!(soft_pseudo_labels(&Tensor::new(&[1f32, 0.], &dev).unwrap(), 0.05).is_err());
}
