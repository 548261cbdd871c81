//! A deterministic synthetic dataset in the real MIMIC-CXR-JPG / CXR-LT 2024 formats.
//!
//! `generate(out, cfg)` writes, under `out/`:
//! - `files/pXX/pSUBJECT/sSTUDY/<dicom_id>.jpg`: grayscale JPEGs (`image_size` square, quality
//!   [`JPEG_QUALITY`]) of a chest-like scene (lungs, mediastinum, heart, spine, ribs,
//!   clavicles, vessels, noise, anatomical variation) with one visual sign per positive class,
//!   every sign at least 1.6 px wide at the demo's 64 px input (`draw::THIN`; see
//!   [`write_contact_sheet`] and `cargo xtask synth --contact-sheet`);
//! - `files/pXX/pSUBJECT/sSTUDY.txt`: a free-text report (FINDINGS / IMPRESSION, synonyms,
//!   negations, not every finding mentioned);
//! - `mimic-cxr-2.0.0-metadata.csv`, `mimic-cxr-2.0.0-split.csv` (all real columns; lateral
//!   `LATERAL` / `LL` views and blank views included so the frontal filter has work to do);
//! - [`LABELS_CSV`]: the CXR-LT 2024 label file (`dicom_id, subject_id, study_id,
//!   ViewPosition, ViewCodeSequence_CodeMeaning, fpath`, then the 40 classes as 0/1).
//!
//! Prevalence is the real CXR-LT training count compressed by a power law with a floor
//! (`p = 0.25 sqrt(count / max)`, at least 1%), so the paper's 12 rare classes stay the rarest.
//! Every finding is then topped up to a floor of positive patients (with a frontal image):
//! [`RARE_PATIENT_FLOOR`] (5%) of the patients for a rare class, [`BASE_PATIENT_FLOOR`] (8%)
//! for the others, so that a stratified patient split of the 400-patient demo set has
//! positives of all 40 classes in train, validation and test (the tail is compressed: rare
//! classes are 2-3% of the demo's images, not the real <0.6%). Labels are per study (all
//! images of a study share them) and co-occur: specific findings imply their parents (rib
//! fracture -> fracture, hydropneumothorax -> pneumothorax + effusion, ...), common pairs are correlated (effusion
//! with atelectasis, edema with cardiomegaly), chronic findings persist across a patient's
//! studies, and about 15% of studies are Normal.
//!
//! Determinism: the structure comes from one ChaCha8 stream seeded by `seed`; image `i` is drawn
//! from ChaCha8 seeded by `seed` on stream `i + 1`, so the bytes do not depend on thread count.
//!
//! [`generate_from_labels`] draws the same scenes for the rows of a real CheXpert or NIH
//! ChestX-ray14 label file instead (a sample of its patients, rows kept as they are).

mod draw;
mod from_labels;
mod sheet;
mod text;

pub use from_labels::{generate_from_labels, LabelledSynthConfig, LabelledSynthSummary};
pub use sheet::{class_examples, write_contact_sheet};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::classes::{CXR_LT_CLASSES, PAPER_RARE_CLASSES};
use crate::report::report_path;
use crate::table::mimic_image_path;
use crate::{DataError, Result};

/// Name of the CXR-LT 2024 label file written by [`generate`] (as the challenge names it).
pub const LABELS_CSV: &str = "train_labeled.csv";
pub const METADATA_CSV: &str = "mimic-cxr-2.0.0-metadata.csv";
pub const SPLIT_CSV: &str = "mimic-cxr-2.0.0-split.csv";
/// Fixed JPEG quality: part of the "same seed, same bytes" contract.
pub const JPEG_QUALITY: u8 = 90;
/// Version of what a config draws: bumped whenever the same [`SynthConfig`] gives other
/// labels or pixels, so that a cached dataset of an older generator is not reused (it is part
/// of the demo's dataset folder name). 2: patient floors per class, signs visible at 64 px.
pub const GENERATOR_VERSION: u32 = 2;

const NORMAL: usize = 24;
/// Findings that persist across a patient's studies.
const CHRONIC: [usize; 9] = [2, 3, 4, 8, 10, 13, 18, 33, 38];

/// What to generate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SynthConfig {
    pub patients: usize,
    pub seed: u64,
    /// Side of the square JPEGs (at least 32).
    pub image_size: u32,
    /// Largest number of studies per patient (at least 1).
    pub max_studies_per_patient: usize,
    /// Fraction of studies with no finding (labelled Normal).
    pub normal_fraction: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            patients: 400,
            seed: 0,
            image_size: 128,
            max_studies_per_patient: 4,
            normal_fraction: 0.15,
        }
    }
}

/// The checks both generators' configs share: at least one patient, a drawable image size.
fn check_patients_and_size(patients: usize, image_size: u32) -> Result<()> {
    if patients == 0 {
        return Err(DataError::InvalidParam(
            "synthetic dataset needs at least 1 patient".into(),
        ));
    }
    if !(32..=4096).contains(&image_size) {
        return Err(DataError::InvalidParam(format!(
            "image_size {image_size} out of range 32..=4096"
        )));
    }
    Ok(())
}

impl SynthConfig {
    fn validate(&self) -> Result<()> {
        check_patients_and_size(self.patients, self.image_size)?;
        if self.max_studies_per_patient == 0 {
            return Err(DataError::InvalidParam(
                "max_studies_per_patient must be at least 1".into(),
            ));
        }
        if !(0.0..1.0).contains(&self.normal_fraction) {
            return Err(DataError::InvalidParam(format!(
                "normal_fraction {} must be in [0, 1)",
                self.normal_fraction
            )));
        }
        Ok(())
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SynthSummary {
    pub images: usize,
    pub frontal_images: usize,
    pub studies: usize,
    pub patients: usize,
    pub labels_csv: PathBuf,
    pub metadata_csv: PathBuf,
    pub split_csv: PathBuf,
    /// Positive images per class over all views (official order).
    pub class_counts: Vec<usize>,
    /// Positive frontal images per class (official order).
    pub frontal_class_counts: Vec<usize>,
}

/// The per-study probability of each class before co-occurrence rules.
pub fn class_prevalence() -> [f64; 40] {
    let max = CXR_LT_CLASSES
        .iter()
        .map(|c| c.train_count)
        .max()
        .unwrap_or(1) as f64;
    let mut p = [0.0; 40];
    for (k, c) in CXR_LT_CLASSES.iter().enumerate() {
        p[k] = 0.25 * (c.train_count as f64 / max).sqrt();
    }
    p[NORMAL] = 0.0; // Normal is the absence of findings
                     // Keep the paper's rare classes clearly below every base class, with a floor so that a
                     // 400-patient set still has a handful of positives of each.
    let is_rare = |k: usize| PAPER_RARE_CLASSES.contains(&CXR_LT_CLASSES[k].name);
    let min_base = (0..40)
        .filter(|&k| k != NORMAL && !is_rare(k))
        .map(|k| p[k])
        .fold(f64::INFINITY, f64::min);
    for k in (0..40).filter(|&k| is_rare(k)) {
        p[k] = p[k].min(0.5 * min_base).max(0.01);
    }
    p
}

struct Image {
    dicom_id: String,
    subject_id: u64,
    study_id: u64,
    view: Option<&'static str>,
    study_idx: usize,
}

struct Study {
    subject_id: u64,
    study_id: u64,
    labels: [bool; 40],
    severity: [f32; 40],
    date: u32,
    time: f64,
    portable: bool,
}

fn dicom_id(rng: &mut ChaCha8Rng) -> String {
    let mut s = String::with_capacity(44);
    for g in 0..5 {
        if g > 0 {
            s.push('-');
        }
        let _ = write!(s, "{:08x}", rng.gen::<u32>());
    }
    s
}

/// Add implied parents and correlated findings.
fn co_occur(l: &mut [bool; 40], rng: &mut ChaCha8Rng) {
    let mut imply = |child: usize, parent: usize, p: f64, l: &mut [bool; 40]| {
        if l[child] && !l[parent] && rng.gen_bool(p) {
            l[parent] = true;
        }
    };
    imply(19, 1, 1.0, l); // lobar atelectasis -> atelectasis
    imply(35, 1, 1.0, l); // round(ed) atelectasis -> atelectasis
    imply(34, 12, 1.0, l); // rib fracture -> fracture
    imply(5, 12, 1.0, l); // clavicle fracture -> fracture
    imply(15, 31, 1.0, l); // hydropneumothorax -> pneumothorax
    imply(15, 25, 1.0, l); // hydropneumothorax -> effusion
    imply(25, 1, 0.35, l); // effusion with atelectasis
    imply(7, 4, 0.3, l); // edema with cardiomegaly
    imply(7, 25, 0.3, l); // edema with effusion
    imply(4, 9, 0.35, l); // cardiomegaly with enlarged cardiomediastinum
    imply(29, 21, 0.7, l); // pneumonia -> lung opacity
    imply(6, 21, 0.6, l); // consolidation -> lung opacity
    imply(22, 20, 0.4, l); // mass -> lung lesion
    imply(23, 20, 0.3, l); // nodule -> lung lesion
    imply(28, 36, 0.5, l); // pneumomediastinum with subcutaneous emphysema
    imply(39, 13, 0.3, l); // tuberculosis with granuloma
    imply(33, 9, 0.3, l); // pulmonary hypertension with enlarged cardiomediastinum
}

fn view_meaning(v: Option<&str>) -> &'static str {
    match v {
        Some("PA") => "postero-anterior",
        Some("AP") => "antero-posterior",
        Some("LATERAL") => "lateral",
        Some("LL") => "left lateral",
        _ => "",
    }
}

/// Generate the dataset under `out` (created if needed; existing files are overwritten).
pub fn generate(out: &Path, cfg: &SynthConfig) -> Result<SynthSummary> {
    cfg.validate()?;
    let prev = class_prevalence();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut studies: Vec<Study> = Vec::new();
    let mut images: Vec<Image> = Vec::new();
    let mut split_of_subject = Vec::new();
    let mut study_counter: u64 = 0;
    for pi in 0..cfg.patients {
        // Unique, spread over p10..p19 (7919993 is coprime with 10^7).
        let subject_id = 10_000_000 + (pi as u64 * 7_919_993) % 10_000_000;
        let split = match rng.gen_range(0..100) {
            0..=84 => "train",
            85..=89 => "validate",
            _ => "test",
        };
        split_of_subject.push((subject_id, split));
        let mut chronic = [false; 40];
        for &k in &CHRONIC {
            chronic[k] = rng.gen_bool(prev[k]);
        }
        let n_studies = 1
            + (0..cfg.max_studies_per_patient - 1)
                .take_while(|_| rng.gen_bool(0.55))
                .count();
        // MIMIC shifts dates into 2100-2200; dates are YYYYMMDD with days 1-28.
        let (mut year, mut month, day) = (
            2110 + rng.gen_range(0..80u32),
            rng.gen_range(1..=12u32),
            rng.gen_range(1..=28u32),
        );
        for _ in 0..n_studies {
            let study_id = 50_000_000 + (study_counter * 7_919_993) % 10_000_000;
            study_counter += 1;
            let mut labels = [false; 40];
            if !rng.gen_bool(cfg.normal_fraction) {
                for k in 0..40 {
                    if k == NORMAL {
                        continue;
                    }
                    labels[k] = if CHRONIC.contains(&k) {
                        chronic[k] && rng.gen_bool(0.9)
                    } else {
                        rng.gen_bool(prev[k])
                    };
                }
                co_occur(&mut labels, &mut rng);
                if !labels.iter().any(|&b| b) {
                    // an abnormal study has at least one finding: draw one by prevalence
                    let total: f64 = prev.iter().sum();
                    let mut r = rng.gen_range(0.0..total);
                    for k in 0..40 {
                        r -= prev[k];
                        if r <= 0.0 && k != NORMAL {
                            labels[k] = true;
                            break;
                        }
                    }
                    co_occur(&mut labels, &mut rng);
                }
            }
            if !labels.iter().any(|&b| b) {
                labels[NORMAL] = true;
            }
            let mut severity = [0f32; 40];
            for s in severity.iter_mut() {
                *s = rng.gen_range(0.35..1.0);
            }
            let portable = rng.gen_bool(0.45);
            let sidx = studies.len();
            studies.push(Study {
                subject_id,
                study_id,
                labels,
                severity,
                date: year * 10_000 + month * 100 + day,
                time: rng.gen_range(0.0..235959.0f64),
                portable,
            });
            month += rng.gen_range(1..=9);
            year += (month - 1) / 12;
            month = (month - 1) % 12 + 1;
            // views: one frontal first; PA/LAT pairs for ambulatory studies; extras sometimes
            let mut views: Vec<Option<&'static str>> = Vec::new();
            let frontal = if portable { "AP" } else { "PA" };
            views.push(if rng.gen_bool(0.04) {
                None
            } else {
                Some(frontal)
            });
            if !portable || rng.gen_bool(0.2) {
                views.push(Some(if rng.gen_bool(0.7) { "LATERAL" } else { "LL" }));
            }
            if rng.gen_bool(0.2) {
                views.push(Some(frontal));
            }
            for v in views {
                images.push(Image {
                    dicom_id: dicom_id(&mut rng),
                    subject_id,
                    study_id,
                    view: v,
                    study_idx: sidx,
                });
            }
        }
    }

    let mut has_frontal = vec![false; studies.len()];
    for im in &images {
        has_frontal[im.study_idx] |= matches!(im.view, Some("PA") | Some("AP"));
    }
    top_up(&mut studies, &has_frontal, cfg.patients, &mut rng);

    std::fs::create_dir_all(out).map_err(|e| DataError::io(out, e))?;
    // Images, in parallel; each from its own RNG stream.
    let size = cfg.image_size;
    images
        .par_iter()
        .enumerate()
        .try_for_each(|(i, im)| -> Result<()> {
            let mut r = ChaCha8Rng::seed_from_u64(cfg.seed);
            r.set_stream(i as u64 + 1);
            let st = &studies[im.study_idx];
            let pixels = render(&mut r, size, &st.labels, &st.severity, im.view);
            let path = out.join(mimic_image_path(im.subject_id, im.study_id, &im.dicom_id));
            write_gray(&path, &pixels, size)
        })?;
    // Reports.
    studies
        .par_iter()
        .enumerate()
        .try_for_each(|(si, st)| -> Result<()> {
            let mut r = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed_7e47);
            r.set_stream(si as u64);
            let pos: Vec<usize> = (0..40).filter(|&k| st.labels[k]).collect();
            let exam = if st.portable {
                "CHEST (PORTABLE AP)"
            } else {
                "CHEST (PA AND LAT)"
            };
            let path = out.join(report_path(st.subject_id, st.study_id));
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
            }
            std::fs::write(&path, text::report(&mut r, &pos, exam))
                .map_err(|e| DataError::io(&path, e))
        })?;

    // CSVs.
    let mut labels_csv = String::from(
        "dicom_id,subject_id,study_id,ViewPosition,ViewCodeSequence_CodeMeaning,fpath",
    );
    for c in &CXR_LT_CLASSES {
        labels_csv.push(',');
        labels_csv.push_str(c.name);
    }
    labels_csv.push('\n');
    let mut meta = String::from("dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,StudyDate,StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,PatientOrientationCodeSequence_CodeMeaning\n");
    let mut split = String::from("dicom_id,study_id,subject_id,split\n");
    let mut class_counts = vec![0usize; 40];
    let mut frontal_class_counts = vec![0usize; 40];
    let mut frontal_images = 0;
    for im in &images {
        let st = &studies[im.study_idx];
        let v = im.view.unwrap_or("");
        let fpath = mimic_image_path(im.subject_id, im.study_id, &im.dicom_id);
        let _ = write!(
            labels_csv,
            "{},{},s{},{},{},{}",
            im.dicom_id,
            im.subject_id,
            im.study_id,
            v,
            view_meaning(im.view),
            fpath.display()
        );
        let frontal = matches!(im.view, Some("PA") | Some("AP"));
        frontal_images += frontal as usize;
        for k in 0..40 {
            labels_csv.push_str(if st.labels[k] { ",1" } else { ",0" });
            if st.labels[k] {
                class_counts[k] += 1;
                frontal_class_counts[k] += frontal as usize;
            }
        }
        labels_csv.push('\n');
        let desc = if st.portable {
            "CHEST (PORTABLE AP)"
        } else {
            "CHEST (PA AND LAT)"
        };
        let orient = if st.portable { "Recumbent" } else { "Erect" };
        let _ = writeln!(
            meta,
            "{},{},{},{},{},{},{},{},{:.3},{},{},{}",
            im.dicom_id,
            im.subject_id,
            im.study_id,
            desc,
            v,
            size,
            size,
            st.date,
            st.time,
            desc,
            view_meaning(im.view),
            orient
        );
        let sp = split_of_subject
            .binary_search_by_key(&im.subject_id, |&(s, _)| s)
            .ok()
            .map(|i| split_of_subject[i].1);
        let sp = sp.unwrap_or_else(|| {
            split_of_subject
                .iter()
                .find(|(s, _)| *s == im.subject_id)
                .map(|(_, sp)| *sp)
                .unwrap_or("train")
        });
        let _ = writeln!(
            split,
            "{},{},{},{}",
            im.dicom_id, im.study_id, im.subject_id, sp
        );
    }
    let labels_path = out.join(LABELS_CSV);
    let meta_path = out.join(METADATA_CSV);
    let split_path = out.join(SPLIT_CSV);
    for (p, t) in [
        (&labels_path, &labels_csv),
        (&meta_path, &meta),
        (&split_path, &split),
    ] {
        std::fs::write(p, t).map_err(|e| DataError::io(p, e))?;
    }
    Ok(SynthSummary {
        images: images.len(),
        frontal_images,
        studies: studies.len(),
        patients: cfg.patients,
        labels_csv: labels_path,
        metadata_csv: meta_path,
        split_csv: split_path,
        class_counts,
        frontal_class_counts,
    })
}

/// Smallest share of patients positive for a rare class (the paper's 12) after [`top_up`].
pub const RARE_PATIENT_FLOOR: f64 = 0.05;
/// Smallest share of patients positive for every other finding after [`top_up`].
pub const BASE_PATIENT_FLOOR: f64 = 0.08;

/// Guarantee every finding positive patients: at least [`RARE_PATIENT_FLOOR`] of the patients
/// for a rare class and [`BASE_PATIENT_FLOOR`] for the others (at least 2), counting only
/// studies with a frontal image (the views that show signs and that training keeps). A
/// patient lacking the class gets it in one abnormal study with a frontal image, or, for a
/// chronic finding, in every such study. The long tail keeps its shape above the floors (base
/// classes frequent, rare ones rare), and a stratified patient split of the demo's size then
/// has positives of every class in each of train, validation and test.
fn top_up(studies: &mut [Study], has_frontal: &[bool], patients: usize, rng: &mut ChaCha8Rng) {
    let is_rare = |k: usize| PAPER_RARE_CLASSES.contains(&CXR_LT_CLASSES[k].name);
    // Abnormal studies with a frontal image, per patient (in order of appearance).
    let mut by_patient: Vec<(u64, Vec<usize>)> = Vec::new();
    for (i, st) in studies.iter().enumerate() {
        if st.labels[NORMAL] || !has_frontal[i] {
            continue;
        }
        match by_patient.last_mut() {
            Some((s, v)) if *s == st.subject_id => v.push(i),
            _ => by_patient.push((st.subject_id, vec![i])),
        }
    }
    for k in (0..40).filter(|&k| k != NORMAL) {
        let floor = if is_rare(k) {
            RARE_PATIENT_FLOOR
        } else {
            BASE_PATIENT_FLOOR
        };
        let min = ((patients as f64 * floor).ceil() as usize).max(2);
        let positive =
            |p: &(u64, Vec<usize>), studies: &[Study]| p.1.iter().any(|&i| studies[i].labels[k]);
        let have = by_patient.iter().filter(|p| positive(p, studies)).count();
        let mut candidates: Vec<usize> = (0..by_patient.len())
            .filter(|&p| !positive(&by_patient[p], studies))
            .collect();
        candidates.shuffle(rng);
        for &p in candidates.iter().take(min.saturating_sub(have)) {
            let own = &by_patient[p].1;
            let chosen: Vec<usize> = if CHRONIC.contains(&k) {
                own.clone()
            } else {
                vec![own[rng.gen_range(0..own.len())]]
            };
            for i in chosen {
                studies[i].labels[k] = true;
                co_occur(&mut studies[i].labels, rng);
            }
        }
    }
}

/// Write a square grayscale image: PNG when `path` ends in `.png` (NIH ChestX-ray14's kind),
/// otherwise a JPEG of quality [`JPEG_QUALITY`]. Creates the parent folders.
fn write_gray(path: &Path, pixels: &[u8], size: u32) -> Result<()> {
    use image::ImageEncoder as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    let png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let mut buf = Vec::new();
    let encoded = if png {
        image::codecs::png::PngEncoder::new(&mut buf).write_image(
            pixels,
            size,
            size,
            image::ExtendedColorType::L8,
        )
    } else {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, JPEG_QUALITY).encode(
            pixels,
            size,
            size,
            image::ExtendedColorType::L8,
        )
    };
    encoded.map_err(|e| DataError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    std::fs::write(path, buf).map_err(|e| DataError::io(path, e))
}

/// Draw one image: a frontal scene with one sign per positive class (`labels`, indices into
/// the 40 CXR-LT classes, drawn with `severity`), or a lateral scene (which shows no signs).
fn render(
    rng: &mut ChaCha8Rng,
    size: u32,
    labels: &[bool; 40],
    severity: &[f32; 40],
    view: Option<&str>,
) -> Vec<u8> {
    let mut c = draw::Canvas::new(size as usize);
    // The film (mottling, noise, exposure) has a stream of its own, so that the same chest
    // with and without a sign differs by the sign only (see `sheet`).
    let mut film = ChaCha8Rng::seed_from_u64(rng.gen::<u64>());
    let lateral = matches!(view, Some("LATERAL") | Some("LL"));
    if lateral {
        draw::lateral_background(&mut c, rng);
    } else {
        let a = draw::Anatomy::sample(rng);
        let sv = |k: usize| if labels[k] { severity[k] } else { 0.0 };
        let cardio = 1.0 + 0.45 * sv(4) + 0.05 * rng.gen_range(-1.0..1.0f32);
        let widen = 0.6 * sv(9) + 0.8 * sv(0) * 0.3;
        draw::frontal_background(&mut c, &a, rng, cardio, widen, sv(8) * 1.6, sv(18) * 1.4);
        let mut order: Vec<usize> = (0..40).filter(|&k| labels[k]).collect();
        order.shuffle(rng);
        for k in order {
            draw::sign(&mut c, &a, rng, k, severity[k]);
        }
    }
    // low-frequency mottling and film noise
    for _ in 0..4 {
        let (x, y) = (film.gen_range(0.1..0.9f32), film.gen_range(0.1..0.9f32));
        c.gauss(x, y, 0.12, 0.12, film.gen_range(-0.04..0.04));
    }
    c.noise(&mut film, 0.03);
    let gain = film.gen_range(0.85..1.1f32);
    let offset = film.gen_range(0.02..0.1f32);
    c.to_u8(gain, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prevalence_keeps_the_rare_classes_rarest() {
        let p = class_prevalence();
        let rare_max = PAPER_RARE_CLASSES
            .iter()
            .map(|n| p[crate::classes::cxr_lt_index(n).unwrap()])
            .fold(0.0, f64::max);
        for (k, c) in CXR_LT_CLASSES.iter().enumerate() {
            if k != NORMAL && !PAPER_RARE_CLASSES.contains(&c.name) {
                assert!(p[k] > rare_max, "{} {} <= {rare_max}", c.name, p[k]);
            }
        }
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        for cfg in [
            SynthConfig {
                patients: 0,
                ..Default::default()
            },
            SynthConfig {
                image_size: 8,
                ..Default::default()
            },
            SynthConfig {
                max_studies_per_patient: 0,
                ..Default::default()
            },
            SynthConfig {
                normal_fraction: 1.5,
                ..Default::default()
            },
        ] {
            assert!(matches!(
                generate(dir.path(), &cfg),
                Err(DataError::InvalidParam(_))
            ));
        }
    }
}
