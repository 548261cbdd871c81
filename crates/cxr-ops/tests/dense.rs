//! `dense` against the unfused `add_bias(x.matmul(weight.t()))`: the same values bit for bit,
//! gradients equal to the f64 unfused ones within rounding and to central differences, and
//! gradients that carry no graph (a variable's gradient with a graph would keep the
//! activations it was computed from alive for as long as the gradients are kept).

use candle_core::{DType, Device, Result, Tensor, Var};
use cxr_ops::{add_bias, dense};

fn values(n: usize, seed: usize, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|i| (((i * 37 + seed * 11) % 101) as f64 - 50.0) / 50.0 * scale)
        .collect()
}

/// `x [rows, input]`, `weight [output, input]`, `bias [output]` as variables.
fn inputs(rows: usize, input: usize, output: usize, dtype: DType) -> Result<[Var; 3]> {
    let dev = Device::Cpu;
    let t = |v: Vec<f64>, dims: &[usize]| -> Result<Var> {
        Var::from_tensor(&Tensor::from_vec(v, dims, &dev)?.to_dtype(dtype)?)
    };
    Ok([
        t(values(rows * input, 1, 2.0), &[rows, input])?,
        t(values(output * input, 2, 0.5), &[output, input])?,
        t(values(output, 3, 1.0), &[output])?,
    ])
}

fn unfused(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    add_bias(&x.matmul(&w.t()?)?, b)
}

/// Values and the gradients of `sum(m * f(x, w, b))` for a fixed non-uniform `m`; with
/// `untracked`, asserts that no gradient tracks an op (candle's own matmul does not promise
/// that: the input gradient of `x @ weight^T` for a variable `x` keeps the product's graph).
fn run(
    f: impl Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>,
    vars: &[Var; 3],
    untracked: bool,
) -> Result<[Vec<f64>; 4]> {
    let [x, w, b] = vars;
    let y = f(x.as_tensor(), w.as_tensor(), b.as_tensor())?;
    let m = Tensor::from_vec(values(y.elem_count(), 4, 1.5), y.shape(), y.device())?
        .to_dtype(y.dtype())?;
    let grads = (&y * &m)?.sum_all()?.backward()?;
    let flat =
        |t: &Tensor| -> Result<Vec<f64>> { t.flatten_all()?.to_dtype(DType::F64)?.to_vec1() };
    let mut out = [flat(&y)?, Vec::new(), Vec::new(), Vec::new()];
    for (slot, v) in out[1..].iter_mut().zip(vars) {
        let g = grads
            .get(v.as_tensor())
            .expect("a gradient for every input");
        assert!(!(untracked && g.track_op()), "a gradient carries a graph");
        *slot = flat(g)?;
    }
    Ok(out)
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

#[test]
fn values_are_the_unfused_ones_and_gradients_agree() -> Result<()> {
    for (rows, input, output) in [(50, 24, 40), (1, 1, 1), (130, 7, 3)] {
        let truth = run(unfused, &inputs(rows, input, output, DType::F64)?, false)?;
        for dtype in [DType::F32, DType::F64] {
            let vars = inputs(rows, input, output, dtype)?;
            let ours = run(dense, &vars, true)?;
            let theirs = run(unfused, &vars, false)?;
            assert_eq!(
                ours[0], theirs[0],
                "{rows}x{input}x{output} {dtype:?}: values"
            );
            // dx, dweight, dbias: sums of `output`, `rows` and `rows` products of terms of
            // magnitude <= 2 and <= 1.5, summed in another order than the unfused path.
            let eps = match dtype {
                DType::F32 => f32::EPSILON as f64,
                _ => f64::EPSILON,
            };
            for (k, (name, terms)) in [("dx", output), ("dweight", rows), ("dbias", rows)]
                .into_iter()
                .enumerate()
            {
                let tol = 4.0 * eps * terms as f64 * 3.0 + 1e-300;
                let (o, t) = (&ours[k + 1], &truth[k + 1]);
                assert_eq!(o.len(), t.len());
                for (i, (a, b)) in o.iter().zip(t).enumerate() {
                    assert!(
                        (a - b).abs() <= tol,
                        "{rows}x{input}x{output} {dtype:?}: {name}[{i}] {a} vs {b} (tol {tol:e})"
                    );
                }
                assert!(
                    max_abs(t) > 0.0,
                    "{name} is all zero: the check would be empty"
                );
            }
        }
    }
    Ok(())
}

/// Central differences of `sum(m * dense(x, w, b))` in f64 against the op's gradients.
#[test]
fn gradients_match_central_differences() -> Result<()> {
    let (rows, input, output) = (5, 4, 3);
    let vars = inputs(rows, input, output, DType::F64)?;
    let ours = run(dense, &vars, true)?;
    let m = Tensor::from_vec(values(rows * output, 4, 1.5), (rows, output), &Device::Cpu)?;
    let h = 1e-6;
    for which in 0..3 {
        let base: Vec<f64> = vars[which].as_tensor().flatten_all()?.to_vec1()?;
        for i in 0..base.len() {
            let at = |delta: f64| -> Result<f64> {
                let mut v = base.clone();
                v[i] += delta;
                let mut t: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().detach()).collect();
                t[which] = Tensor::from_vec(v, vars[which].shape(), &Device::Cpu)?;
                (dense(&t[0], &t[1], &t[2])? * &m)?
                    .sum_all()?
                    .to_scalar::<f64>()
            };
            let numeric = (at(h)? - at(-h)?) / (2.0 * h);
            let analytic = ours[which + 1][i];
            assert!(
                (numeric - analytic).abs() <= 1e-6 * (1.0 + analytic.abs()),
                "input {which}[{i}]: {analytic} vs central difference {numeric}"
            );
        }
    }
    Ok(())
}

#[test]
fn other_dtypes_and_shapes_are_the_unfused_expression() -> Result<()> {
    // bf16 is not fused: candle's ops, gradients included.
    let vars = inputs(6, 5, 4, DType::BF16)?;
    let [x, w, b] = &vars;
    let y = dense(x.as_tensor(), w.as_tensor(), b.as_tensor())?;
    let z = unfused(x.as_tensor(), w.as_tensor(), b.as_tensor())?;
    assert_eq!(
        y.to_dtype(DType::F32)?.to_vec2::<f32>()?,
        z.to_dtype(DType::F32)?.to_vec2::<f32>()?
    );
    // Mismatched shapes are candle's shape error, not a panic.
    let [x, _, b] = inputs(6, 5, 4, DType::F32)?;
    let w = Var::from_tensor(&Tensor::zeros((4, 6), DType::F32, &Device::Cpu)?)?;
    assert!(dense(x.as_tensor(), w.as_tensor(), b.as_tensor()).is_err());
    Ok(())
}
