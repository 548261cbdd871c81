//! A contact sheet of the synthetic signs as the model sees them: one frontal image per
//! CXR-LT class, drawn like [`super::generate`] draws it, stored as a JPEG and preprocessed to
//! the model's input size, beside its difference from the same chest without the sign.

use std::path::Path;

use image::GrayImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::classes::CXR_LT_CLASSES;
use crate::image::{decode_gray, encode_jpeg_gray, preprocess_u8, Preprocess};
use crate::{DataError, Result};

use super::{render, JPEG_QUALITY, NORMAL};

/// Severity of every example sign: the middle of the generator's range (0.35 to 1).
const SEVERITY: f32 = 0.65;
/// Tiles per row of the sheet.
const COLUMNS: usize = 8;
/// Gap between tiles, in sheet pixels.
const GAP: usize = 4;

/// One example per class (official order), each `preprocess.size` squared u8 pixels: the chest
/// of `seed` (the same anatomy for every class) with that class's sign alone, drawn at
/// `image_size`, JPEG-encoded at [`JPEG_QUALITY`], decoded and preprocessed. The Normal
/// example has no sign and is the reference of the difference tiles.
pub fn class_examples(seed: u64, image_size: u32, preprocess: &Preprocess) -> Result<Vec<Vec<u8>>> {
    super::check_patients_and_size(1, image_size)?;
    (0..CXR_LT_CLASSES.len())
        .map(|k| {
            let mut labels = [false; 40];
            labels[k] = true;
            let severity = [SEVERITY; 40];
            // The same stream for every class: same anatomy, vessels and mottling positions.
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let pixels = render(&mut rng, image_size, &labels, &severity, Some("PA"));
            let jpeg = encode_jpeg_gray(&pixels, image_size, image_size, JPEG_QUALITY)?;
            let img = decode_gray(&jpeg).map_err(DataError::InvalidParam)?;
            Ok(preprocess_u8(&img, preprocess))
        })
        .collect()
}

/// Write the contact sheet PNG to `path`: rows of 8 classes in official order (Adenopathy,
/// Atelectasis, ... Tuberculosis); each tile is the class's example (top) and its absolute
/// difference from the Normal example, contrast x4 (bottom), every pixel shown as
/// `zoom` x `zoom` sheet pixels. Returns the class names in tile order.
pub fn write_contact_sheet(
    path: &Path,
    seed: u64,
    image_size: u32,
    preprocess: &Preprocess,
    zoom: u32,
) -> Result<Vec<&'static str>> {
    if !(1..=8).contains(&zoom) {
        return Err(DataError::InvalidParam(format!(
            "contact sheet zoom {zoom} out of range 1..=8"
        )));
    }
    let examples = class_examples(seed, image_size, preprocess)?;
    let side = preprocess.size as usize;
    let z = zoom as usize;
    let tile_w = side * z;
    let tile_h = 2 * side * z;
    let rows = examples.len().div_ceil(COLUMNS);
    let width = COLUMNS * (tile_w + GAP) + GAP;
    let height = rows * (tile_h + GAP) + GAP;
    let mut sheet = GrayImage::from_pixel(width as u32, height as u32, image::Luma([255]));
    let normal = &examples[NORMAL];
    for (k, ex) in examples.iter().enumerate() {
        let (x0, y0) = (
            GAP + (k % COLUMNS) * (tile_w + GAP),
            GAP + (k / COLUMNS) * (tile_h + GAP),
        );
        for y in 0..side {
            for x in 0..side {
                let v = ex[y * side + x];
                let d = (v.abs_diff(normal[y * side + x]) as u32 * 4).min(255) as u8;
                for (dy, dx) in (0..z).flat_map(|a| (0..z).map(move |b| (a, b))) {
                    let (px, py) = ((x0 + x * z + dx) as u32, (y0 + y * z + dy) as u32);
                    sheet.put_pixel(px, py, image::Luma([v]));
                    sheet.put_pixel(px, py + (side * z) as u32, image::Luma([d]));
                }
            }
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    sheet
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| DataError::Image {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(CXR_LT_CLASSES.iter().map(|c| c.name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sign survives JPEG and the demo's downsampling to 64 px: its example differs
    /// visibly from the same chest without it (the classes drawn through the background
    /// change the anatomy instead, which shows too).
    #[test]
    fn every_sign_is_visible_at_the_demo_resolution() {
        let ex = class_examples(0, 128, &Preprocess::chexzero(64)).unwrap();
        assert_eq!(ex.len(), 40);
        let mut faint = Vec::new();
        for (k, e) in ex.iter().enumerate() {
            assert_eq!(e.len(), 64 * 64);
            if k == NORMAL {
                continue;
            }
            let changed = e
                .iter()
                .zip(&ex[NORMAL])
                .filter(|(a, b)| a.abs_diff(**b) >= 12)
                .count();
            eprintln!("{:<28} {changed:>5} pixels", CXR_LT_CLASSES[k].name);
            if changed < 12 {
                faint.push((CXR_LT_CLASSES[k].name, changed));
            }
        }
        assert!(
            faint.is_empty(),
            "signs changing fewer than 12 pixels by >= 12 grey levels at 64 px: {faint:?}"
        );
    }

    #[test]
    fn sheet_is_a_png_of_every_class() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sheet.png");
        let names = write_contact_sheet(&path, 1, 64, &Preprocess::chexzero(32), 1).unwrap();
        assert_eq!(names.len(), 40);
        let img = image::open(&path).unwrap();
        assert_eq!(img.width() as usize, 8 * (32 + GAP) + GAP);
        assert_eq!(img.height() as usize, 5 * (64 + GAP) + GAP);
        assert!(write_contact_sheet(&path, 1, 64, &Preprocess::chexzero(32), 0).is_err());
    }
}
