//! Every fused op against its primitive-op formula (`cxr_ops::reference`), values and
//! gradients through `backward()`, in f32 and f64, and against central finite differences in
//! f64. Row lengths 1, 7, 77, 768 and 3072 (ViT-B/32's widths), rows of large magnitude for the
//! softmaxes, non-contiguous inputs, the bf16 fallback, and thread-count independence.

use candle_core::{DType, Device, Result, Tensor, Var};

type Op1 = fn(&Tensor) -> Result<Tensor>;

/// The one-input ops: name, fused, reference, tolerance factor for the f64 gradient (candle's
/// own `gelu_erf` backward rounds 1/sqrt(2 pi) to 0.398942, so it is off by ~2e-7; the finite
/// differences check ours exactly).
const UNARY: &[(&str, Op1, Op1, f64)] = &[
    (
        "softmax",
        cxr_ops::softmax_last_dim,
        cxr_ops::reference::softmax_last_dim,
        1.0,
    ),
    (
        "log_softmax",
        cxr_ops::log_softmax_last_dim,
        cxr_ops::reference::log_softmax_last_dim,
        1.0,
    ),
    (
        "quick_gelu",
        cxr_ops::quick_gelu,
        cxr_ops::reference::quick_gelu,
        1.0,
    ),
    (
        "gelu_erf",
        cxr_ops::gelu_erf,
        cxr_ops::reference::gelu_erf,
        1e7,
    ),
];

/// Shapes `[rows, dim]` with the row lengths the brief asks for, plus a rank-3 one.
const SHAPES: &[&[usize]] = &[
    &[5, 1],
    &[4, 7],
    &[3, 77],
    &[6, 768],
    &[2, 3072],
    &[2, 3, 7],
];

/// Deterministic values in [-0.5, 0.5) (no RNG dependency).
fn values(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 * 12.9898 + seed * 78.233).sin() * 43758.5453).fract() - 0.5)
        .collect()
}

/// `values * scale + shift` as a `dtype` tensor of `shape` (rounded from f64 on the host).
fn tensor(shape: &[usize], seed: f64, scale: f64, shift: f64, dtype: DType) -> Result<Tensor> {
    let n = shape.iter().product();
    let v: Vec<f64> = values(n, seed).iter().map(|v| v * scale + shift).collect();
    Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(dtype)
}

/// Largest `|a - b| / (atol + rtol |b|)` over two tensors of one shape: <= 1 passes.
fn rel_err(a: &Tensor, b: &Tensor, atol: f64, rtol: f64) -> Result<f64> {
    assert_eq!(a.dims(), b.dims());
    let a = a.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let b = b.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    Ok(a.iter()
        .zip(&b)
        .map(|(x, y)| {
            if x.is_nan() || y.is_nan() {
                f64::INFINITY
            } else {
                (x - y).abs() / (atol + rtol * y.abs())
            }
        })
        .fold(0.0, f64::max))
}

/// (atol, rtol) for f64 results against the f64 reference.
const F64_TOL: (f64, f64) = (1e-13, 1e-11);

/// Largest `|a - truth|` over the tensor, relative to `max(1, max |truth|)`.
fn max_err(a: &Tensor, truth: &Tensor) -> Result<f64> {
    let a = a.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let t = truth.flatten_all()?.to_vec1::<f64>()?;
    let scale = t.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    Ok(a.iter()
        .zip(&t)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / scale)
}

/// f32 results: the fused op and the primitive-op reference both run in f32 and are scored
/// against the reference in f64 on the same (f32-rounded) inputs. The fused op must be about
/// as accurate as the reference, or within a few f32 ulps of the truth: a fixed tolerance
/// would not do, since the reference's own f32 error grows with the row sums (log-softmax's
/// backward cancels `sum(g)` through the row maximum).
fn assert_f32_as_accurate(
    what: &str,
    fused: &Tensor,
    reference: &Tensor,
    truth: &Tensor,
) -> Result<()> {
    let (ef, er) = (max_err(fused, truth)?, max_err(reference, truth)?);
    assert!(
        ef <= (2.0 * er).max(4e-6),
        "{what}: fused f32 error {ef:e} against the reference's {er:e}"
    );
    Ok(())
}

/// `sum(f(x) * r)` for a fixed random `r`, so that the gradient reaching `f` is `r`. `r` is
/// rounded to f32 first, so that an f32 run and its f64 check see the same weights.
fn weighted_sum(y: &Tensor, seed: f64) -> Result<Tensor> {
    let r = tensor(y.dims(), seed, 2.0, 0.1, DType::F32)?.to_dtype(y.dtype())?;
    (y * r)?.sum_all()
}

/// Value and input gradient of `f` at `x`.
fn value_and_grad(f: Op1, x: &Tensor) -> Result<(Tensor, Tensor)> {
    let v = Var::from_tensor(x)?;
    let y = f(v.as_tensor())?;
    let grads = weighted_sum(&y, 7.0)?.backward()?;
    let g = grads
        .get(v.as_tensor())
        .expect("the input has a gradient")
        .clone();
    Ok((y, g))
}

#[test]
fn unary_ops_match_reference() -> Result<()> {
    for &(name, fused, reference, gelu_tol) in UNARY {
        for dtype in [DType::F32, DType::F64] {
            let (atol, rtol) = F64_TOL;
            for (i, shape) in SHAPES.iter().enumerate() {
                // The softmaxes also see rows of large magnitude (|x| up to 3e4).
                let scales: &[(f64, f64)] = if name.contains("softmax") {
                    &[(6.0, 0.0), (3e4, 1e4)]
                } else {
                    &[(8.0, 0.0)]
                };
                for &(scale, shift) in scales {
                    let x = tensor(shape, i as f64, scale, shift, dtype)?;
                    assert!(cxr_ops::is_fused(&x));
                    let (y, g) = value_and_grad(fused, &x)?;
                    let (y_ref, g_ref) = value_and_grad(reference, &x)?;
                    let what = format!("{name} {dtype:?} {shape:?} x{scale}");
                    if dtype == DType::F32 {
                        let (y64, g64) = value_and_grad(reference, &x.to_dtype(DType::F64)?)?;
                        assert_f32_as_accurate(&format!("{what} value"), &y, &y_ref, &y64)?;
                        assert_f32_as_accurate(&format!("{what} grad"), &g, &g_ref, &g64)?;
                        continue;
                    }
                    let ey = rel_err(&y, &y_ref, atol, rtol)?;
                    let eg = rel_err(&g, &g_ref, atol * gelu_tol, rtol * gelu_tol)?;
                    assert!(ey <= 1.0, "{what}: value error {ey}");
                    assert!(eg <= 1.0, "{what}: grad error {eg}");
                }
            }
        }
    }
    Ok(())
}

/// Value and gradients (x, weight, bias) of a LayerNorm.
type LnFn = fn(&Tensor, &Tensor, &Tensor, f64) -> Result<Tensor>;

fn layer_norm_grads(f: LnFn, x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Vec<Tensor>> {
    let vars = [x, w, b].map(|t| Var::from_tensor(t).unwrap());
    let y = f(
        vars[0].as_tensor(),
        vars[1].as_tensor(),
        vars[2].as_tensor(),
        1e-5,
    )?;
    let grads = weighted_sum(&y, 7.0)?.backward()?;
    let mut out = vec![y];
    for v in &vars {
        out.push(
            grads
                .get(v.as_tensor())
                .expect("every input has a gradient")
                .clone(),
        );
    }
    Ok(out)
}

#[test]
fn layer_norm_matches_reference() -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        let (atol, rtol) = F64_TOL;
        for (i, shape) in SHAPES.iter().enumerate() {
            let dim = *shape.last().unwrap();
            // An offset mean and spread, as a residual stream has.
            let x = tensor(shape, i as f64, 6.0, 1.5, dtype)?;
            let w = tensor(&[dim], 11.0 + i as f64, 1.0, 1.0, dtype)?;
            let b = tensor(&[dim], 21.0 + i as f64, 1.0, 0.0, dtype)?;
            let ours = layer_norm_grads(cxr_ops::layer_norm, &x, &w, &b)?;
            let theirs = layer_norm_grads(cxr_ops::reference::layer_norm, &x, &w, &b)?;
            let names = ["y", "dx", "dweight", "dbias"];
            if dtype == DType::F32 {
                let [x, w, b] = [&x, &w, &b].map(|t| t.to_dtype(DType::F64).unwrap());
                let truth = layer_norm_grads(cxr_ops::reference::layer_norm, &x, &w, &b)?;
                for (k, what) in names.iter().enumerate() {
                    let what = format!("layer_norm F32 {shape:?} {what}");
                    assert_f32_as_accurate(&what, &ours[k], &theirs[k], &truth[k])?;
                }
                continue;
            }
            for (what, (a, r)) in names.iter().zip(ours.iter().zip(&theirs)) {
                // dweight / dbias sum over rows: allow for the summation order.
                let e = rel_err(a, r, atol * 4.0, rtol * 4.0)?;
                assert!(e <= 1.0, "layer_norm {dtype:?} {shape:?} {what}: error {e}");
            }
        }
    }
    Ok(())
}

/// Central differences of `sum(f(x) * r)` in f64 against the analytic gradient of the fused op.
fn check_fd(
    name: &str,
    f: &dyn Fn(&Tensor) -> Result<Tensor>,
    x: &Tensor,
    g: &Tensor,
) -> Result<()> {
    let h = 1e-6;
    let xs = x.flatten_all()?.to_vec1::<f64>()?;
    let gs = g.flatten_all()?.to_vec1::<f64>()?;
    for k in 0..xs.len() {
        let at = |d: f64| -> Result<f64> {
            let mut v = xs.clone();
            v[k] += d;
            let t = Tensor::from_vec(v, x.dims(), &Device::Cpu)?;
            weighted_sum(&f(&t)?, 7.0)?.to_scalar::<f64>()
        };
        let fd = (at(h)? - at(-h)?) / (2.0 * h);
        let err = (fd - gs[k]).abs();
        assert!(
            err <= 1e-7 + 1e-6 * gs[k].abs(),
            "{name}: element {k}: finite difference {fd} vs gradient {}",
            gs[k]
        );
    }
    Ok(())
}

#[test]
fn unary_gradients_match_finite_differences() -> Result<()> {
    for &(name, fused, _, _) in UNARY {
        for shape in [&[3usize, 7][..], &[2, 1]] {
            let x = tensor(shape, 5.0, 6.0, 0.0, DType::F64)?;
            let (_, g) = value_and_grad(fused, &x)?;
            check_fd(name, &fused, &x, &g)?;
        }
    }
    Ok(())
}

#[test]
fn layer_norm_gradients_match_finite_differences() -> Result<()> {
    let x = tensor(&[3, 7], 1.0, 4.0, 0.5, DType::F64)?;
    let w = tensor(&[7], 2.0, 1.0, 1.0, DType::F64)?;
    let b = tensor(&[7], 3.0, 1.0, 0.0, DType::F64)?;
    let grads = layer_norm_grads(cxr_ops::layer_norm, &x, &w, &b)?;
    check_fd(
        "layer_norm dx",
        &|t| cxr_ops::layer_norm(t, &w, &b, 1e-5),
        &x,
        &grads[1],
    )?;
    check_fd(
        "layer_norm dweight",
        &|t| cxr_ops::layer_norm(&x, t, &b, 1e-5),
        &w,
        &grads[2],
    )?;
    check_fd(
        "layer_norm dbias",
        &|t| cxr_ops::layer_norm(&x, &w, t, 1e-5),
        &b,
        &grads[3],
    )?;
    Ok(())
}

#[test]
fn non_contiguous_inputs_are_handled() -> Result<()> {
    // A transposed [7, 5] is a non-contiguous [5, 7]: the ops copy it first, and the gradient
    // still reaches the original layout.
    let base = tensor(&[7, 5], 4.0, 5.0, 0.0, DType::F32)?;
    for &(name, fused, reference, _) in UNARY {
        let run = |f: Op1| -> Result<(Tensor, Tensor)> {
            let v = Var::from_tensor(&base)?;
            let y = f(&v.as_tensor().t()?)?;
            let g = weighted_sum(&y, 1.0)?.backward()?;
            Ok((y, g.get(v.as_tensor()).unwrap().clone()))
        };
        let (y, g) = run(fused)?;
        let (yr, gr) = run(reference)?;
        assert!(rel_err(&y, &yr, 2e-6, 2e-5)? <= 1.0, "{name}: values");
        assert!(rel_err(&g, &gr, 2e-6, 2e-5)? <= 1.0, "{name}: gradients");
    }
    let w = tensor(&[7], 1.0, 1.0, 1.0, DType::F32)?;
    let b = tensor(&[7], 2.0, 1.0, 0.0, DType::F32)?;
    let y = cxr_ops::layer_norm(&base.t()?, &w, &b, 1e-5)?;
    let yr = cxr_ops::reference::layer_norm(&base.t()?.contiguous()?, &w, &b, 1e-5)?;
    assert!(rel_err(&y, &yr, 2e-6, 2e-5)? <= 1.0, "layer_norm: values");
    Ok(())
}

#[test]
fn bf16_falls_back_to_the_reference_formula() -> Result<()> {
    let x = tensor(&[3, 77], 9.0, 6.0, 0.0, DType::BF16)?;
    assert!(!cxr_ops::is_fused(&x));
    for &(name, fused, reference, _) in UNARY {
        let a = fused(&x)?.to_dtype(DType::F32)?;
        let b = reference(&x)?.to_dtype(DType::F32)?;
        let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(diff, 0.0, "{name}: bf16 must run the reference formula");
    }
    // A bf16 input with f32 parameters: the reference's broadcast ops report the mismatch.
    let w = Tensor::ones(77, DType::F32, &Device::Cpu)?;
    assert!(cxr_ops::layer_norm(&x, &w, &w.zeros_like()?, 1e-5).is_err());
    Ok(())
}

#[test]
fn results_do_not_depend_on_the_thread_count() -> Result<()> {
    // Enough rows for several work items, so the LayerNorm parameter gradients combine
    // partial sums from different threads.
    let x = tensor(&[200, 768], 1.0, 6.0, 1.5, DType::F32)?;
    let w = tensor(&[768], 2.0, 1.0, 1.0, DType::F32)?;
    let b = tensor(&[768], 3.0, 1.0, 0.0, DType::F32)?;
    let run = |threads: usize| -> Vec<Vec<f32>> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut out: Vec<Vec<f32>> = layer_norm_grads(cxr_ops::layer_norm, &x, &w, &b)
                .unwrap()
                .iter()
                .map(|t| t.flatten_all().unwrap().to_vec1().unwrap())
                .collect();
            let (y, g) = value_and_grad(cxr_ops::softmax_last_dim, &x).unwrap();
            out.push(y.flatten_all().unwrap().to_vec1().unwrap());
            out.push(g.flatten_all().unwrap().to_vec1().unwrap());
            out
        })
    };
    assert_eq!(run(1), run(3));
    Ok(())
}
