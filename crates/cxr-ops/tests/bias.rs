//! `add_bias` against candle's `broadcast_add`: the same values, the same input gradient, and
//! a bias gradient equal to the f64 column sums (the fused path sums through gemm, in another
//! order).

use candle_core::{DType, Device, Result, Tensor, Var};
use cxr_ops::add_bias;

fn inputs(dims: &[usize], bias_dims: &[usize], dtype: DType) -> Result<(Var, Var)> {
    let dev = Device::Cpu;
    let n: usize = dims.iter().product();
    let m: usize = bias_dims.iter().product();
    let x: Vec<f64> = (0..n)
        .map(|i| ((i * 37 % 101) as f64 - 50.0) / 7.0)
        .collect();
    let b: Vec<f64> = (0..m).map(|i| ((i * 13 % 17) as f64 - 8.0) / 3.0).collect();
    let x = Tensor::from_vec(x, dims, &dev)?.to_dtype(dtype)?;
    let b = Tensor::from_vec(b, bias_dims, &dev)?.to_dtype(dtype)?;
    Ok((Var::from_tensor(&x)?, Var::from_tensor(&b)?))
}

/// Values and gradients of `sum(w * f(x, b))` for a fixed non-uniform weight `w`.
fn run(
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
    x: &Var,
    b: &Var,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let y = f(x.as_tensor(), b.as_tensor())?;
    let n = y.elem_count();
    let w: Vec<f64> = (0..n).map(|i| ((i * 7 % 23) as f64 - 11.0) / 5.0).collect();
    let w = Tensor::from_vec(w, y.shape(), y.device())?.to_dtype(y.dtype())?;
    let grads = (&y * &w)?.sum_all()?.backward()?;
    let flat =
        |t: &Tensor| -> Result<Vec<f64>> { t.flatten_all()?.to_dtype(DType::F64)?.to_vec1() };
    let gx = grads.get(x.as_tensor()).expect("x gradient");
    let gb = grads.get(b.as_tensor()).expect("bias gradient");
    Ok((flat(&y)?, flat(gx)?, flat(gb)?))
}

#[test]
fn matches_broadcast_add() -> Result<()> {
    for (dims, bias_dims) in [
        (vec![1600, 7], vec![7]),
        (vec![3, 50, 77], vec![77]),
        (vec![4, 5, 6], vec![5, 6]),
        (vec![1, 1], vec![1]),
    ] {
        for dtype in [DType::F32, DType::F64] {
            let (x, b) = inputs(&dims, &bias_dims, dtype)?;
            let ours = run(add_bias, &x, &b)?;
            let theirs = run(|x, b| x.broadcast_add(b), &x, &b)?;
            // f64 truth of the bias gradient, whatever the dtype.
            let (x64, b64) = inputs(&dims, &bias_dims, DType::F64)?;
            let truth = run(|x, b| x.broadcast_add(b), &x64, &b64)?;
            assert_eq!(ours.0, theirs.0, "{dims:?} {dtype:?}: values");
            assert_eq!(ours.1, theirs.1, "{dims:?} {dtype:?}: input gradient");
            let rows = (x.elem_count() / b.elem_count()) as f64;
            // Each bias gradient is a sum of `rows` terms of magnitude <= 2.2; the f32 bound is
            // a few ulps of that sum's scale.
            let tol = match dtype {
                DType::F32 => 4.0 * f32::EPSILON as f64 * rows * 2.2,
                _ => 1e-12 * rows,
            };
            for (i, (o, t)) in ours.2.iter().zip(&truth.2).enumerate() {
                assert!(
                    (o - t).abs() <= tol,
                    "{dims:?} {dtype:?}: dbias[{i}] {o} vs {t}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn other_shapes_and_dtypes_are_broadcast_add() -> Result<()> {
    // A bias that is not a trailing block of x (a column), and a bf16 pair: both are candle's
    // broadcast_add, gradients included.
    let (x, b) = inputs(&[4, 3], &[4, 1], DType::F32)?;
    assert_eq!(
        run(add_bias, &x, &b)?,
        run(|x, b| x.broadcast_add(b), &x, &b)?
    );
    let (x, b) = inputs(&[6, 5], &[5], DType::BF16)?;
    assert_eq!(
        run(add_bias, &x, &b)?,
        run(|x, b| x.broadcast_add(b), &x, &b)?
    );
    // A bias that fits nothing is candle's shape error, not a panic.
    let (x, b) = inputs(&[6, 5], &[4], DType::F32)?;
    assert!(add_bias(x.as_tensor(), b.as_tensor()).is_err());
    Ok(())
}

#[test]
fn non_contiguous_input() -> Result<()> {
    let (x, b) = inputs(&[5, 8], &[5], DType::F32)?;
    let xt = x.as_tensor().t()?;
    let ours = add_bias(&xt, b.as_tensor())?;
    let theirs = xt.broadcast_add(b.as_tensor())?;
    assert_eq!(ours.to_vec2::<f32>()?, theirs.to_vec2::<f32>()?);
    Ok(())
}
