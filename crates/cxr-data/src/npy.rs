//! NumPy `.npy` files, the workspace's one codec for them: the preprocessed tensors handed to
//! Python, the committed goldens, embedding matrices and the inputs of `cargo xtask cluster`.
//!
//! - [`read`] takes format 1.0-3.0 files holding little-endian `u1`, `f2`, `f4` or `f8` values in
//!   C or Fortran order and returns the shape and the values in C order as f32 or f64
//!   (an `f8` file only as f64: f32 would round it).
//! - [`write`] writes an f32 (`<f4`) or f64 (`<f8`) array in C order, format 1.0, header padded
//!   to 64 bytes as numpy does.
//!
//! Every error names the file.

use std::path::Path;

use crate::{DataError, Result};

/// An element type that `.npy` arrays are read into and written from: `f32` or `f64`.
pub trait Element: Copy + sealed::Sealed {
    /// numpy's `descr` of the arrays [`write`] produces.
    const DESCR: &'static str;
    /// Whether float64 files are read without loss.
    const HOLDS_F64: bool;
    fn from_f32(v: f32) -> Self;
    /// Only called when [`Element::HOLDS_F64`].
    fn from_f64(v: f64) -> Self;
    fn put_le(self, out: &mut Vec<u8>);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl Element for f32 {
    const DESCR: &'static str = "<f4";
    const HOLDS_F64: bool = false;
    fn from_f32(v: f32) -> Self {
        v
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Element for f64 {
    const DESCR: &'static str = "<f8";
    const HOLDS_F64: bool = true;
    fn from_f32(v: f32) -> Self {
        f64::from(v)
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// The stored element types [`read`] understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dtype {
    U1,
    F2,
    F4,
    F8,
}

impl Dtype {
    fn parse(descr: &str) -> Option<Self> {
        Some(match descr {
            "|u1" | "<u1" => Dtype::U1,
            "<f2" => Dtype::F2,
            "<f4" => Dtype::F4,
            "<f8" => Dtype::F8,
            _ => return None,
        })
    }

    fn width(self) -> usize {
        match self {
            Dtype::U1 => 1,
            Dtype::F2 => 2,
            Dtype::F4 => 4,
            Dtype::F8 => 8,
        }
    }
}

fn bad(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Write `data`, an array of `shape` in C order, as `<f4` (f32) or `<f8` (f64).
pub fn write<T: Element>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(DataError::InvalidParam(format!(
            "writing {}: shape {shape:?} holds {n} values, got {}",
            path.display(),
            data.len()
        )));
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = if shape.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_txt}, }}",
        T::DESCR
    );
    // magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64
    let pad = (64 - (10 + header.len() + 1) % 64) % 64;
    header.push_str(&" ".repeat(pad));
    header.push('\n');
    let header_len = u16::try_from(header.len()).map_err(|_| {
        bad(
            path,
            format!("{} dimensions do not fit a header", shape.len()),
        )
    })?;
    let mut out = Vec::with_capacity(10 + header.len() + std::mem::size_of_val(data));
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &v in data {
        v.put_le(&mut out);
    }
    std::fs::write(path, out).map_err(|e| DataError::io(path, e))
}

/// Read an array as `T` values in C order, with its shape (see the module doc for what is read).
pub fn read<T: Element>(path: &Path) -> Result<(Vec<usize>, Vec<T>)> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let (header, body) = split_header(&bytes).map_err(|m| bad(path, m))?;
    let descr = quoted(field(header, "descr").ok_or_else(|| bad(path, "no descr in header"))?)
        .ok_or_else(|| bad(path, "descr is not a quoted string"))?;
    let dtype = Dtype::parse(descr).ok_or_else(|| {
        bad(
            path,
            format!(
                "unsupported dtype '{descr}': save little-endian float16, float32, float64 or uint8"
            ),
        )
    })?;
    if dtype == Dtype::F8 && !T::HOLDS_F64 {
        return Err(bad(
            path,
            "float64 data: read it as f64, f32 would round it",
        ));
    }
    let fortran = field(header, "fortran_order")
        .ok_or_else(|| bad(path, "no fortran_order in header"))?
        .starts_with("True");
    let shape = parse_shape(header).map_err(|m| bad(path, m))?;
    let needed = shape
        .iter()
        .try_fold(dtype.width(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(path, format!("shape {shape:?} is too large to address")))?;
    let body = body.get(..needed).ok_or_else(|| {
        bad(
            path,
            format!(
                "{} data bytes, shape {shape:?} of '{descr}' needs {needed}",
                body.len(),
            ),
        )
    })?;
    let vals: Vec<T> = match dtype {
        Dtype::U1 => body.iter().map(|&b| T::from_f32(f32::from(b))).collect(),
        Dtype::F2 => body
            .chunks_exact(2)
            .map(|c| T::from_f32(f16_to_f32(u16::from_le_bytes([c[0], c[1]]))))
            .collect(),
        Dtype::F4 => body
            .chunks_exact(4)
            .map(|c| T::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        Dtype::F8 => body
            .chunks_exact(8)
            .map(|c| T::from_f64(f64::from_le_bytes(c.try_into().expect("8 bytes"))))
            .collect(),
    };
    let vals = if fortran {
        fortran_to_c(&shape, &vals)
    } else {
        vals
    };
    Ok((shape, vals))
}

/// [`read`] as f32 values.
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    read(path)
}

/// [`write`] of f32 values.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    write(path, shape, data)
}

/// The header text (the dict) and the data bytes after it.
fn split_header(bytes: &[u8]) -> std::result::Result<(&str, &[u8]), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        2 | 3 => return Err("truncated header".into()),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes.get(start..start + hlen).ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not UTF-8")?;
    Ok((header, &bytes[start + hlen..]))
}

/// The text after `'key':` in the header dict.
fn field<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let i = header.find(&format!("'{key}'"))?;
    let rest = header[i + key.len() + 2..].trim_start();
    Some(rest.strip_prefix(':')?.trim_start())
}

/// The contents of the quoted string at the start of `s`.
fn quoted(s: &str) -> Option<&str> {
    let q = s.chars().next().filter(|&c| c == '\'' || c == '"')?;
    s[1..].split(q).next()
}

fn parse_shape(header: &str) -> std::result::Result<Vec<usize>, String> {
    let s = field(header, "shape").ok_or("no shape in header")?;
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| format!("shape is not a tuple: {s:?}"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|d| d.parse().map_err(|_| format!("bad shape ({inner})")))
        .collect()
}

/// Reorder a Fortran-order array of `shape` (first axis fastest) into C order.
fn fortran_to_c<T: Copy>(shape: &[usize], f: &[T]) -> Vec<T> {
    if shape.len() < 2 || f.is_empty() {
        return f.to_vec();
    }
    let mut strides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    let mut out = Vec::with_capacity(f.len());
    let mut idx = vec![0usize; shape.len()];
    let mut off = 0;
    for _ in 0..f.len() {
        out.push(f[off]);
        // Next C-order index: the last axis moves fastest.
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            off += strides[k];
            if idx[k] < shape[k] {
                break;
            }
            off -= strides[k] * shape[k];
            idx[k] = 0;
        }
    }
    out
}

/// IEEE half to single precision.
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // subnormal: value = f * 2^-24
            return if sign != 0 {
                -(f as f32) * 2f32.powi(-24)
            } else {
                f as f32 * 2f32.powi(-24)
            };
        }
        (31, 0) => sign | 0x7f80_0000,
        (31, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 1.0 file with this header dict and data, as numpy lays it out.
    fn raw(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut h = dict.to_string();
        h.push_str(&" ".repeat((64 - (10 + h.len() + 1) % 64) % 64));
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn f32_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        write(&p, &[2, 3, 4], &data).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!((bytes.len() - 4 * 24) % 64, 0);
        assert_eq!(read_f32(&p).unwrap(), (vec![2, 3, 4], data.clone()));
        // f32 data read as f64 is exact.
        let (_, wide) = read::<f64>(&p).unwrap();
        assert!(wide.iter().zip(&data).all(|(&w, &v)| w == f64::from(v)));
        let e = write(&p, &[5], &[1f32]).unwrap_err().to_string();
        assert!(e.contains("a.npy") && e.contains("holds 5 values"), "{e}");
    }

    #[test]
    fn f64_round_trip_and_no_silent_narrowing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.npy");
        let data: Vec<f64> = (0..7).map(|i| (i as f64).sqrt() / 3.0).collect();
        write(&p, &[7], &data).unwrap();
        assert_eq!((std::fs::read(&p).unwrap().len() - 8 * 7) % 64, 0);
        assert_eq!(read::<f64>(&p).unwrap(), (vec![7], data));
        let e = read::<f32>(&p).unwrap_err().to_string();
        assert!(e.contains("b.npy") && e.contains("float64"), "{e}");
        // A 0-d array.
        write(&p, &[], &[2.5f64]).unwrap();
        assert_eq!(read::<f64>(&p).unwrap(), (vec![], vec![2.5]));
    }

    #[test]
    fn reads_half_precision() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.npy");
        // 1, -2, 1/3 rounded to half, the smallest subnormal, -inf.
        let halves: [u16; 5] = [0x3c00, 0xc000, 0x3555, 0x0001, 0xfc00];
        let data: Vec<u8> = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
        let dict = "{'descr': '<f2', 'fortran_order': False, 'shape': (5,), }";
        std::fs::write(&p, raw(dict, &data)).unwrap();
        let want = [1.0, -2.0, 0.333_251_95, 2f32.powi(-24), f32::NEG_INFINITY];
        assert_eq!(read_f32(&p).unwrap(), (vec![5], want.to_vec()));
        let (_, wide) = read::<f64>(&p).unwrap();
        assert_eq!(wide, want.map(f64::from).to_vec());
        // A committed fixture written by numpy.
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/preprocess/portrait_clip_c0_f16.npy");
        let (shape, v) = read_f32(&fixture).unwrap();
        assert_eq!((shape, v.len()), (vec![224, 224], 224 * 224));
    }

    #[test]
    fn reads_fortran_order() {
        // numpy.asfortranarray(np.array([[1, 2, 3], [4, 5, 6]], dtype='<f4')) saved by np.save.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.npy");
        let data: Vec<u8> = [1f32, 4., 2., 5., 3., 6.]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
        std::fs::write(&p, raw(dict, &data)).unwrap();
        assert_eq!(
            read::<f64>(&p).unwrap(),
            (vec![2, 3], vec![1., 2., 3., 4., 5., 6.])
        );
        // Three axes: element (i, j, k) sits at i + 2 j + 4 k in Fortran order.
        let f: Vec<usize> = (0..8).collect();
        let c = fortran_to_c(&[2, 2, 2], &f);
        assert_eq!(c, vec![0, 4, 2, 6, 1, 5, 3, 7]);
    }

    #[test]
    fn bad_files_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.npy");
        let cases: [(Vec<u8>, &str); 6] = [
            (b"nope".to_vec(), "bad magic"),
            (
                raw("{'fortran_order': False, 'shape': (1,), }", &[0; 4]),
                "no descr",
            ),
            (
                raw(
                    "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
                    &[0; 8],
                ),
                "unsupported dtype '<i8'",
            ),
            (
                raw(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (x,), }",
                    &[0; 4],
                ),
                "bad shape",
            ),
            (
                raw(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                    &[0; 8],
                ),
                "needs 12",
            ),
            (
                b"\x93NUMPY\x01\x00\xff\x00{'descr'".to_vec(),
                "truncated header",
            ),
        ];
        for (bytes, want) in cases {
            std::fs::write(&p, bytes).unwrap();
            let e = read_f32(&p).unwrap_err().to_string();
            assert!(
                e.contains("bad.npy") && e.contains(want),
                "{e} (want {want})"
            );
        }
    }
}
