//! Corner plots in the style of corner.py: step histograms with 16/50/84%
//! quantile lines and a "name = median +up -down" title on the diagonal,
//! filled density with 0.5/1/1.5/2-sigma contours below it, truth lines,
//! and several methods overlaid in distinct colours with a legend.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::contour::{
    contour_lines, gaussian_smooth, histogram2d, levels_for_mass, pad_with_zeros, sigma_levels,
};
use super::label::RichLabel;
use super::{
    Draw, HPos, TRUTH, VPos, density_histogram, drawing, put_text, text_width, tick_decimals, tick_step,
};
use crate::error::Result;
use crate::invalid;
use crate::math::stats::quantile_sorted;

/// One method's draws: `columns[k]` holds parameter k's draws.
#[derive(Debug, Clone)]
pub struct CornerSeries {
    pub label: String,
    pub color: RGBColor,
    pub columns: Vec<Vec<f64>>,
}

#[derive(Debug, Clone)]
pub struct Corner {
    pub params: Vec<String>,
    pub series: Vec<CornerSeries>,
    pub truths: Vec<Option<f64>>,
    /// Axis range of each parameter.
    pub ranges: Vec<(f64, f64)>,
    /// The series whose quantiles the diagonal titles and dashed lines show.
    pub title_series: Option<usize>,
    pub bins_1d: usize,
    pub bins_2d: usize,
    /// Gaussian smoothing of the 2-D histograms, in bins.
    pub smooth: f64,
    /// Panel side in pixels.
    pub panel: u32,
}

const LEFT: u32 = 78;
const BOTTOM: u32 = 66;
const TOP: u32 = 44;
const RIGHT: u32 = 24;
const GAP: u32 = 10;
const TICK_FONT: f64 = 13.0;
const LABEL_FONT: f64 = 20.0;
const TITLE_FONT: f64 = 16.0;

/// The numbers in a diagonal title: median and the distances to the 84th
/// and 16th percentiles (numpy's linear interpolation, as corner.py).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TitleNumbers {
    pub q16: f64,
    pub q50: f64,
    pub q84: f64,
}

impl TitleNumbers {
    pub fn from_draws(draws: &[f64]) -> Self {
        let mut s = draws.to_vec();
        s.sort_unstable_by(f64::total_cmp);
        Self {
            q16: quantile_sorted(&s, 0.16),
            q50: quantile_sorted(&s, 0.50),
            q84: quantile_sorted(&s, 0.84),
        }
    }

    /// Median, "+up" and "−down", to the decimals that give the smaller
    /// error two significant figures.
    pub fn formatted(&self) -> (String, String, String) {
        let (up, down) = (self.q84 - self.q50, self.q50 - self.q16);
        let small = up.min(down);
        let decimals = if small > 0.0 && small.is_finite() {
            (1 - small.log10().floor() as i32).clamp(0, 8) as usize
        } else {
            2
        };
        (
            format!("{:.*}", decimals, self.q50).replace('-', "\u{2212}"),
            format!("+{:.*}", decimals, up),
            format!("\u{2212}{:.*}", decimals, down),
        )
    }
}

impl Corner {
    /// A corner plot of the named parameters; ranges cover every series'
    /// central 99% (and the truths, once set) with a margin.
    pub fn new(params: Vec<String>, series: Vec<CornerSeries>) -> Result<Self> {
        if params.is_empty() {
            return invalid!("corner plot: no parameters");
        }
        for s in &series {
            if s.columns.len() != params.len() {
                return invalid!(
                    "corner plot: series '{}' has {} parameters, expected {}",
                    s.label,
                    s.columns.len(),
                    params.len()
                );
            }
            if let Some(k) = s.columns.iter().position(|c| c.iter().any(|v| !v.is_finite())) {
                return invalid!(
                    "corner plot: series '{}' has a non-finite draw of {}",
                    s.label,
                    params[k]
                );
            }
        }
        let n = params.len();
        let ranges = (0..n)
            .map(|k| super::shared_range(series.iter().map(|s| s.columns[k].as_slice()), 0.005))
            .collect();
        Ok(Self {
            truths: vec![None; n],
            params,
            series,
            ranges,
            title_series: Some(0),
            bins_1d: 30,
            bins_2d: 40,
            smooth: 1.0,
            panel: 250,
        })
    }

    /// Truth lines; ranges widen to show them.
    pub fn with_truths(mut self, truths: Vec<Option<f64>>) -> Self {
        for (r, t) in self.ranges.iter_mut().zip(&truths) {
            if let Some(t) = *t {
                let pad = 0.05 * (r.1 - r.0);
                r.0 = r.0.min(t - pad);
                r.1 = r.1.max(t + pad);
            }
        }
        self.truths = truths;
        self
    }

    fn origin(&self, row: usize, col: usize) -> (i32, i32) {
        let step = (self.panel + GAP) as i32;
        (LEFT as i32 + col as i32 * step, TOP as i32 + row as i32 * step)
    }

    /// Pixel x of value `v` of parameter `k` in a panel starting at `x0`.
    fn px(&self, k: usize, v: f64, x0: i32) -> i32 {
        let (lo, hi) = self.ranges[k];
        x0 + ((v - lo) / (hi - lo) * self.panel as f64).round() as i32
    }

    fn py(&self, k: usize, v: f64, y0: i32) -> i32 {
        let (lo, hi) = self.ranges[k];
        y0 + self.panel as i32 - ((v - lo) / (hi - lo) * self.panel as f64).round() as i32
    }

    fn ticks(&self, k: usize) -> (Vec<f64>, usize) {
        let (lo, hi) = self.ranges[k];
        let step = tick_step(hi - lo, 4);
        let first = (lo / step).ceil() as i64;
        let last = (hi / step).floor() as i64;
        (
            (first..=last).map(|i| i as f64 * step).collect(),
            tick_decimals(step),
        )
    }

    fn draw_diagonal<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, k: usize) -> Result<()> {
        let (x0, y0) = self.origin(k, k);
        let (lo, hi) = self.ranges[k];
        let bins = self.bins_1d;
        let width = (hi - lo) / bins as f64;
        let hists: Vec<Vec<f64>> = self
            .series
            .iter()
            .map(|s| density_histogram(&s.columns[k], lo, hi, bins))
            .collect();
        let top = hists
            .iter()
            .flatten()
            .cloned()
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE)
            * 1.1;
        let sub = root.clone().shrink((x0, y0), (self.panel, self.panel));
        let mut chart = ChartBuilder::on(&sub)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(drawing)?;
        for (s, h) in self.series.iter().zip(&hists) {
            let mut pts = vec![(lo, 0.0)];
            for (b, &d) in h.iter().enumerate() {
                let e = lo + b as f64 * width;
                pts.push((e, d));
                pts.push((e + width, d));
            }
            pts.push((hi, 0.0));
            chart
                .draw_series(std::iter::once(PathElement::new(pts, s.color.stroke_width(2))))
                .map_err(drawing)?;
        }
        if let Some(s) = self.title_series.and_then(|i| self.series.get(i)) {
            let q = TitleNumbers::from_draws(&s.columns[k]);
            for v in [q.q16, q.q50, q.q84] {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(v, 0.0), (v, top)],
                        6,
                        4,
                        s.color.stroke_width(1),
                    ))
                    .map_err(drawing)?;
            }
            self.draw_title(root, k, &q)?;
        }
        if let Some(t) = self.truths[k] {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(t, 0.0), (t, top)],
                    TRUTH.stroke_width(1),
                )))
                .map_err(drawing)?;
        }
        self.frame(root, x0, y0)?;
        self.x_ticks(root, k, x0, y0, k + 1 == self.params.len())?;
        Ok(())
    }

    /// "θ_μ = 0.01 +0.03 −0.03" above panel `k`, the errors stacked.
    fn draw_title<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        k: usize,
        q: &TitleNumbers,
    ) -> Result<()> {
        let (x0, y0) = self.origin(k, k);
        let (med, up, down) = q.formatted();
        let label = RichLabel::from_name(&self.params[k]);
        let small = TITLE_FONT * 0.7;
        let stacked = text_width(root, &up, small)?.max(text_width(root, &down, small)?) + 2;
        let suffix = format!(" = {med}");
        let centre = (x0 + self.panel as i32 / 2 - stacked / 2, y0 - 18);
        let (end_x, _) = label.draw_with_room(root, centre, TITLE_FONT, false, &suffix, stacked)?;
        put_text(
            root,
            &up,
            (end_x + 2, centre.1 - 5),
            small,
            (HPos::Left, VPos::Center),
        )?;
        put_text(
            root,
            &down,
            (end_x + 2, centre.1 + 7),
            small,
            (HPos::Left, VPos::Center),
        )?;
        Ok(())
    }

    fn draw_pair<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        row: usize,
        col: usize,
    ) -> Result<()> {
        let (x0, y0) = self.origin(row, col);
        let (xr, yr) = (self.ranges[col], self.ranges[row]);
        let sub = root.clone().shrink((x0, y0), (self.panel, self.panel));
        let mut chart = ChartBuilder::on(&sub)
            .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
            .map_err(drawing)?;
        let fractions = sigma_levels();
        for s in &self.series {
            let grid = gaussian_smooth(
                &histogram2d(&s.columns[col], &s.columns[row], xr, yr, self.bins_2d),
                self.smooth,
            );
            if grid.values.iter().all(|&v| v == 0.0) {
                continue;
            }
            let levels = levels_for_mass(&grid, &fractions);
            let (hx, hy) = grid.bin_width();
            // Filled bands, darker inside: a run of equal bands in a row
            // is one rectangle, which keeps the SVG small.
            let mut rects = Vec::new();
            for j in 0..grid.ny() {
                let band = |i: usize| levels.iter().filter(|&&l| grid.at(i, j) >= l).count();
                let mut i = 0;
                while i < grid.nx() {
                    let b = band(i);
                    let start = i;
                    while i < grid.nx() && band(i) == b {
                        i += 1;
                    }
                    if b > 0 {
                        let (xa, xb) = (grid.x[start] - hx / 2.0, grid.x[i - 1] + hx / 2.0);
                        let (ya, yb) = (grid.y[j] - hy / 2.0, grid.y[j] + hy / 2.0);
                        rects.push(Rectangle::new(
                            [(xa, ya), (xb, yb)],
                            s.color.mix(0.09 * b as f64).filled(),
                        ));
                    }
                }
            }
            chart.draw_series(rects).map_err(drawing)?;
            let padded = pad_with_zeros(&grid);
            for &level in &levels {
                for line in contour_lines(&padded, level) {
                    chart
                        .draw_series(std::iter::once(PathElement::new(line, s.color.stroke_width(1))))
                        .map_err(drawing)?;
                }
            }
        }
        if let Some(t) = self.truths[col] {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(t, yr.0), (t, yr.1)],
                    TRUTH.stroke_width(1),
                )))
                .map_err(drawing)?;
        }
        if let Some(t) = self.truths[row] {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(xr.0, t), (xr.1, t)],
                    TRUTH.stroke_width(1),
                )))
                .map_err(drawing)?;
        }
        if let (Some(tx), Some(ty)) = (self.truths[col], self.truths[row]) {
            chart
                .draw_series(std::iter::once(Circle::new((tx, ty), 4, TRUTH.filled())))
                .map_err(drawing)?;
        }
        self.frame(root, x0, y0)?;
        self.x_ticks(root, col, x0, y0, row + 1 == self.params.len())?;
        self.y_ticks(root, row, x0, y0, col == 0)?;
        Ok(())
    }

    fn frame<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, x0: i32, y0: i32) -> Result<()> {
        let p = self.panel as i32;
        root.draw(&Rectangle::new(
            [(x0, y0), (x0 + p, y0 + p)],
            BLACK.stroke_width(1),
        ))
        .map_err(drawing)
    }

    fn x_ticks<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        k: usize,
        x0: i32,
        y0: i32,
        labelled: bool,
    ) -> Result<()> {
        let bottom = y0 + self.panel as i32;
        let (ticks, decimals) = self.ticks(k);
        for v in ticks {
            let x = self.px(k, v, x0);
            root.draw(&PathElement::new(
                vec![(x, bottom), (x, bottom - 5)],
                BLACK.stroke_width(1),
            ))
            .map_err(drawing)?;
            if labelled {
                put_text(
                    root,
                    &format!("{v:.decimals$}"),
                    (x, bottom + 4),
                    TICK_FONT,
                    (HPos::Center, VPos::Top),
                )?;
            }
        }
        if labelled {
            let label = RichLabel::from_name(&self.params[k]);
            label.draw(
                root,
                (x0 + self.panel as i32 / 2, bottom + 38),
                LABEL_FONT,
                false,
                "",
            )?;
        }
        Ok(())
    }

    fn y_ticks<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        k: usize,
        x0: i32,
        y0: i32,
        labelled: bool,
    ) -> Result<()> {
        let (ticks, decimals) = self.ticks(k);
        for v in ticks {
            let y = self.py(k, v, y0);
            root.draw(&PathElement::new(
                vec![(x0, y), (x0 + 5, y)],
                BLACK.stroke_width(1),
            ))
            .map_err(drawing)?;
            if labelled {
                put_text(
                    root,
                    &format!("{v:.decimals$}"),
                    (x0 - 4, y),
                    TICK_FONT,
                    (HPos::Right, VPos::Center),
                )?;
            }
        }
        if labelled {
            let label = RichLabel::from_name(&self.params[k]);
            label.draw(root, (x0 - 62, y0 + self.panel as i32 / 2), LABEL_FONT, true, "")?;
        }
        Ok(())
    }

    fn legend<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let n = self.params.len();
        let mut entries: Vec<(String, RGBColor)> =
            self.series.iter().map(|s| (s.label.clone(), s.color)).collect();
        if self.truths.iter().any(Option::is_some) {
            entries.push(("truth".into(), TRUTH));
        }
        if entries.len() < 2 {
            return Ok(());
        }
        // The empty upper-right triangle; a 1-D "corner" keeps it inside
        // its only panel.
        let (x0, y0) = if n >= 2 {
            let (x, y) = self.origin(0, n - 1);
            (x + 10, y + 10)
        } else {
            let (x, y) = self.origin(0, 0);
            (x + self.panel as i32 - 120, y + 10)
        };
        for (i, (label, color)) in entries.iter().enumerate() {
            let y = y0 + 24 * i as i32 + 8;
            root.draw(&PathElement::new(
                vec![(x0, y), (x0 + 28, y)],
                color.stroke_width(3),
            ))
            .map_err(drawing)?;
            put_text(root, label, (x0 + 36, y), 16.0, (HPos::Left, VPos::Center))?;
        }
        Ok(())
    }
}

impl Draw for Corner {
    fn size(&self) -> (u32, u32) {
        let n = self.params.len() as u32;
        let inner = n * self.panel + (n - 1) * GAP;
        (LEFT + inner + RIGHT, TOP + inner + BOTTOM)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let n = self.params.len();
        for row in 0..n {
            for col in 0..row {
                self.draw_pair(root, row, col)?;
            }
            self.draw_diagonal(root, row)?;
        }
        self.legend(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_quantiles_are_numpy_percentiles() {
        // 0..=100: percentiles are the values themselves.
        let draws: Vec<f64> = (0..=100).rev().map(f64::from).collect();
        let q = TitleNumbers::from_draws(&draws);
        assert_eq!((q.q16, q.q50, q.q84), (16.0, 50.0, 84.0));
        // numpy.percentile([0.3, 1.9, 0.7, 1.1, 2.6], [16, 50, 84])
        //   = [0.556, 1.1, 2.152]
        let q = TitleNumbers::from_draws(&[0.3, 1.9, 0.7, 1.1, 2.6]);
        assert!((q.q16 - 0.556).abs() < 1e-12);
        assert!((q.q50 - 1.1).abs() < 1e-12);
        assert!((q.q84 - 2.152).abs() < 1e-12);
        // Two significant figures on the smaller error (0.544 -> 0.54).
        assert_eq!(
            q.formatted(),
            ("1.10".into(), "+1.05".into(), "\u{2212}0.54".into())
        );
        let q = TitleNumbers {
            q16: 0.9712,
            q50: 1.0043,
            q84: 1.0401,
        };
        assert_eq!(
            q.formatted(),
            ("1.004".into(), "+0.036".into(), "\u{2212}0.033".into())
        );
    }

    #[test]
    fn mismatched_series_is_an_error() {
        let s = CornerSeries {
            label: "a".into(),
            color: BLACK,
            columns: vec![vec![1.0]],
        };
        let e = Corner::new(vec!["x".into(), "y".into()], vec![s]).unwrap_err();
        assert!(
            e.to_string().contains("series 'a' has 1 parameters, expected 2"),
            "{e}"
        );
    }
}
