//! A tiny rasteriser and the chest-like scene: anatomy with variation, one visual sign per
//! CXR-LT class, noise. Coordinates are fractions of the image side (x right, y down; the
//! patient's right lung is on the image's left, as on a PA film).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// A float canvas, 0 = black (air) to 1 = white (bone / metal).
pub(crate) struct Canvas {
    pub s: usize,
    pub px: Vec<f32>,
}

impl Canvas {
    pub fn new(s: usize) -> Self {
        Self {
            s,
            px: vec![0.0; s * s],
        }
    }

    /// Pixel-centre coordinates (in image fractions) of a bounding box, clipped.
    fn bbox(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> (usize, usize, usize, usize) {
        let s = self.s as f32;
        let c = |v: f32| ((v * s).floor().max(0.0) as usize).min(self.s);
        (c(x0), c(y0), c(x1 + 1.0 / s), c(y1 + 1.0 / s))
    }

    /// Add `amp` inside a rotated ellipse with a soft edge `soft` (fraction of the radius).
    pub fn ellipse(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, angle: f32, amp: f32, soft: f32) {
        let r = rx.max(ry) * (1.0 + soft);
        let (x0, y0, x1, y1) = self.bbox(cx - r, cy - r, cx + r, cy + r);
        let (sn, cs) = angle.sin_cos();
        let inv = 1.0 / self.s as f32;
        let soft = soft.max(1e-3);
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = ((x as f32 + 0.5) * inv - cx, (y as f32 + 0.5) * inv - cy);
                let (u, v) = (dx * cs + dy * sn, -dx * sn + dy * cs);
                let d = ((u / rx).powi(2) + (v / ry).powi(2)).sqrt();
                let w = ((1.0 + soft - d) / (2.0 * soft)).clamp(0.0, 1.0);
                if w > 0.0 {
                    self.px[y * self.s + x] += amp * w;
                }
            }
        }
    }

    /// Add a Gaussian blob.
    pub fn gauss(&mut self, cx: f32, cy: f32, sx: f32, sy: f32, amp: f32) {
        let (x0, y0, x1, y1) =
            self.bbox(cx - 3.0 * sx, cy - 3.0 * sy, cx + 3.0 * sx, cy + 3.0 * sy);
        let inv = 1.0 / self.s as f32;
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = (
                    ((x as f32 + 0.5) * inv - cx) / sx,
                    ((y as f32 + 0.5) * inv - cy) / sy,
                );
                self.px[y * self.s + x] += amp * (-0.5 * (dx * dx + dy * dy)).exp();
            }
        }
    }

    /// Add a line segment of width `w` (image fraction) with a one-pixel soft edge.
    pub fn line(&mut self, a: (f32, f32), b: (f32, f32), w: f32, amp: f32) {
        let inv = 1.0 / self.s as f32;
        let w = w.max(inv);
        let pad = w + inv;
        let (x0, y0, x1, y1) = self.bbox(
            a.0.min(b.0) - pad,
            a.1.min(b.1) - pad,
            a.0.max(b.0) + pad,
            a.1.max(b.1) + pad,
        );
        let (vx, vy) = (b.0 - a.0, b.1 - a.1);
        let len2 = (vx * vx + vy * vy).max(1e-12);
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = ((x as f32 + 0.5) * inv, (y as f32 + 0.5) * inv);
                let t = (((px - a.0) * vx + (py - a.1) * vy) / len2).clamp(0.0, 1.0);
                let (dx, dy) = (px - a.0 - t * vx, py - a.1 - t * vy);
                let d = (dx * dx + dy * dy).sqrt();
                let cov = ((w / 2.0 - d) / inv + 0.5).clamp(0.0, 1.0);
                if cov > 0.0 {
                    self.px[y * self.s + x] += amp * cov;
                }
            }
        }
    }

    /// A polyline through `pts`.
    pub fn path(&mut self, pts: &[(f32, f32)], w: f32, amp: f32) {
        for p in pts.windows(2) {
            self.line(p[0], p[1], w, amp);
        }
    }

    /// Multiply the values inside a soft ellipse by `factor` (lucency / oligaemia).
    pub fn scale_ellipse(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, factor: f32) {
        let r = rx.max(ry) * 1.3;
        let (x0, y0, x1, y1) = self.bbox(cx - r, cy - r, cx + r, cy + r);
        let inv = 1.0 / self.s as f32;
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = (
                    ((x as f32 + 0.5) * inv - cx) / rx,
                    ((y as f32 + 0.5) * inv - cy) / ry,
                );
                let d = (dx * dx + dy * dy).sqrt();
                let w = ((1.3 - d) / 0.6).clamp(0.0, 1.0);
                let v = &mut self.px[y * self.s + x];
                *v *= 1.0 + (factor - 1.0) * w;
            }
        }
    }

    /// Add `amp` to the rows below a curved level inside a lung (effusion-like fill).
    pub fn fill_below(&mut self, lung: &Lung, level: f32, curve: f32, amp: f32) {
        let inv = 1.0 / self.s as f32;
        let (x0, y0, x1, y1) = self.bbox(
            lung.cx - lung.rx * 1.1,
            level - curve.abs(),
            lung.cx + lung.rx * 1.1,
            lung.cy + lung.ry * 1.1,
        );
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = ((x as f32 + 0.5) * inv, (y as f32 + 0.5) * inv);
                let u = ((px - lung.cx) / lung.rx).clamp(-1.0, 1.0);
                // meniscus: higher (smaller y) at the lateral wall
                let lvl = level - curve * (u * lung.side).max(0.0).powi(2);
                if lung.inside(px, py, 1.08) {
                    let w = ((py - lvl) / (1.5 * inv) + 0.5).clamp(0.0, 1.0);
                    self.px[y * self.s + x] += amp * w;
                }
            }
        }
    }

    /// Add i.i.d. Gaussian noise.
    pub fn noise(&mut self, rng: &mut ChaCha8Rng, sigma: f32) {
        let n = Normal::new(0.0f32, sigma).expect("valid sigma");
        for v in &mut self.px {
            *v += n.sample(rng);
        }
    }

    /// Quantise to 8 bits after a contrast / brightness change.
    pub fn to_u8(&self, gain: f32, offset: f32) -> Vec<u8> {
        self.px
            .iter()
            .map(|&v| ((offset + gain * v).clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect()
    }
}

/// One lung field: an ellipse; `side` is -1 for the image-left (patient's right) lung.
#[derive(Clone, Copy)]
pub(crate) struct Lung {
    pub cx: f32,
    pub cy: f32,
    pub rx: f32,
    pub ry: f32,
    pub side: f32,
}

impl Lung {
    pub fn inside(&self, x: f32, y: f32, slack: f32) -> bool {
        ((x - self.cx) / self.rx).powi(2) + ((y - self.cy) / self.ry).powi(2) <= slack * slack
    }
    /// A point at (lateral fraction u in -1..1 towards the wall, vertical fraction v in -1..1).
    pub fn at(&self, u: f32, v: f32) -> (f32, f32) {
        (self.cx + self.side * u * self.rx, self.cy + v * self.ry)
    }
}

/// Per-image anatomy with random variation.
pub(crate) struct Anatomy {
    pub lungs: [Lung; 2],
    pub mid: f32,
    pub hila: [(f32, f32); 2],
    pub heart: (f32, f32, f32, f32),
    pub aortic_knob: (f32, f32),
    pub clav_y: f32,
}

fn u(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    rng.gen_range(lo..hi)
}

impl Anatomy {
    pub fn sample(rng: &mut ChaCha8Rng) -> Self {
        let sc = u(rng, 0.92, 1.05);
        let dx = u(rng, -0.025, 0.025);
        let dy = u(rng, -0.025, 0.025);
        let mid = 0.5 + dx;
        let top = 0.2 + dy;
        let ry = 0.27 * sc * u(rng, 0.95, 1.05);
        let lungs = [
            Lung {
                cx: mid - 0.18 * sc,
                cy: top + ry,
                rx: 0.135 * sc * u(rng, 0.93, 1.07),
                ry,
                side: -1.0,
            },
            Lung {
                cx: mid + 0.18 * sc,
                cy: top + ry * 1.02,
                rx: 0.125 * sc * u(rng, 0.93, 1.07),
                ry: ry * 0.97,
                side: 1.0,
            },
        ];
        Self {
            hila: [
                (mid - 0.085 * sc, top + ry * 0.85),
                (mid + 0.085 * sc, top + ry * 0.82),
            ],
            heart: (
                mid + 0.05 * sc,
                top + ry * 1.45,
                0.14 * sc * u(rng, 0.92, 1.08),
                0.115 * sc,
            ),
            aortic_knob: (mid + 0.06 * sc, top + ry * 0.38),
            clav_y: top - 0.05,
            lungs,
            mid,
        }
    }
}

/// Draw the normal frontal chest: body, lungs, mediastinum, heart, spine, ribs, clavicles and
/// vessels. `cardio` scales the heart (Cardiomegaly), `emph` darkens and lowers (Emphysema),
/// `widen` widens the upper mediastinum.
pub(crate) fn frontal_background(
    c: &mut Canvas,
    a: &Anatomy,
    rng: &mut ChaCha8Rng,
    cardio: f32,
    widen: f32,
    emph: f32,
    kyph: f32,
) {
    c.ellipse(0.5, 0.58, 0.47, 0.58, 0.0, 0.5, 0.08); // soft tissue
    for l in &a.lungs {
        c.ellipse(
            l.cx,
            l.cy + emph * 0.02,
            l.rx,
            l.ry * (1.0 + emph * 0.08),
            0.0,
            -0.32 - 0.08 * emph,
            0.12,
        );
    }
    // mediastinum and (widened) upper mediastinum
    c.ellipse(
        a.mid,
        a.lungs[0].cy - 0.02,
        0.055 + 0.04 * widen,
        a.lungs[0].ry * 0.95,
        0.0,
        0.22,
        0.15,
    );
    let (hx, hy, hrx, hry) = a.heart;
    c.ellipse(
        hx + 0.03 * (cardio - 1.0),
        hy,
        hrx * cardio,
        hry * (1.0 + 0.4 * (cardio - 1.0)),
        -0.15,
        0.32,
        0.12,
    );
    // spine with vertebrae; kyphosis bends it
    let mut spine = Vec::new();
    for i in 0..=12 {
        let t = i as f32 / 12.0;
        spine.push((
            a.mid + kyph * 0.06 * (std::f32::consts::PI * t).sin(),
            0.05 + 0.9 * t,
        ));
    }
    c.path(&spine, 0.045, 0.07);
    for i in 0..14 {
        let t = (i as f32 + 0.5) / 14.0;
        let y = 0.05 + 0.9 * t;
        let x = a.mid + kyph * 0.06 * (std::f32::consts::PI * t).sin();
        c.line((x - 0.02, y), (x + 0.02, y), 0.012, 0.05);
    }
    // ribs (posterior arcs)
    for l in &a.lungs {
        for i in 0..9 {
            let y0 = l.cy - l.ry * 0.95 + i as f32 * l.ry * 0.21 * (1.0 - 0.08 * kyph);
            let pts: Vec<(f32, f32)> = (0..=8)
                .map(|k| {
                    let t = k as f32 / 8.0;
                    (
                        a.mid + l.side * (0.03 + t * (l.rx * 2.2)),
                        y0 - 0.03 * t + 0.09 * t * t,
                    )
                })
                .collect();
            c.path(&pts, 0.013, 0.075);
        }
    }
    // clavicles
    for side in [-1.0f32, 1.0] {
        c.line(
            (a.mid + side * 0.035, a.clav_y + 0.02),
            (a.mid + side * 0.27, a.clav_y - 0.025),
            0.022,
            0.16,
        );
    }
    // vessels fanning out of the hila
    for (k, &(hx, hy)) in a.hila.iter().enumerate() {
        let side = if k == 0 { -1.0 } else { 1.0 };
        for _ in 0..6 {
            let ang: f32 = rng.gen_range(-1.3..1.3);
            let len: f32 = rng.gen_range(0.06..0.12);
            let end = (hx + side * len * ang.cos(), hy + len * ang.sin());
            c.line((hx, hy), end, 0.008, 0.05);
        }
        c.ellipse(hx, hy, 0.02, 0.03, 0.0, 0.08, 0.4);
    }
}

/// A lateral view: one lung field, spine at the back, heart in front.
pub(crate) fn lateral_background(c: &mut Canvas, rng: &mut ChaCha8Rng) {
    let dx: f32 = rng.gen_range(-0.03..0.03);
    c.ellipse(0.5 + dx, 0.55, 0.4, 0.55, 0.0, 0.5, 0.08);
    c.ellipse(0.5 + dx, 0.45, 0.26, 0.3, 0.1, -0.3, 0.12);
    c.ellipse(0.38 + dx, 0.62, 0.13, 0.12, 0.0, 0.2, 0.15);
    c.line((0.78 + dx, 0.05), (0.74 + dx, 0.95), 0.06, 0.2);
    c.line((0.3 + dx, 0.15), (0.35 + dx, 0.6), 0.03, 0.1); // sternum
}

/// The narrowest stroke of a sign, as a fraction of the image side: 1.6 pixels at the demo's
/// 64 px (and 3.2 at the 128 px the demo draws), so that no sign vanishes when the image is
/// downsampled to the model's input. Background texture (ribs, vessels) may be finer.
pub(crate) const THIN: f32 = 0.025;

fn pick_lung<'a>(a: &'a Anatomy, rng: &mut ChaCha8Rng) -> &'a Lung {
    &a.lungs[rng.gen_range(0..2)]
}

/// Draw class `k`'s sign (index into the 40 CXR-LT classes) with severity `s` in (0, 1].
pub(crate) fn sign(c: &mut Canvas, a: &Anatomy, rng: &mut ChaCha8Rng, k: usize, s: f32) {
    let amp = 0.12 + 0.2 * s;
    match k {
        // Adenopathy: lobulated bumps beside the hila / paratracheal
        0 => {
            for &(hx, hy) in &a.hila {
                let side = if hx < a.mid { -1.0 } else { 1.0 };
                for j in 0..3 {
                    c.ellipse(
                        hx + side * 0.015,
                        hy - 0.035 * j as f32,
                        0.022,
                        0.018,
                        0.0,
                        amp * 0.9,
                        0.25,
                    );
                }
            }
        }
        // Atelectasis: plate-like horizontal band in a lower zone
        1 => {
            let l = pick_lung(a, rng);
            let (x, y) = l.at(0.1, u(rng, 0.35, 0.6));
            c.line(
                (x - l.rx * 0.6, y),
                (x + l.rx * 0.6, y + u(rng, -0.02, 0.02)),
                0.03,
                amp,
            );
        }
        // Azygos lobe: thin curved fissure line in the right apex
        2 => {
            let l = &a.lungs[0];
            let pts: Vec<(f32, f32)> = (0..=8)
                .map(|i| {
                    let t = i as f32 / 8.0;
                    (
                        l.cx + l.rx * (0.7 - 0.9 * t),
                        l.cy - l.ry * (0.95 - 0.5 * t) + 0.04 * (t * 3.1).sin(),
                    )
                })
                .collect();
            c.path(&pts, THIN, amp * 1.2);
            c.ellipse(pts[8].0, pts[8].1, 0.022, 0.028, 0.0, amp, 0.3);
        }
        // Calcification of the aorta: bright thin crescent on the aortic knob
        3 => {
            let (x, y) = a.aortic_knob;
            let pts: Vec<(f32, f32)> = (0..=6)
                .map(|i| {
                    let t = -1.2 + 2.4 * i as f32 / 6.0;
                    (x + 0.035 * t.cos(), y + 0.035 * t.sin())
                })
                .collect();
            c.path(&pts, THIN, 0.3 + 0.2 * s);
        }
        // Cardiomegaly: drawn through the background's heart scale
        4 => {}
        // Clavicle fracture: dark gap and step in one clavicle
        5 => {
            let side = if rng.gen_bool(0.5) { -1.0 } else { 1.0 };
            let t = u(rng, 0.4, 0.75);
            let (x0, y0) = (a.mid + side * 0.035, a.clav_y + 0.02);
            let (x1, y1) = (a.mid + side * 0.27, a.clav_y - 0.025);
            let (x, y) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
            c.line((x - 0.006, y - 0.035), (x + 0.006, y + 0.035), 0.03, -0.45);
            c.line((x, y + 0.02), (x1, y1 + 0.02), THIN, 0.14);
        }
        // Consolidation: dense homogeneous opacity with a sharp border
        6 => {
            let l = pick_lung(a, rng);
            let (x, y) = l.at(u(rng, -0.2, 0.4), u(rng, -0.3, 0.5));
            c.ellipse(
                x,
                y,
                l.rx * u(rng, 0.45, 0.7),
                l.ry * u(rng, 0.25, 0.4),
                u(rng, -0.5, 0.5),
                amp * 1.2,
                0.06,
            );
        }
        // Edema: bilateral perihilar haze plus Kerley lines at the bases
        7 => {
            for &(hx, hy) in &a.hila {
                c.gauss(hx, hy, 0.08, 0.09, amp * 0.9);
            }
            for l in &a.lungs {
                for j in 0..3 {
                    let (x, y) = l.at(0.8, 0.35 + 0.15 * j as f32);
                    c.line((x, y), (x - l.side * 0.05, y), THIN, amp * 0.8);
                }
            }
        }
        // Emphysema: drawn through the background (hyperlucent, flattened)
        8 => {}
        // Enlarged cardiomediastinum: drawn through the background (widened mediastinum)
        9 => {}
        // Fibrosis: coarse reticular net in the lower periphery of both lungs (cells of about
        // 3 px at 64 px, strokes of 1.6 px: a texture, not a haze, after downsampling)
        10 => {
            for l in &a.lungs {
                for i in 0..4 {
                    for j in 0..3 {
                        let (x, y) = l.at(0.3 + 0.25 * j as f32, 0.05 + 0.22 * i as f32);
                        if l.inside(x, y, 0.95) {
                            c.line((x - 0.025, y), (x + 0.025, y + 0.012), THIN, amp * 0.8);
                            c.line((x, y - 0.025), (x + 0.012, y + 0.025), THIN, amp * 0.8);
                        }
                    }
                }
            }
        }
        // Fissure: minor fissure as a thin horizontal line in the right mid zone
        11 => {
            let l = &a.lungs[0];
            let y = l.cy + u(rng, -0.12, 0.02) * l.ry;
            c.line(
                (l.cx - l.rx * 0.8, y),
                (l.cx + l.rx * 0.7, y + 0.01),
                THIN,
                amp * 1.1,
            );
        }
        // Fracture (unspecified): bright healing callus on a lateral rib
        12 => {
            let l = pick_lung(a, rng);
            let (x, y) = l.at(u(rng, 0.85, 1.0), u(rng, -0.4, 0.4));
            c.ellipse(x, y, 0.032, 0.022, 0.5, amp * 1.3, 0.25);
        }
        // Granuloma: tiny very bright calcified dot(s)
        13 => {
            for _ in 0..rng.gen_range(1..=2) {
                let l = pick_lung(a, rng);
                let (x, y) = l.at(u(rng, -0.4, 0.7), u(rng, -0.6, 0.5));
                c.ellipse(x, y, 0.02, 0.02, 0.0, 0.4 + 0.2 * s, 0.2);
            }
        }
        // Hernia: retrocardiac gas bubble with an air-fluid level
        14 => {
            let (hx, hy, _, _) = a.heart;
            c.ellipse(hx - 0.02, hy + 0.02, 0.05, 0.04, 0.0, -0.28 - 0.1 * s, 0.15);
            c.line((hx - 0.065, hy + 0.03), (hx + 0.025, hy + 0.03), THIN, 0.25);
        }
        // Hydropneumothorax: dark apex and bright fluid below a flat, straight level
        15 => {
            let l = pick_lung(a, rng);
            c.ellipse(
                l.cx,
                l.cy - l.ry * 0.3,
                l.rx * 0.9,
                l.ry * 0.55,
                0.0,
                -0.15,
                0.1,
            );
            let level = l.cy + l.ry * u(rng, 0.1, 0.35);
            c.fill_below(l, level, 0.0, amp * 1.3);
            c.line(
                (l.cx - l.rx * 0.95, level),
                (l.cx + l.rx * 0.95, level),
                THIN,
                0.25,
            );
        }
        // Infarction: pleural-based wedge (Hampton hump) at a base
        16 => {
            let l = pick_lung(a, rng);
            let (x, y) = l.at(0.9, u(rng, 0.3, 0.6));
            let tip = (x - l.side * 0.08, y - 0.01);
            for t in 0..6 {
                let f = t as f32 / 5.0;
                c.line((x, y - 0.04 + 0.08 * f), tip, 0.02, amp * 0.45);
            }
        }
        // Infiltration: several small ill-defined patches
        17 => {
            let l = pick_lung(a, rng);
            for _ in 0..5 {
                let (x, y) = l.at(u(rng, -0.6, 0.7), u(rng, -0.6, 0.6));
                c.gauss(x, y, 0.02, 0.02, amp * 0.9);
            }
        }
        // Kyphosis: drawn through the background (bent spine, crowded ribs)
        18 => {}
        // Lobar atelectasis: left lower lobe collapse, the triangular "sail" behind the heart
        19 => {
            let (hx, hy, _, _) = a.heart;
            let l = &a.lungs[1];
            let apex = (hx + 0.01, l.cy - l.ry * 0.2);
            let base = [(a.mid, hy + 0.1), (l.cx + l.rx * 0.2, hy + 0.1)];
            for t in 0..8 {
                let f = t as f32 / 7.0;
                let p = (base[0].0 + f * (base[1].0 - base[0].0), base[0].1);
                c.line(apex, p, 0.014, amp * 0.4);
            }
        }
        // Lung lesion: spiculated irregular lesion
        20 => {
            let l = pick_lung(a, rng);
            let (x, y) = l.at(u(rng, -0.3, 0.6), u(rng, -0.5, 0.3));
            c.ellipse(x, y, 0.025, 0.022, 0.0, amp, 0.2);
            for i in 0..7 {
                let ang = i as f32 * 0.9 + u(rng, 0.0, 0.4);
                c.line(
                    (x, y),
                    (x + 0.06 * ang.cos(), y + 0.06 * ang.sin()),
                    0.018,
                    amp * 0.8,
                );
            }
        }
        // Lung opacity: large low-contrast haze
        21 => {
            let l = pick_lung(a, rng);
            let (x, y) = l.at(u(rng, -0.3, 0.5), u(rng, -0.4, 0.5));
            c.gauss(x, y, l.rx * 0.5, l.ry * 0.35, amp * 0.8);
        }
        // Mass: large round well-defined opacity
        22 => {
            let l = pick_lung(a, rng);
            let (x, y) = l.at(u(rng, -0.2, 0.4), u(rng, -0.4, 0.4));
            let r = u(rng, 0.045, 0.065);
            c.ellipse(x, y, r, r * u(rng, 0.85, 1.0), 0.0, amp * 1.1, 0.08);
        }
        // Nodule: small round opacity
        23 => {
            let l = pick_lung(a, rng);
            let (x, y) = l.at(u(rng, -0.4, 0.7), u(rng, -0.6, 0.5));
            c.ellipse(x, y, 0.028, 0.028, 0.0, amp * 1.1, 0.15);
        }
        // Normal: nothing
        24 => {}
        // Pleural effusion: meniscus-shaped fill of the costophrenic angle
        25 => {
            let l = pick_lung(a, rng);
            let level = l.cy + l.ry * u(rng, 0.45, 0.7);
            c.fill_below(l, level, 0.08, amp * 1.2);
        }
        // Pleural other (calcified plaques): bright irregular plaques on the chest wall
        26 => {
            for l in &a.lungs {
                for _ in 0..2 {
                    let (x, y) = l.at(0.97, u(rng, -0.3, 0.5));
                    c.ellipse(x, y, 0.018, 0.04, 0.0, 0.35 + 0.15 * s, 0.2);
                }
            }
        }
        // Pleural thickening: bright rim along the lateral wall
        27 => {
            let l = pick_lung(a, rng);
            let pts: Vec<(f32, f32)> = (0..=10)
                .map(|i| {
                    let v = -0.7 + 1.3 * i as f32 / 10.0;
                    l.at((1.0 - v * v).max(0.0).sqrt() * 0.97, v)
                })
                .collect();
            c.path(&pts, THIN, amp * 0.9);
        }
        // Pneumomediastinum: dark lines outlining the mediastinum
        28 => {
            for side in [-1.0f32, 1.0] {
                let x = a.mid + side * 0.065;
                c.line(
                    (x, a.clav_y + 0.03),
                    (x + side * 0.01, a.heart.1 - 0.04),
                    THIN,
                    -0.35,
                );
            }
        }
        // Pneumonia: patchy consolidation with dark air bronchograms
        29 => {
            let l = pick_lung(a, rng);
            let (x, y) = l.at(u(rng, -0.1, 0.5), u(rng, 0.0, 0.55));
            c.gauss(x, y, 0.05, 0.045, amp * 1.3);
            for i in 0..3 {
                let ang = -0.6 + 0.5 * i as f32;
                c.line(
                    (x - l.side * 0.03, y),
                    (x + l.side * 0.045 * ang.cos(), y + 0.045 * ang.sin()),
                    0.018,
                    -0.15,
                );
            }
        }
        // Pneumoperitoneum: dark crescent under a hemidiaphragm
        30 => {
            let l = pick_lung(a, rng);
            let pts: Vec<(f32, f32)> = (0..=8)
                .map(|i| {
                    let t = -0.8 + 1.6 * i as f32 / 8.0;
                    (
                        l.cx + l.rx * t,
                        l.cy + l.ry * (1.0 - t * t).sqrt() * 0.98 + 0.018,
                    )
                })
                .collect();
            c.path(&pts, THIN, -0.35);
        }
        // Pneumothorax: a pleural line with a black, markingless rim outside it
        31 => {
            let l = pick_lung(a, rng);
            c.scale_ellipse(
                l.cx + l.side * l.rx * 0.75,
                l.cy - l.ry * 0.35,
                l.rx * 0.3,
                l.ry * 0.5,
                0.4,
            );
            let pts: Vec<(f32, f32)> = (0..=8)
                .map(|i| {
                    let v = -0.85 + 0.9 * i as f32 / 8.0;
                    l.at(0.6 * (1.0 - v * v).max(0.0).sqrt(), v)
                })
                .collect();
            c.path(&pts, 0.02, 0.2);
        }
        // Pulmonary embolism: regional oligaemia (Westermark) and a plump hilar artery
        32 => {
            let l = pick_lung(a, rng);
            c.scale_ellipse(l.cx, l.cy + l.ry * 0.2, l.rx * 0.5, l.ry * 0.35, 0.55);
            let (hx, hy) = if l.side < 0.0 { a.hila[0] } else { a.hila[1] };
            c.ellipse(hx, hy + 0.01, 0.025, 0.04, 0.0, amp * 0.8, 0.2);
        }
        // Pulmonary hypertension: big tubular central pulmonary arteries, pruned periphery
        33 => {
            for (k, &(hx, hy)) in a.hila.iter().enumerate() {
                let side = if k == 0 { -1.0 } else { 1.0 };
                c.line(
                    (hx, hy - 0.03),
                    (hx + side * 0.05, hy + 0.05),
                    0.03,
                    amp * 0.9,
                );
            }
            for l in &a.lungs {
                c.scale_ellipse(
                    l.cx + l.side * l.rx * 0.6,
                    l.cy,
                    l.rx * 0.35,
                    l.ry * 0.6,
                    0.75,
                );
            }
        }
        // Rib fracture: dark gap with offset across a lateral rib
        34 => {
            let l = pick_lung(a, rng);
            let (x, y) = l.at(u(rng, 0.6, 0.9), u(rng, -0.6, 0.3));
            c.line((x - 0.012, y - 0.025), (x + 0.012, y + 0.025), THIN, -0.3);
            c.ellipse(x + 0.018, y, 0.03, 0.016, 0.3, amp * 0.8, 0.3);
        }
        // Round(ed) atelectasis: round pleural-based opacity with a comet tail
        35 => {
            let l = pick_lung(a, rng);
            let (x, y) = l.at(0.75, u(rng, 0.3, 0.6));
            c.ellipse(x, y, 0.035, 0.03, 0.0, amp, 0.1);
            for j in 0..3 {
                let dy = -0.015 + 0.015 * j as f32;
                c.path(
                    &[
                        (x, y + dy),
                        (x - l.side * 0.05, y + dy - 0.01),
                        (x - l.side * 0.09, y + dy - 0.03),
                    ],
                    0.016,
                    amp * 0.8,
                );
            }
        }
        // Subcutaneous emphysema: dark streaks and bubbles in the lateral soft tissue
        36 => {
            let side = if rng.gen_bool(0.5) { -1.0 } else { 1.0 };
            for _ in 0..6 {
                let x = a.mid + side * u(rng, 0.37, 0.44);
                let y = u(rng, 0.25, 0.7);
                c.ellipse(x, y, 0.014, 0.03, 0.3, -0.3, 0.3);
            }
        }
        // Support devices: bright tubes / lines and sometimes a pacemaker box
        37 => {
            c.line(
                (a.mid + 0.005, 0.02),
                (a.mid + 0.01, a.clav_y + 0.12),
                THIN,
                0.45,
            );
            if rng.gen_bool(0.6) {
                let side = if rng.gen_bool(0.5) { -1.0 } else { 1.0 };
                c.path(
                    &[
                        (a.mid + side * 0.25, a.clav_y),
                        (a.mid + side * 0.06, a.clav_y + 0.07),
                        (a.mid + side * 0.03, a.heart.1 - 0.05),
                    ],
                    0.02,
                    0.4,
                );
            }
            if rng.gen_bool(0.3) {
                c.ellipse(a.mid + 0.22, a.clav_y + 0.06, 0.03, 0.022, 0.0, 0.5, 0.05);
            }
        }
        // Tortuous aorta: wavy descending aortic contour left of the spine
        38 => {
            let pts: Vec<(f32, f32)> = (0..=10)
                .map(|i| {
                    let t = i as f32 / 10.0;
                    (
                        a.aortic_knob.0 + 0.01 + 0.03 * (t * 6.0).sin(),
                        a.aortic_knob.1 + 0.35 * t,
                    )
                })
                .collect();
            c.path(&pts, THIN, amp * 0.8);
        }
        // Tuberculosis: upper-lobe opacity with a dark cavity and fibrotic streaks
        39 => {
            let l = pick_lung(a, rng);
            let (x, y) = l.at(u(rng, 0.0, 0.5), -0.65);
            c.gauss(x, y, 0.045, 0.04, amp * 1.2);
            c.ellipse(x, y, 0.02, 0.018, 0.0, -amp * 0.9, 0.2);
            for i in 0..3 {
                c.line(
                    (x, y),
                    (
                        a.hila[if l.side < 0.0 { 0 } else { 1 }].0,
                        a.hila[0].1 - 0.02 * i as f32,
                    ),
                    0.016,
                    amp * 0.6,
                );
            }
        }
        _ => {}
    }
}
