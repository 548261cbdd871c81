//! Figures as PNG files (plotters' bitmap backend, encoded with `image`): ROC curves per class
//! group, per-class AUC sorted by training frequency (the long-tail picture) and 2-D scatter
//! plots of t-SNE embeddings (the paper's Fig. 2). Text uses the bundled DejaVu Sans
//! (`assets/`, Bitstream Vera licence), so no system font or fontconfig is needed.

use std::path::Path;
use std::sync::OnceLock;

use ndarray::ArrayView2;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::auc::Ranked;
use crate::error::{shape_err, EvalError, Result};
use crate::evaluate::{rank_classes, ClassGroup, EvalResults};

pub(crate) const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(EvalError::Plot {
            path: "<font>".into(),
            msg: "the bundled DejaVu Sans font failed to load".into(),
        })
    }
}

/// Twenty well-separated colours (matplotlib's tab20 order: dark shades first).
const PALETTE: [(u8, u8, u8); 20] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (199, 199, 199),
    (219, 219, 141),
    (158, 218, 229),
];

/// The colour of category `i` (cycles after twenty).
pub fn palette_color(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> EvalError {
    EvalError::Plot {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// A drawing callback on the root area.
pub(crate) type Draw<'a> =
    dyn FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), String> + 'a;

/// Renders into an RGB image with `draw` (`path` names the figure in errors).
fn render_rgb(path: &Path, (w, h): (u32, u32), draw: Box<Draw<'_>>) -> Result<image::RgbImage> {
    register_font()?;
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        draw(&root).map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    image::RgbImage::from_raw(w, h, buf).ok_or_else(|| plot_err(path, "buffer size"))
}

/// Renders into an RGB buffer with `draw`, then writes a PNG.
fn render_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), String>,
) -> Result<()> {
    let img = render_rgb(path, size, Box::new(draw))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| plot_err(path, e))
}

/// Renders with `draw` and returns the PNG's bytes (the caller writes them, e.g. atomically;
/// `name` names the figure in errors).
pub(crate) fn render_png_bytes(
    name: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), String>,
) -> Result<Vec<u8>> {
    let img = render_rgb(name, size, Box::new(draw))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| plot_err(name, e))?;
    Ok(out.into_inner())
}

/// ROC curve points `(fpr, tpr)` from the lowest to the highest threshold's end, one point per
/// distinct score (sklearn's `roc_curve` with `drop_intermediate=False`, starting at (0, 0)).
/// `None` when there is no positive or no negative.
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Option<(Vec<f64>, Vec<f64>)> {
    if scores.len() != labels.len() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    roc_points(&Ranked::from_slices(scores, labels))
}

fn roc_points(r: &Ranked) -> Option<(Vec<f64>, Vec<f64>)> {
    if r.n_pos == 0 || r.n_neg == 0 {
        return None;
    }
    let (mut fpr, mut tpr) = (vec![0.0], vec![0.0]);
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut end = r.order.len();
    for g in (0..r.group_end.len()).rev() {
        let start = if g == 0 {
            0
        } else {
            r.group_end[g - 1] as usize
        };
        let pos = r.is_pos[start..end].iter().filter(|&&p| p == 1).count();
        tp += pos;
        fp += end - start - pos;
        fpr.push(fp as f64 / r.n_neg as f64);
        tpr.push(tp as f64 / r.n_pos as f64);
        end = start;
    }
    Some((fpr, tpr))
}

/// ROC curves of every class with a defined AUC, one panel per class group (base, rare), the
/// legend giving each class's AUC. `scores` / `labels` as for [`crate::evaluate`];
/// `results` is their evaluation (names, groups and AUCs are read from it).
pub fn plot_roc(
    path: &Path,
    scores: ArrayView2<'_, f32>,
    labels: ArrayView2<'_, f32>,
    results: &EvalResults,
    title: &str,
) -> Result<()> {
    let names: Vec<String> = results.classes.iter().map(|c| c.name.clone()).collect();
    let ranked = rank_classes(scores, labels, &names)?;
    let groups: Vec<ClassGroup> = [ClassGroup::Base, ClassGroup::Rare]
        .into_iter()
        .filter(|g| {
            results
                .classes
                .iter()
                .any(|c| c.group == *g && c.auc.is_some())
        })
        .collect();
    if groups.is_empty() {
        return Err(EvalError::Empty(
            "classes with a defined AUC (nothing to plot)",
        ));
    }
    let panel = 760u32;
    render_png(path, (panel * groups.len() as u32, panel + 50), |root| {
        let (top, body) = root.split_vertically(50);
        top.titled(title, (FONT, 28)).map_err(|e| e.to_string())?;
        let panels = body.split_evenly((1, groups.len()));
        for (area, group) in panels.iter().zip(&groups) {
            let members: Vec<usize> = (0..names.len())
                .filter(|&c| results.classes[c].group == *group && results.classes[c].auc.is_some())
                .collect();
            let macro_auc = match group {
                ClassGroup::Base => results.macro_base,
                ClassGroup::Rare => results.macro_rare,
            };
            let caption = format!(
                "{} classes ({}, macro AUC {})",
                group.as_str(),
                members.len(),
                crate::report::fmt_opt(macro_auc)
            );
            let mut chart = ChartBuilder::on(area)
                .caption(caption, (FONT, 22))
                .margin(12)
                .x_label_area_size(45)
                .y_label_area_size(55)
                .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.0)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("False positive rate")
                .y_desc("True positive rate")
                .label_style((FONT, 15))
                .axis_desc_style((FONT, 17))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(LineSeries::new(
                    [(0.0, 0.0), (1.0, 1.0)],
                    BLACK.mix(0.4).stroke_width(1),
                ))
                .map_err(|e| e.to_string())?;
            for (k, &c) in members.iter().enumerate() {
                let Some((fpr, tpr)) = roc_points(&ranked[c]) else {
                    continue;
                };
                let color = palette_color(k);
                let label = format!(
                    "{} ({:.3})",
                    names[c],
                    results.classes[c].auc.unwrap_or(f64::NAN)
                );
                chart
                    .draw_series(LineSeries::new(
                        fpr.into_iter().zip(tpr),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(label)
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 18, y)], color.stroke_width(3))
                    });
            }
            let font_size = if members.len() > 20 { 11 } else { 14 };
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font((FONT, font_size))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .draw()
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// Per-class AUC as horizontal bars with CI whiskers, classes ordered by training frequency
/// (most frequent on top, the long tail at the bottom), coloured by group, with the training
/// count in each label. Classes without `train_count` are ordered by test positives. Undefined
/// AUCs are listed as "n/a" without a bar.
pub fn plot_auc_by_frequency(path: &Path, results: &EvalResults, title: &str) -> Result<()> {
    if results.classes.is_empty() {
        return Err(EvalError::Empty("results.classes"));
    }
    let mut order: Vec<usize> = (0..results.classes.len()).collect();
    let freq = |c: usize| {
        results.classes[c]
            .train_count
            .unwrap_or(results.classes[c].n_pos)
    };
    order.sort_by(|&a, &b| freq(b).cmp(&freq(a)).then(a.cmp(&b)));
    let n = order.len();
    let labels: Vec<String> = order
        .iter()
        .map(|&c| {
            let cl = &results.classes[c];
            let count = cl
                .train_count
                .map_or_else(|| format!("test pos {}", cl.n_pos), |t| t.to_string());
            let auc = if cl.auc.is_none() { " n/a" } else { "" };
            format!("{} ({}){}", cl.name, count, auc)
        })
        .collect();
    let lo = results
        .classes
        .iter()
        .filter_map(|c| c.ci_low.or(c.auc))
        .fold(0.5f64, f64::min);
    let x_min = ((lo - 0.05) * 10.0).floor() / 10.0;
    // Two empty slots under the last class hold the legend, clear of the bars.
    let height = 190 + 24 * n as u32;
    render_png(path, (1100, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 26))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(330)
            .build_cartesian_2d(x_min.max(0.0)..1.0f64, -2.5f64..(n as f64 - 0.5))
            .map_err(|e| e.to_string())?;
        let label_of = |y: &f64| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                labels[n - 1 - i as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .y_labels(n + 2)
            .y_label_formatter(&label_of)
            .disable_y_mesh()
            .x_desc("ROC AUC (bars: point estimate, whiskers: 95% CI)")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        let x0 = x_min.max(0.0);
        for (slot, &c) in order.iter().enumerate() {
            let cl = &results.classes[c];
            let y = (n - 1 - slot) as f64;
            let color = match cl.group {
                ClassGroup::Base => palette_color(0),
                ClassGroup::Rare => palette_color(1),
            };
            if let Some(auc) = cl.auc {
                chart
                    .draw_series([Rectangle::new(
                        [(x0, y - 0.35), (auc, y + 0.35)],
                        color.filled(),
                    )])
                    .map_err(|e| e.to_string())?;
            }
            if let (Some(l), Some(h)) = (cl.ci_low, cl.ci_high) {
                let s = BLACK.stroke_width(2);
                chart
                    .draw_series([
                        PathElement::new([(l, y), (h, y)], s),
                        PathElement::new([(l, y - 0.2), (l, y + 0.2)], s),
                        PathElement::new([(h, y - 0.2), (h, y + 0.2)], s),
                    ])
                    .map_err(|e| e.to_string())?;
            }
        }
        chart
            .draw_series(LineSeries::new(
                [(0.5, -2.5), (0.5, n as f64 - 0.5)],
                BLACK.mix(0.5).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
        for (g, group) in [ClassGroup::Base, ClassGroup::Rare].into_iter().enumerate() {
            let color = palette_color(g);
            let macro_auc = if g == 0 {
                results.macro_base
            } else {
                results.macro_rare
            };
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
                .map_err(|e| e.to_string())?
                .label(format!(
                    "{} (macro {})",
                    group.as_str(),
                    crate::report::fmt_opt(macro_auc)
                ))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// A 2-D scatter plot (e.g. t-SNE output, N x 2) with one colour per category and a legend.
/// `category[i]` indexes `category_names`; `None` draws the point in light grey, unlabelled.
pub fn plot_scatter(
    path: &Path,
    points: ArrayView2<'_, f32>,
    category: &[Option<usize>],
    category_names: &[String],
    title: &str,
) -> Result<()> {
    if points.ncols() != 2 {
        return Err(shape_err("scatter points columns", 2, points.ncols()));
    }
    if category.len() != points.nrows() {
        return Err(shape_err(
            "categories (one per point)",
            points.nrows(),
            category.len(),
        ));
    }
    if let Some(bad) = category
        .iter()
        .flatten()
        .find(|&&c| c >= category_names.len())
    {
        return Err(shape_err(
            "category index (< number of names)",
            category_names.len(),
            bad,
        ));
    }
    if points.is_empty() {
        return Err(EvalError::Empty("points"));
    }
    if points.iter().any(|v| !v.is_finite()) {
        return Err(EvalError::InvalidParam {
            name: "points",
            value: "non-finite".into(),
            hint: "coordinates must be finite",
        });
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for p in points.rows() {
        x0 = x0.min(p[0]);
        x1 = x1.max(p[0]);
        y0 = y0.min(p[1]);
        y1 = y1.max(p[1]);
    }
    let pad = |a: f32, b: f32| 0.05 * (b - a).max(1e-6);
    let (px, py) = (pad(x0, x1), pad(y0, y1));
    let legend_w = 260;
    render_png(path, (900 + legend_w, 900), |root| {
        let (plot_area, legend_area) = root.split_horizontally(900);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(title, (FONT, 24))
            .margin(15)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(
                (x0 - px) as f64..(x1 + px) as f64,
                (y0 - py) as f64..(y1 + py) as f64,
            )
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .label_style((FONT, 13))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(|e| e.to_string())?;
        // Unlabelled points first, so categories stay visible on top.
        let grey = RGBColor(200, 200, 200);
        chart
            .draw_series(
                points
                    .rows()
                    .into_iter()
                    .zip(category)
                    .filter(|(_, c)| c.is_none())
                    .map(|(p, _)| {
                        Circle::new((f64::from(p[0]), f64::from(p[1])), 2, grey.filled())
                    }),
            )
            .map_err(|e| e.to_string())?;
        for (k, _) in category_names.iter().enumerate() {
            let color = palette_color(k);
            chart
                .draw_series(
                    points
                        .rows()
                        .into_iter()
                        .zip(category)
                        .filter(|(_, c)| **c == Some(k))
                        .map(|(p, _)| {
                            Circle::new(
                                (f64::from(p[0]), f64::from(p[1])),
                                3,
                                color.mix(0.8).filled(),
                            )
                        }),
                )
                .map_err(|e| e.to_string())?;
        }
        // Legend in its own column: one row per category with its count.
        let row_h = 20i32;
        let max_rows = (880 / row_h) as usize;
        for (k, name) in category_names.iter().enumerate().take(max_rows) {
            let count = category.iter().filter(|c| **c == Some(k)).count();
            let y = 30 + k as i32 * row_h;
            legend_area
                .draw(&Circle::new((15, y), 5, palette_color(k).filled()))
                .map_err(|e| e.to_string())?;
            legend_area
                .draw(&Text::new(
                    format!("{name} ({count})"),
                    (28, y - 8),
                    (FONT, 14),
                ))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// For a multi-label matrix (N x C, 1 / 0 / NaN), the positive class of each row with the
/// fewest training positives (the rarest finding is the most informative colour in a
/// long-tail t-SNE); `None` for rows without a positive.
pub fn rarest_positive_class(
    labels: ArrayView2<'_, f32>,
    train_counts: &[usize],
) -> Result<Vec<Option<usize>>> {
    if train_counts.len() != labels.ncols() {
        return Err(shape_err(
            "train counts (one per class)",
            labels.ncols(),
            train_counts.len(),
        ));
    }
    Ok(labels
        .rows()
        .into_iter()
        .map(|row| {
            (0..row.len())
                .filter(|&c| row[c] == 1.0)
                .min_by_key(|&c| (train_counts[c], c))
        })
        .collect())
}
