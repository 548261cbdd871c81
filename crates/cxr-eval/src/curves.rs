//! Training curves: one figure of four panels (training loss and learning rate per step,
//! validation loss and validation macro AUC per epoch) for one run or several overlaid.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{EvalError, Result};
use crate::plot::{palette_color, render_png_bytes, FONT};

/// One run's curves, as `(x, y)` points: x is the optimisation step for `train_loss` and `lr`,
/// the epoch (counted from 1) for `val_loss` and `val_auc`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainingCurves {
    /// The run's name in the legend.
    pub name: String,
    pub train_loss: Vec<(f64, f64)>,
    pub lr: Vec<(f64, f64)>,
    pub val_loss: Vec<(f64, f64)>,
    pub val_auc: Vec<(f64, f64)>,
}

/// A trailing mean over `window` points (the raw per-step loss is noisy).
fn smooth(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let mut sum = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            sum += y;
            if i >= window {
                sum -= points[i - window].1;
            }
            (x, sum / (i + 1).min(window) as f64)
        })
        .collect()
}

/// The axis range of the finite values `v`, padded by 5% (a flat series gets a small span).
fn range(v: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = v
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
            (l.min(x), h.max(x))
        });
    if lo > hi {
        return None;
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        0.05 * lo.abs().max(1e-3)
    };
    Some((lo - pad, hi + pad))
}

/// Which series of a run a panel shows.
#[derive(Clone, Copy)]
enum Series {
    TrainLoss,
    Lr,
    ValLoss,
    ValAuc,
}

impl Series {
    fn of(self, c: &TrainingCurves) -> &[(f64, f64)] {
        match self {
            Series::TrainLoss => &c.train_loss,
            Series::Lr => &c.lr,
            Series::ValLoss => &c.val_loss,
            Series::ValAuc => &c.val_auc,
        }
    }

    fn caption(self) -> &'static str {
        match self {
            Series::TrainLoss => "Training loss per step (line: trailing mean)",
            Series::Lr => "Learning rate per step",
            Series::ValLoss => "Validation loss per epoch",
            Series::ValAuc => "Validation macro AUC per epoch",
        }
    }

    fn per_step(self) -> bool {
        matches!(self, Series::TrainLoss | Series::Lr)
    }
}

/// The four-panel figure of `runs` (one colour per run, a legend when there are several) as
/// PNG bytes; `title` heads it. An error when no run has a point to draw.
pub fn plot_training_curves(runs: &[TrainingCurves], title: &str) -> Result<Vec<u8>> {
    let panels = [
        Series::TrainLoss,
        Series::ValLoss,
        Series::Lr,
        Series::ValAuc,
    ];
    if runs
        .iter()
        .all(|r| panels.iter().all(|s| s.of(r).is_empty()))
    {
        return Err(EvalError::Empty("training curves (no metrics recorded)"));
    }
    let (w, h) = (1400u32, 1000u32);
    render_png_bytes(Path::new("curves.png"), (w, h), |root| {
        let (top, body) = root.split_vertically(50);
        top.titled(title, (FONT, 26)).map_err(|e| e.to_string())?;
        let areas = body.split_evenly((2, 2));
        for (area, series) in areas.iter().zip(panels) {
            draw_panel(area, runs, series)?;
        }
        Ok(())
    })
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    runs: &[TrainingCurves],
    series: Series,
) -> std::result::Result<(), String> {
    let all = || runs.iter().flat_map(|r| series.of(r).iter());
    let (Some(xr), Some(yr)) = (range(all().map(|p| p.0)), range(all().map(|p| p.1))) else {
        area.draw(&Text::new(
            format!("{}: no data", series.caption()),
            (20, 40),
            (FONT, 18),
        ))
        .map_err(|e| e.to_string())?;
        return Ok(());
    };
    let x_desc = if series.per_step() { "step" } else { "epoch" };
    let mut chart = ChartBuilder::on(area)
        .caption(series.caption(), (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
        .map_err(|e| e.to_string())?;
    // Steps and epochs are whole numbers: about one tick per unit when they are few.
    let x_ticks = ((xr.1 - xr.0).floor() as usize + 1).clamp(2, 10);
    let x_labels = |x: &f64| format!("{x:.0}");
    let lr_labels = |y: &f64| format!("{y:.1e}");
    let plain_labels = |y: &f64| format!("{y:.3}");
    let y_fmt: &dyn Fn(&f64) -> String = match series {
        Series::Lr => &lr_labels,
        _ => &plain_labels,
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_labels(x_ticks)
        .x_label_formatter(&x_labels)
        .y_label_formatter(y_fmt)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, run) in runs.iter().enumerate() {
        let points = series.of(run);
        if points.is_empty() {
            continue;
        }
        let color = palette_color(k);
        let line = match series {
            Series::TrainLoss => {
                // The raw loss faintly, its trailing mean on top.
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.mix(0.3).stroke_width(1),
                    ))
                    .map_err(|e| e.to_string())?;
                let window = (points.len() / 50).max(1);
                smooth(points, window)
            }
            _ => points.to_vec(),
        };
        let drawn = chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        if runs.len() > 1 {
            drawn.label(run.name.clone()).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 18, y)], color.stroke_width(3))
            });
        }
        if !series.per_step() {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    if runs.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, steps: usize, epochs: usize) -> TrainingCurves {
        TrainingCurves {
            name: name.into(),
            train_loss: (0..steps)
                .map(|s| (s as f64, 3.0 / (1.0 + s as f64)))
                .collect(),
            lr: (0..steps).map(|s| (s as f64, 1e-4)).collect(),
            val_loss: (1..=epochs).map(|e| (e as f64, 2.0 / e as f64)).collect(),
            val_auc: (1..=epochs)
                .map(|e| (e as f64, 0.5 + 0.05 * e as f64))
                .collect(),
        }
    }

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .expect("a PNG")
            .to_rgb8()
    }

    /// Pixels of exactly `c` (curves are drawn in the palette colours, nothing else is).
    fn count_color(img: &image::RgbImage, c: RGBColor) -> usize {
        img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count()
    }

    #[test]
    fn one_run_draws_all_four_panels() {
        let png = plot_training_curves(&[run("a", 40, 3)], "run a").unwrap();
        let img = decode(&png);
        assert_eq!(img.dimensions(), (1400, 1000));
        // Each quadrant holds some of the run's colour (its curves).
        let c = palette_color(0);
        for (qx, qy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let quadrant = image::imageops::crop_imm(&img, qx * 700, 50 + qy * 475, 700, 475);
            assert!(
                count_color(&quadrant.to_image(), c) > 50,
                "panel ({qx}, {qy}) has no curve"
            );
        }
    }

    #[test]
    fn several_runs_get_their_own_colours() {
        let png = plot_training_curves(&[run("a", 40, 3), run("b", 30, 2)], "both").unwrap();
        let img = decode(&png);
        assert!(count_color(&img, palette_color(0)) > 100);
        assert!(count_color(&img, palette_color(1)) > 100);
    }

    #[test]
    fn a_constant_series_and_a_missing_one_still_draw() {
        let mut r = run("a", 1, 1);
        r.val_auc.clear();
        let png = plot_training_curves(&[r], "one step").unwrap();
        assert_eq!(decode(&png).dimensions(), (1400, 1000));
    }

    #[test]
    fn no_points_at_all_is_an_error() {
        let err = plot_training_curves(&[TrainingCurves::default()], "x").unwrap_err();
        assert!(err.to_string().contains("no metrics"), "{err}");
    }

    #[test]
    fn smoothing_is_a_trailing_mean() {
        let p = [(0.0, 1.0), (1.0, 3.0), (2.0, 5.0), (3.0, 7.0)];
        assert_eq!(
            smooth(&p, 2),
            vec![(0.0, 1.0), (1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]
        );
    }
}
