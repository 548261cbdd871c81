//! Image decoding and the two preprocessing pipelines.
//!
//! - CheXzero (`preprocess` in CheXzero's `data_process.py`, then its eval transforms): resize
//!   the longest side to 320 with Pillow's LANCZOS, paste centred on a black 320x320 canvas,
//!   then bicubic-resize to `size` (torchvision `Resize(224, BICUBIC)`, antialiased), repeat to
//!   3 channels and normalise with mean 101.48761 / std 83.43944 on the 0-255 scale.
//! - CLIP (OpenAI / open_clip `_transform`): bicubic-resize the shortest side to `size`
//!   (Pillow), centre-crop `size` x `size`, scale to 0-1 and normalise with CLIP's RGB mean/std.
//!
//! The resampler reproduces Pillow's separable convolution (`Resample.c`: same support,
//! centre and normalisation; fixed-point arithmetic with 22 precision bits for 8-bit images),
//! so geometry matches Pillow up to JPEG decoder rounding.

use std::path::Path;

use image::GrayImage;

use crate::{DataError, Result};

/// CheXzero's normalisation on the 0-255 scale.
pub const CHEXZERO_MEAN: f32 = 101.487_61;
pub const CHEXZERO_STD: f32 = 83.439_44;
/// OpenAI CLIP's per-channel normalisation on the 0-1 scale.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];
/// CheXzero pads every image to this square before the model resize.
pub const CHEXZERO_PAD: u32 = 320;

/// Which published preprocessing to follow.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum PreprocessMode {
    #[default]
    CheXzero,
    Clip,
}

/// A preprocessing pipeline and its output side length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Preprocess {
    pub mode: PreprocessMode,
    pub size: u32,
}

impl Default for Preprocess {
    fn default() -> Self {
        Self {
            mode: PreprocessMode::CheXzero,
            size: 224,
        }
    }
}

impl Preprocess {
    /// CheXzero pipeline ending at `size` x `size`.
    pub fn chexzero(size: u32) -> Self {
        Self {
            mode: PreprocessMode::CheXzero,
            size,
        }
    }
    /// CLIP pipeline ending at `size` x `size`.
    pub fn clip(size: u32) -> Self {
        Self {
            mode: PreprocessMode::Clip,
            size,
        }
    }
}

/// Decode a JPEG or PNG (8- or 16-bit; gray, gray+alpha or RGB) into 8-bit grayscale.
/// 16-bit samples are scaled to 0-255; colour uses Pillow's `convert("L")` weights.
pub fn load_gray(path: &Path) -> Result<GrayImage> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode_gray(&bytes).map_err(|message| DataError::Image {
        path: path.to_path_buf(),
        message,
    })
}

/// [`load_gray`] on bytes already in memory. A JPEG whose last scan has no end-of-image marker
/// is truncated (an interrupted download) and refused, as Pillow refuses it ("image file is
/// truncated"); the decoders would fill the missing part with grey.
pub fn decode_gray(bytes: &[u8]) -> std::result::Result<GrayImage, String> {
    if is_truncated_jpeg(bytes) {
        return Err(format!(
            "truncated JPEG ({} bytes, no end-of-image marker after the image data): \
             download the file again",
            bytes.len()
        ));
    }
    if let Some(g) = decode_gray_jpeg(bytes) {
        return Ok(g);
    }
    let img = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if img.format().is_none() {
        return Err("not a JPEG or PNG file".into());
    }
    let img = img.decode().map_err(|e| e.to_string())?;
    Ok(match img {
        image::DynamicImage::ImageLuma8(g) => g,
        image::DynamicImage::ImageLumaA8(_) | image::DynamicImage::ImageLuma16(_) => img.to_luma8(),
        other => {
            let rgb = other.to_rgb8();
            let (w, h) = rgb.dimensions();
            let data = rgb
                .pixels()
                .map(|p| {
                    let [r, g, b] = p.0;
                    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
                })
                .collect();
            GrayImage::from_raw(w, h, data).expect("buffer size matches")
        }
    })
}

/// Whether `bytes` is a JPEG without an end-of-image marker (`FF D9`) after its first
/// start-of-scan (`FF DA`). Inside entropy-coded data `FF` is always followed by `00` or a
/// restart marker, so neither marker can appear there by chance; an EXIF thumbnail's own
/// `FF D9` comes before the first scan and does not count.
fn is_truncated_jpeg(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xff, 0xd8]) {
        return false;
    }
    let Some(scan) = bytes.windows(2).position(|w| w == [0xff, 0xda]) else {
        return false; // no image data at all: the decoders report that themselves
    };
    !bytes[scan..].windows(2).any(|w| w == [0xff, 0xd9])
}

/// Grayscale JPEGs (MIMIC-CXR-JPG's kind) straight through zune-jpeg, the decoder the `image`
/// crate wraps, with the same options: the same pixels without the wrapper's copies. `None`
/// for anything else, or on any error (the general path then reports it).
fn decode_gray_jpeg(bytes: &[u8]) -> Option<GrayImage> {
    use zune_jpeg::zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options};
    if !bytes.starts_with(&[0xff, 0xd8]) {
        return None;
    }
    let opts = options::DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), opts);
    d.decode_headers().ok()?;
    if d.input_colorspace()? != ColorSpace::Luma {
        return None;
    }
    d.set_options(d.options().jpeg_set_out_colorspace(ColorSpace::Luma));
    let (w, h) = d.dimensions()?;
    let px = d.decode().ok()?;
    GrayImage::from_raw(u32::try_from(w).ok()?, u32::try_from(h).ok()?, px)
}

/// Encode 8-bit grayscale pixels as a baseline JPEG (deterministic for a fixed quality).
pub fn encode_jpeg_gray(pixels: &[u8], w: u32, h: u32, quality: u8) -> Result<Vec<u8>> {
    if pixels.len() != (w as usize) * (h as usize) {
        return Err(DataError::InvalidParam(format!(
            "{} pixels for a {w} x {h} image",
            pixels.len()
        )));
    }
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality)
        .encode(pixels, w, h, image::ExtendedColorType::L8)
        .map_err(|e| DataError::InvalidParam(format!("JPEG encoding failed: {e}")))?;
    Ok(buf)
}

/// The full geometric pipeline of `p`: returns `size * size` u8 pixels, row-major.
pub fn preprocess_u8(img: &GrayImage, p: &Preprocess) -> Vec<u8> {
    let (w, h) = img.dimensions();
    let size = p.size.max(1);
    if w == 0 || h == 0 {
        return vec![0; (size * size) as usize];
    }
    match p.mode {
        PreprocessMode::CheXzero => {
            let padded = chexzero_pad(img.as_raw(), w, h, CHEXZERO_PAD);
            if size == CHEXZERO_PAD {
                return padded;
            }
            let f: Vec<f32> = padded.iter().map(|&v| v as f32).collect();
            let out = resample_f32(&f, CHEXZERO_PAD, CHEXZERO_PAD, size, size, Filter::Bicubic);
            out.iter()
                .map(|&v| v.round().clamp(0.0, 255.0) as u8)
                .collect()
        }
        PreprocessMode::Clip => {
            // torchvision Resize(int): shortest side to `size`, long side int(size * long / short).
            let (nw, nh) = if w <= h {
                (size, ((size as u64 * h as u64) / w as u64) as u32)
            } else {
                (((size as u64 * w as u64) / h as u64) as u32, size)
            };
            let r = resample_u8(img.as_raw(), w, h, nw, nh, Filter::Bicubic);
            // torchvision CenterCrop: top = int(round((h - size) / 2)).
            let top = ((nh - size) as f64 / 2.0).round_ties_even() as u32;
            let left = ((nw - size) as f64 / 2.0).round_ties_even() as u32;
            let mut out = Vec::with_capacity((size * size) as usize);
            for y in top..top + size {
                let row = (y * nw) as usize;
                out.extend_from_slice(&r[row + left as usize..row + (left + size) as usize]);
            }
            out
        }
    }
}

/// CheXzero's `preprocess`: longest side to `pad` with LANCZOS (sizes truncated like Python's
/// `int(x * ratio)`), pasted at the centre of a black `pad` x `pad` canvas.
pub fn chexzero_pad(src: &[u8], w: u32, h: u32, pad: u32) -> Vec<u8> {
    let ratio = pad as f64 / w.max(h) as f64;
    let nw = ((w as f64 * ratio) as u32).clamp(1, pad);
    let nh = ((h as f64 * ratio) as u32).clamp(1, pad);
    let r = resample_u8(src, w, h, nw, nh, Filter::Lanczos);
    let mut out = vec![0u8; (pad * pad) as usize];
    let (ox, oy) = ((pad - nw) / 2, (pad - nh) / 2);
    for y in 0..nh {
        let dst = ((y + oy) * pad + ox) as usize;
        out[dst..dst + nw as usize].copy_from_slice(&r[(y * nw) as usize..((y + 1) * nw) as usize]);
    }
    out
}

/// Normalise `size * size` preprocessed pixels into a 3 x size x size CHW tensor (flat).
pub fn normalise(pixels: &[u8], mode: PreprocessMode) -> Vec<f32> {
    let mut out = Vec::with_capacity(pixels.len() * 3);
    normalise_into(pixels, mode, &mut out);
    out
}

/// [`normalise`] appending to `out` (used to fill batches without reallocating).
pub fn normalise_into(pixels: &[u8], mode: PreprocessMode, out: &mut Vec<f32>) {
    for c in 0..3 {
        match mode {
            PreprocessMode::CheXzero => {
                let inv = 1.0 / CHEXZERO_STD;
                out.extend(pixels.iter().map(|&v| (v as f32 - CHEXZERO_MEAN) * inv));
            }
            PreprocessMode::Clip => {
                let (m, s) = (CLIP_MEAN[c], CLIP_STD[c]);
                out.extend(pixels.iter().map(|&v| (v as f32 / 255.0 - m) / s));
            }
        }
    }
}

/// Pillow's resampling filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Bilinear,
    Bicubic,
    Lanczos,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }
    fn eval(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bilinear => (1.0 - x).max(0.0),
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                if x < 3.0 {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

/// Per output pixel: first input index and normalised weights (Pillow's `precompute_coeffs`).
fn coeffs(in_size: u32, out_size: u32, filter: Filter) -> Vec<(usize, Vec<f64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ss = 1.0 / filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut k: Vec<f64> = (xmin..xmax)
                .map(|x| filter.eval((x as f64 - center + 0.5) * ss))
                .collect();
            let ww: f64 = k.iter().sum();
            if ww != 0.0 {
                k.iter_mut().for_each(|v| *v /= ww);
            }
            (xmin, k)
        })
        .collect()
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn fixed(k: &[(usize, Vec<f64>)]) -> Vec<(usize, Vec<i32>)> {
    let one = (1i64 << PRECISION_BITS) as f64;
    k.iter()
        .map(|(x0, w)| {
            let q = w
                .iter()
                .map(|&v| {
                    if v < 0.0 {
                        (v * one - 0.5) as i32
                    } else {
                        (v * one + 0.5) as i32
                    }
                })
                .collect();
            (*x0, q)
        })
        .collect()
}

fn clip8(ss: i32) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow-exact 8-bit resize (horizontal pass, then vertical, each rounded to u8), with
/// Pillow's 32-bit fixed-point accumulation.
pub fn resample_u8(src: &[u8], w: u32, h: u32, nw: u32, nh: u32, filter: Filter) -> Vec<u8> {
    let half = 1i32 << (PRECISION_BITS - 1);
    let horiz: Vec<u8> = if nw != w {
        let k = fixed(&coeffs(w, nw, filter));
        match SplitKernel::new(&k, w as usize) {
            Some(split) => split.horizontal(src, w as usize, nw as usize),
            None => horizontal_scalar(src, w as usize, nw as usize, &k),
        }
    } else {
        src.to_vec()
    };
    if nh == h {
        return horiz;
    }
    let k = fixed(&coeffs(h, nh, filter));
    let nwu = nw as usize;
    let mut out = vec![0u8; nwu * nh as usize];
    let mut acc = vec![0i32; nwu];
    for ((y0, kk), dst) in k.iter().zip(out.chunks_exact_mut(nwu)) {
        acc.iter_mut().for_each(|a| *a = half);
        for (i, &c) in kk.iter().enumerate() {
            let row = &horiz[(y0 + i) * nwu..(y0 + i + 1) * nwu];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add(v as i32 * c);
            }
        }
        for (o, &a) in dst.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

/// Pillow's horizontal pass as written there (images narrower than the padded kernel).
fn horizontal_scalar(src: &[u8], w: usize, nw: usize, k: &[(usize, Vec<i32>)]) -> Vec<u8> {
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut out = vec![0u8; nw * (src.len() / w)];
    for (row, dst) in src.chunks_exact(w).zip(out.chunks_exact_mut(nw)) {
        for ((x0, kk), o) in k.iter().zip(dst.iter_mut()) {
            let taps = &row[*x0..*x0 + kk.len()];
            let ss = taps
                .iter()
                .zip(kk)
                .fold(half, |acc, (&p, &c)| acc.wrapping_add(p as i32 * c));
            *o = clip8(ss);
        }
    }
    out
}

/// Pillow's fixed-point coefficients of a horizontal pass, each split as `c = hi * 2048 + lo`
/// with `lo` in `0..2048`: both halves fit in i16, so the dot products with u8 pixels vectorise
/// as 16-bit multiply-adds (SSE2 `pmaddwd`), while `(sum p * hi) * 2048 + sum p * lo` is
/// exactly Pillow's 32-bit sum. Every output gets the same padded number of taps (a multiple of
/// 16, zeros outside its kernel), its window moved left where it would pass the row's end.
struct SplitKernel {
    taps: usize,
    x0: Vec<usize>,
    hi: Vec<i16>,
    lo: Vec<i16>,
}

impl SplitKernel {
    fn new(k: &[(usize, Vec<i32>)], w: usize) -> Option<Self> {
        let longest = k.iter().map(|(_, c)| c.len()).max()?;
        let taps = longest.div_ceil(16) * 16;
        if taps > w {
            return None;
        }
        let mut s = Self {
            taps,
            x0: Vec::with_capacity(k.len()),
            hi: vec![0; k.len() * taps],
            lo: vec![0; k.len() * taps],
        };
        for (j, (x0, c)) in k.iter().enumerate() {
            let start = (*x0).min(w - taps);
            let off = x0 - start;
            s.x0.push(start);
            for (i, &v) in c.iter().enumerate() {
                s.hi[j * taps + off + i] = i16::try_from(v >> 11).ok()?;
                s.lo[j * taps + off + i] = (v & 0x7ff) as i16;
            }
        }
        Some(s)
    }

    fn horizontal(&self, src: &[u8], w: usize, nw: usize) -> Vec<u8> {
        #[cfg(target_arch = "x86_64")]
        return sse2::horizontal(self, src, w, nw);
        #[cfg(not(target_arch = "x86_64"))]
        return self.horizontal_portable(src, w, nw);
    }

    /// The same sums in plain Rust (LLVM vectorises them, though less well than `sse2`).
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn horizontal_portable(&self, src: &[u8], w: usize, nw: usize) -> Vec<u8> {
        let half = 1i32 << (PRECISION_BITS - 1);
        let t = self.taps;
        let mut out = vec![0u8; nw * (src.len() / w)];
        for (row, dst) in src.chunks_exact(w).zip(out.chunks_exact_mut(nw)) {
            for (((o, &x0), hi), lo) in dst
                .iter_mut()
                .zip(&self.x0)
                .zip(self.hi.chunks_exact(t))
                .zip(self.lo.chunks_exact(t))
            {
                let px = &row[x0..x0 + t];
                // A plain zipped reduction: the form LLVM turns into pmaddwd (explicit 8-wide
                // chunks are not vectorised).
                let (mut sh, mut sl) = (0i32, 0i32);
                for ((&p, &h), &l) in px.iter().zip(hi).zip(lo) {
                    sh = sh.wrapping_add(i32::from(p) * i32::from(h));
                    sl = sl.wrapping_add(i32::from(p) * i32::from(l));
                }
                *o = clip8(half.wrapping_add(sh.wrapping_mul(2048)).wrapping_add(sl));
            }
        }
        out
    }
}

/// The split-kernel horizontal pass with SSE2 intrinsics (AVX2 where the CPU has it): 16 pixels
/// widened to i16 at a time, four `pmaddwd` per 16 taps (two with AVX2). LLVM does not find this form on its own (its vectorised loop
/// takes four times the multiplies); on the 2500 x 3000 -> 266 x 320 LANCZOS pass SSE2 is
/// about 3x faster than the plain loop.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    use super::{clip8, SplitKernel, PRECISION_BITS};

    pub(super) fn horizontal(k: &SplitKernel, src: &[u8], w: usize, nw: usize) -> Vec<u8> {
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above); the function only reads
            // memory through checked slices.
            #[allow(unsafe_code)]
            return unsafe { horizontal_avx2(k, src, w, nw) };
        }
        baseline(k, src, w, nw)
    }

    /// The SSE2 version, for every x86_64 CPU.
    pub(super) fn baseline(k: &SplitKernel, src: &[u8], w: usize, nw: usize) -> Vec<u8> {
        // SAFETY: SSE2 is part of the x86_64 baseline (every x86_64 CPU has it, and rustc
        // enables it for every x86_64 target), so calling an SSE2 function is always sound;
        // the function itself only reads memory through checked slices.
        #[allow(unsafe_code)]
        unsafe {
            horizontal_sse2(k, src, w, nw)
        }
    }

    /// As [`horizontal_sse2`] with 256-bit vectors: 16 taps per `vpmaddwd` pair.
    #[target_feature(enable = "avx2")]
    fn horizontal_avx2(k: &SplitKernel, src: &[u8], w: usize, nw: usize) -> Vec<u8> {
        let half = 1i32 << (PRECISION_BITS - 1);
        let t = k.taps;
        let mut out = vec![0u8; nw * (src.len() / w)];
        for (row, dst) in src.chunks_exact(w).zip(out.chunks_exact_mut(nw)) {
            for (((o, &x0), hi), lo) in dst
                .iter_mut()
                .zip(&k.x0)
                .zip(k.hi.chunks_exact(t))
                .zip(k.lo.chunks_exact(t))
            {
                let (mut ah, mut al) = (_mm256_setzero_si256(), _mm256_setzero_si256());
                for ((p, h), l) in row[x0..x0 + t]
                    .chunks_exact(16)
                    .zip(hi.chunks_exact(16))
                    .zip(lo.chunks_exact(16))
                {
                    let v = _mm256_cvtepu8_epi16(load_u8(p));
                    let (h, l) = (
                        _mm256_set_m128i(load_i16(&h[8..]), load_i16(&h[..8])),
                        _mm256_set_m128i(load_i16(&l[8..]), load_i16(&l[..8])),
                    );
                    ah = _mm256_add_epi32(ah, _mm256_madd_epi16(v, h));
                    al = _mm256_add_epi32(al, _mm256_madd_epi16(v, l));
                }
                let s = _mm256_add_epi32(_mm256_slli_epi32(ah, 11), al);
                let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
                let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
                let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
                *o = clip8(half.wrapping_add(_mm_cvtsi128_si32(s)));
            }
        }
        out
    }

    #[target_feature(enable = "sse2")]
    fn horizontal_sse2(k: &SplitKernel, src: &[u8], w: usize, nw: usize) -> Vec<u8> {
        let half = 1i32 << (PRECISION_BITS - 1);
        let t = k.taps;
        let zero = _mm_setzero_si128();
        let mut out = vec![0u8; nw * (src.len() / w)];
        for (row, dst) in src.chunks_exact(w).zip(out.chunks_exact_mut(nw)) {
            for (((o, &x0), hi), lo) in dst
                .iter_mut()
                .zip(&k.x0)
                .zip(k.hi.chunks_exact(t))
                .zip(k.lo.chunks_exact(t))
            {
                let (mut ah, mut al) = (zero, zero);
                for ((p, h), l) in row[x0..x0 + t]
                    .chunks_exact(16)
                    .zip(hi.chunks_exact(16))
                    .zip(lo.chunks_exact(16))
                {
                    let v = load_u8(p);
                    let (a, b) = (_mm_unpacklo_epi8(v, zero), _mm_unpackhi_epi8(v, zero));
                    let mh = _mm_add_epi32(
                        _mm_madd_epi16(a, load_i16(&h[..8])),
                        _mm_madd_epi16(b, load_i16(&h[8..])),
                    );
                    let ml = _mm_add_epi32(
                        _mm_madd_epi16(a, load_i16(&l[..8])),
                        _mm_madd_epi16(b, load_i16(&l[8..])),
                    );
                    ah = _mm_add_epi32(ah, mh);
                    al = _mm_add_epi32(al, ml);
                }
                // Lane sums of hi * 2048 + lo: the exact 32-bit total (see SplitKernel).
                let s = _mm_add_epi32(_mm_slli_epi32(ah, 11), al);
                let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
                let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
                *o = clip8(half.wrapping_add(_mm_cvtsi128_si32(s)));
            }
        }
        out
    }

    /// 16 bytes as a vector (LLVM turns the element-wise set into one unaligned load).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn load_u8(p: &[u8]) -> __m128i {
        let b = |i: usize| p[i] as i8;
        _mm_set_epi8(
            b(15),
            b(14),
            b(13),
            b(12),
            b(11),
            b(10),
            b(9),
            b(8),
            b(7),
            b(6),
            b(5),
            b(4),
            b(3),
            b(2),
            b(1),
            b(0),
        )
    }

    /// 8 i16 as a vector.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn load_i16(h: &[i16]) -> __m128i {
        _mm_set_epi16(h[7], h[6], h[5], h[4], h[3], h[2], h[1], h[0])
    }
}

/// Float resize with the same kernels (torchvision's antialiased tensor `Resize`).
pub fn resample_f32(src: &[f32], w: u32, h: u32, nw: u32, nh: u32, filter: Filter) -> Vec<f32> {
    let horiz: Vec<f32> = if nw != w {
        let k = coeffs(w, nw, filter);
        let mut out = vec![0f32; (nw * h) as usize];
        for y in 0..h as usize {
            let row = &src[y * w as usize..(y + 1) * w as usize];
            for (xx, (x0, kk)) in k.iter().enumerate() {
                let s: f64 = kk
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| row[x0 + i] as f64 * c)
                    .sum();
                out[y * nw as usize + xx] = s as f32;
            }
        }
        out
    } else {
        src.to_vec()
    };
    if nh == h {
        return horiz;
    }
    let k = coeffs(h, nh, filter);
    let nwu = nw as usize;
    let mut out = vec![0f32; nwu * nh as usize];
    for (yy, (y0, kk)) in k.iter().enumerate() {
        let dst = &mut out[yy * nwu..(yy + 1) * nwu];
        for (i, &c) in kk.iter().enumerate() {
            let row = &horiz[(y0 + i) * nwu..(y0 + i + 1) * nwu];
            for (o, &v) in dst.iter_mut().zip(row) {
                *o += (v as f64 * c) as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 7 + y * 3) % 256) as u8]))
    }

    #[test]
    fn truncated_images_are_refused_whole_ones_decode() {
        let img = ramp(96, 80);
        let jpeg = encode_jpeg_gray(img.as_raw(), 96, 80, 90).unwrap();
        assert_eq!(decode_gray(&jpeg).unwrap().dimensions(), (96, 80));
        // Cut to a third, as an interrupted download: refused, not a grey-filled image.
        let e = decode_gray(&jpeg[..jpeg.len() / 3]).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        // Only the final marker missing is truncation too.
        assert!(decode_gray(&jpeg[..jpeg.len() - 2]).is_err());
        // Bytes after the end marker (some scanners pad files) are fine.
        let mut padded = jpeg.clone();
        padded.extend_from_slice(&[0; 16]);
        assert!(decode_gray(&padded).is_ok());
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert!(decode_gray(&png).is_ok());
        assert!(decode_gray(&png[..png.len() / 3]).is_err());
    }

    #[test]
    fn constant_images_stay_constant_and_shapes_are_right() {
        let img = GrayImage::from_pixel(300, 200, image::Luma([77]));
        let c = preprocess_u8(&img, &Preprocess::clip(64));
        assert_eq!(c.len(), 64 * 64);
        assert!(c.iter().all(|&v| v == 77));
        let z = preprocess_u8(&img, &Preprocess::chexzero(320));
        // 300x200 -> 320x213, pasted with (320-213)/2 = 53 black rows on top
        assert_eq!(z[52 * 320 + 10], 0);
        assert_eq!(z[53 * 320 + 10], 77);
        assert_eq!(z[(53 + 212) * 320 + 10], 77);
        assert_eq!(z[(53 + 213) * 320 + 10], 0);
        let n = normalise(&c, PreprocessMode::Clip);
        assert_eq!(n.len(), 3 * 64 * 64);
        assert!((n[0] - (77.0 / 255.0 - CLIP_MEAN[0]) / CLIP_STD[0]).abs() < 1e-6);
        let n = normalise(&[101, 0], PreprocessMode::CheXzero);
        assert_eq!(n.len(), 6);
        assert!((n[0] - (101.0 - CHEXZERO_MEAN) / CHEXZERO_STD).abs() < 1e-6);
    }

    #[test]
    fn resamplers_agree_and_identity_is_exact() {
        let img = ramp(97, 61);
        let same = resample_u8(img.as_raw(), 97, 61, 97, 61, Filter::Lanczos);
        assert_eq!(same, img.as_raw().to_vec());
        let f: Vec<f32> = img.as_raw().iter().map(|&v| v as f32).collect();
        for filter in [Filter::Bilinear, Filter::Bicubic, Filter::Lanczos] {
            let a = resample_u8(img.as_raw(), 97, 61, 40, 33, filter);
            let b = resample_f32(&f, 97, 61, 40, 33, filter);
            let mae: f32 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| (x as f32 - y.clamp(0.0, 255.0)).abs())
                .sum::<f32>()
                / a.len() as f32;
            assert!(mae < 1.0, "{filter:?}: {mae}");
        }
    }

    #[test]
    fn split_kernel_is_exactly_the_scalar_pass() {
        // Noisy pixels, every filter, down- and upscaling, windows clamped at both edges.
        let mut x = 12345u32;
        let src: Vec<u8> = (0..300 * 7)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 23) as u8
            })
            .collect();
        for filter in [Filter::Bilinear, Filter::Bicubic, Filter::Lanczos] {
            for nw in [17, 38, 100, 299, 450] {
                let k = fixed(&coeffs(300, nw, filter));
                let split = SplitKernel::new(&k, 300).expect("kernel fits");
                let want = horizontal_scalar(&src, 300, nw as usize, &k);
                let msg = format!("{filter:?} 300 -> {nw}");
                assert_eq!(split.horizontal(&src, 300, nw as usize), want, "{msg}");
                assert_eq!(
                    split.horizontal_portable(&src, 300, nw as usize),
                    want,
                    "{msg}"
                );
                // The SSE2 path too, which `horizontal` skips on CPUs with AVX2.
                #[cfg(target_arch = "x86_64")]
                assert_eq!(
                    sse2::baseline(&split, &src, 300, nw as usize),
                    want,
                    "{msg}"
                );
            }
        }
        assert!(SplitKernel::new(&fixed(&coeffs(20, 2, Filter::Lanczos)), 20).is_none());
    }

    #[test]
    fn bad_bytes_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("broken.jpg");
        std::fs::write(&p, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
        let e = load_gray(&p).unwrap_err().to_string();
        assert!(e.contains("broken.jpg"), "{e}");
        let e = load_gray(&dir.path().join("missing.png"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.png"), "{e}");
        let p = dir.path().join("text.jpg");
        std::fs::write(&p, b"hello").unwrap();
        assert!(load_gray(&p).unwrap_err().to_string().contains("text.jpg"));
    }

    #[test]
    fn sixteen_bit_png_is_scaled() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        let img = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_pixel(
            4,
            4,
            image::Luma([65535]),
        );
        img.save(&p).unwrap();
        let g = load_gray(&p).unwrap();
        assert!(g.as_raw().iter().all(|&v| v == 255));
    }
}
