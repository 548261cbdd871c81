//! Gradient accumulation with `input_gradients` + `surrogate` reproduces the full-batch
//! gradient of the CLIP + triplet objective exactly (up to f32 rounding).

use candle_core::{Device, Tensor, Var};
use cxr_losses::{clip_loss, input_gradients, surrogate, triplet_loss, TripletConfig};

fn data(n: usize, d: usize, seed: f32) -> Tensor {
    let v: Vec<f32> = (0..n * d)
        .map(|i| ((i as f32 + seed) * 0.731).sin())
        .collect();
    Tensor::from_vec(v, (n, d), &Device::Cpu).unwrap()
}

#[test]
fn micro_batch_accumulation_equals_full_batch_gradient() {
    let dev = Device::Cpu;
    let (n, d_in, d) = (8, 5, 4);
    let w_img = Var::from_tensor(&data(d_in, d, 1.0)).unwrap();
    let w_txt = Var::from_tensor(&data(d_in, d, 2.0)).unwrap();
    let scale = Var::new(2.0f32, &dev).unwrap();
    let (x_img, x_txt) = (data(n, d_in, 3.0), data(n, d_in, 4.0));
    let labels = [0usize, 1, 0, 2, 1, 0, 2, 1];
    let cfg = TripletConfig::default();
    let objective = |img: &Tensor, txt: &Tensor, s: &Tensor| -> cxr_losses::Result<Tensor> {
        Ok((clip_loss(img, txt, s)? + triplet_loss(img, &labels, &cfg)?)?)
    };

    // Full batch.
    let img = x_img.matmul(w_img.as_tensor()).unwrap();
    let txt = x_txt.matmul(w_txt.as_tensor()).unwrap();
    let full = objective(&img, &txt, scale.as_tensor()).unwrap();
    let g_full = full.backward().unwrap();

    // Two micro-batches of 4.
    let (loss, g) = input_gradients(&[&img, &txt, scale.as_tensor()], |t| {
        objective(&t[0], &t[1], &t[2])
    })
    .unwrap();
    assert!((loss.to_scalar::<f32>().unwrap() - full.to_scalar::<f32>().unwrap()).abs() < 1e-6);
    let mut acc_img = Tensor::zeros((d_in, d), candle_core::DType::F32, &dev).unwrap();
    let mut acc_txt = acc_img.clone();
    for k in 0..2 {
        let rows = |t: &Tensor| t.narrow(0, 4 * k, 4).unwrap();
        let img_k = rows(&x_img).matmul(w_img.as_tensor()).unwrap();
        let txt_k = rows(&x_txt).matmul(w_txt.as_tensor()).unwrap();
        let s = surrogate(&[&img_k, &txt_k], &[&rows(&g[0]), &rows(&g[1])]).unwrap();
        let gk = s.backward().unwrap();
        acc_img = (acc_img + gk.get(&w_img).unwrap()).unwrap();
        acc_txt = (acc_txt + gk.get(&w_txt).unwrap()).unwrap();
    }
    let close = |a: &Tensor, b: &Tensor| {
        let d = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-5, "max diff {d}");
    };
    close(&acc_img, g_full.get(&w_img).unwrap());
    close(&acc_txt, g_full.get(&w_txt).unwrap());
    close(&g[2], g_full.get(&scale).unwrap());
    // And averaging per-micro-batch losses would NOT have matched (the point of the scheme).
    let naive: Tensor = (0..2)
        .map(|k| {
            let rows = |t: &Tensor| t.narrow(0, 4 * k, 4).unwrap();
            let i = rows(&x_img).matmul(w_img.as_tensor()).unwrap();
            let t = rows(&x_txt).matmul(w_txt.as_tensor()).unwrap();
            clip_loss(&i, &t, scale.as_tensor()).unwrap()
        })
        .reduce(|a, b| (a + b).unwrap())
        .unwrap();
    let clip_only = clip_loss(&img, &txt, scale.as_tensor()).unwrap();
    assert!(
        (naive.to_scalar::<f32>().unwrap() / 2.0 - clip_only.to_scalar::<f32>().unwrap()).abs()
            > 1e-3
    );
}

#[test]
fn surrogate_rejects_mismatched_inputs() {
    let a = data(2, 3, 0.0);
    let b = data(3, 2, 0.0);
    assert!(surrogate(&[&a], &[&b]).is_err());
    assert!(surrogate(&[&a, &a], &[&a]).is_err());
    assert!(surrogate(&[], &[]).is_err());
}
