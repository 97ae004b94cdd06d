//! The notebook's figures (histograms under a population pdf), the
//! inferred population with 68% and 95% bands per method, and trace and
//! rank plots per chain.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::label::RichLabel;
use super::{Draw, FAMILY, HPos, PALETTE, TRUTH, VPos, density_histogram, drawing, put_text};
use crate::error::Result;
use crate::math::stats::quantile_sorted;

/// A legend label, a colour and points of a curve.
pub type Curve = (String, RGBColor, Vec<(f64, f64)>);

/// Histograms drawn as filled bars plus curves on one axis.
#[derive(Debug, Clone)]
pub struct HistCurves {
    pub title: String,
    /// Parameter name of the x axis (drawn as a rich label).
    pub x_name: String,
    pub x_range: (f64, f64),
    pub bins: usize,
    /// (legend label, colour, values); bars are translucent.
    pub hists: Vec<(String, RGBColor, Vec<f64>)>,
    /// (legend label, colour, points).
    pub curves: Vec<Curve>,
}

/// The legend in the upper right and the x axis's rich label, shared by
/// the one-axis figures.
type Axes = Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>;

fn finish_chart<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Axes>,
    root: &DrawingArea<DB, Shift>,
    (w, h): (u32, u32),
    x_name: &str,
) -> Result<()> {
    chart
        .configure_series_labels()
        .label_font(axis_font(14.0))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(drawing)?;
    RichLabel::from_name(x_name).draw(root, (w as i32 / 2 + 30, h as i32 - 20), 20.0, false, "")
}

fn axis_font(size: f64) -> TextStyle<'static> {
    TextStyle::from(FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Normal)).color(&BLACK)
}

impl Draw for HistCurves {
    fn size(&self) -> (u32, u32) {
        (720, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (lo, hi) = self.x_range;
        let width = (hi - lo) / self.bins as f64;
        let hists: Vec<Vec<f64>> = self
            .hists
            .iter()
            .map(|(_, _, v)| density_histogram(v, lo, hi, self.bins))
            .collect();
        let top = hists
            .iter()
            .flatten()
            .cloned()
            .chain(self.curves.iter().flat_map(|c| c.2.iter().map(|p| p.1)))
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE)
            * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, axis_font(18.0))
            .margin(12)
            .x_label_area_size(52)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style(axis_font(14.0))
            .y_desc("density")
            .axis_desc_style(axis_font(16.0))
            .draw()
            .map_err(drawing)?;
        for ((label, color, _), h) in self.hists.iter().zip(&hists) {
            let color = *color;
            chart
                .draw_series(h.iter().enumerate().filter(|(_, d)| **d > 0.0).map(|(b, &d)| {
                    let x0 = lo + b as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, d)], color.mix(0.35).filled())
                }))
                .map_err(drawing)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 20, y + 6)], color.mix(0.35).filled())
                });
        }
        for (label, color, points) in &self.curves {
            let color = *color;
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(drawing)?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        finish_chart(&mut chart, root, self.size(), &self.x_name)
    }
}

/// Pointwise quantiles of a population pdf over hyperposterior draws.
#[derive(Debug, Clone)]
pub struct Band {
    pub label: String,
    pub color: RGBColor,
    /// 2.5, 16, 50, 84 and 97.5% at each x.
    pub quantiles: [Vec<f64>; 5],
}

impl Band {
    /// Evaluates `pdf(theta, x)` at every x for up to `max_draws` draws
    /// spread evenly over `draws` and takes pointwise quantiles.
    pub fn from_draws(
        label: &str,
        color: RGBColor,
        x: &[f64],
        draws: &[Vec<f64>],
        max_draws: usize,
        pdf: impl Fn(&[f64], f64) -> f64,
    ) -> Self {
        Self::from_curves(label, color, x, draws, max_draws, |th| {
            x.iter().map(|&xi| pdf(th, xi)).collect()
        })
    }

    /// As [`Band::from_draws`], with `curve(theta)` giving the values at
    /// every x at once (so a normalising constant is computed once).
    pub fn from_curves(
        label: &str,
        color: RGBColor,
        x: &[f64],
        draws: &[Vec<f64>],
        max_draws: usize,
        curve: impl Fn(&[f64]) -> Vec<f64>,
    ) -> Self {
        let step = (draws.len() / max_draws.max(1)).max(1);
        let curves: Vec<Vec<f64>> = draws.iter().step_by(step).map(|th| curve(th)).collect();
        let mut quantiles: [Vec<f64>; 5] = Default::default();
        let mut column = vec![0.0; curves.len()];
        for i in 0..x.len() {
            for (c, cv) in column.iter_mut().zip(&curves) {
                *c = cv[i];
            }
            column.sort_unstable_by(f64::total_cmp);
            for (q, p) in quantiles.iter_mut().zip([0.025, 0.16, 0.5, 0.84, 0.975]) {
                q.push(if column.is_empty() {
                    0.0
                } else {
                    quantile_sorted(&column, p)
                });
            }
        }
        Self {
            label: label.into(),
            color,
            quantiles,
        }
    }
}

/// The inferred population pdf with 68% and 95% bands per method, and the
/// true pdf.
#[derive(Debug, Clone)]
pub struct PopulationBands {
    pub title: String,
    pub x_name: String,
    pub x: Vec<f64>,
    pub bands: Vec<Band>,
    pub truth: Option<Vec<f64>>,
    /// Logarithmic y axis (number densities over decades).
    pub log_y: bool,
}

impl Draw for PopulationBands {
    fn size(&self) -> (u32, u32) {
        (720, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        if self.log_y {
            // Number densities span decades: draw log10 of everything,
            // four decades below the highest value.
            let top = self.highest();
            let floor = top * 1e-4;
            let log = |v: &Vec<f64>| v.iter().map(|&y| y.max(floor).log10()).collect::<Vec<f64>>();
            let linear = PopulationBands {
                title: self.title.clone(),
                x_name: self.x_name.clone(),
                x: self.x.clone(),
                bands: self
                    .bands
                    .iter()
                    .map(|b| Band {
                        label: b.label.clone(),
                        color: b.color,
                        quantiles: std::array::from_fn(|k| log(&b.quantiles[k])),
                    })
                    .collect(),
                truth: self.truth.as_ref().map(log),
                log_y: false,
            };
            return linear.draw_axes(root, (floor.log10(), top.log10() + 0.3), "log10 density");
        }
        let top = self.highest() * 1.1;
        self.draw_axes(root, (0.0, top), "population density")
    }
}

impl PopulationBands {
    /// The highest upper band edge or truth value (at least the smallest
    /// positive number, so axes never collapse).
    fn highest(&self) -> f64 {
        self.bands
            .iter()
            .flat_map(|b| b.quantiles[4].iter())
            .chain(self.truth.iter().flatten())
            .cloned()
            .fold(f64::MIN_POSITIVE, f64::max)
    }

    fn draw_axes<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        y: (f64, f64),
        y_desc: &str,
    ) -> Result<()> {
        let (lo, hi) = (self.x[0], self.x[self.x.len() - 1]);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, axis_font(18.0))
            .margin(12)
            .x_label_area_size(52)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, y.0..y.1)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style(axis_font(14.0))
            .y_desc(y_desc)
            .axis_desc_style(axis_font(16.0))
            .draw()
            .map_err(drawing)?;
        for band in &self.bands {
            let color = band.color;
            for (lo_q, hi_q, alpha) in [(0, 4, 0.15), (1, 3, 0.3)] {
                let mut poly: Vec<(f64, f64)> = self
                    .x
                    .iter()
                    .copied()
                    .zip(band.quantiles[hi_q].iter().copied())
                    .collect();
                poly.extend(
                    self.x
                        .iter()
                        .copied()
                        .zip(band.quantiles[lo_q].iter().copied())
                        .rev(),
                );
                chart
                    .draw_series(std::iter::once(Polygon::new(poly, color.mix(alpha).filled())))
                    .map_err(drawing)?;
            }
            chart
                .draw_series(LineSeries::new(
                    self.x.iter().copied().zip(band.quantiles[2].iter().copied()),
                    color.stroke_width(2),
                ))
                .map_err(drawing)?
                .label(format!("{} (median, 68%, 95%)", band.label))
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], color.mix(0.5).filled()));
        }
        if let Some(t) = &self.truth {
            chart
                .draw_series(DashedLineSeries::new(
                    self.x.iter().copied().zip(t.iter().copied()),
                    8,
                    5,
                    TRUTH.stroke_width(2),
                ))
                .map_err(drawing)?
                .label("truth")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], TRUTH.stroke_width(2)));
        }
        finish_chart(&mut chart, root, self.size(), &self.x_name)
    }
}

/// Trace (left) and rank (right) plots, a row per parameter, a colour per
/// chain, as ArviZ's plot_trace and plot_rank.
#[derive(Debug, Clone)]
pub struct TraceRank {
    pub title: String,
    pub params: Vec<String>,
    /// `chains[k][c]`: parameter k's draws in chain c.
    pub chains: Vec<Vec<Vec<f64>>>,
    /// Chains shown (an ensemble's walkers are many).
    pub max_chains: usize,
}

impl TraceRank {
    fn shown(&self) -> usize {
        self.chains.first().map_or(0, |c| c.len().min(self.max_chains))
    }
}

/// Ranks (0-based, ties by order) of every value among all chains' values.
pub fn pooled_ranks(chains: &[Vec<f64>]) -> Vec<Vec<usize>> {
    let mut all: Vec<(f64, usize, usize)> = chains
        .iter()
        .enumerate()
        .flat_map(|(c, v)| v.iter().enumerate().map(move |(d, &x)| (x, c, d)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut ranks: Vec<Vec<usize>> = chains.iter().map(|c| vec![0; c.len()]).collect();
    for (r, &(_, c, d)) in all.iter().enumerate() {
        ranks[c][d] = r;
    }
    ranks
}

impl Draw for TraceRank {
    fn size(&self) -> (u32, u32) {
        (960, 60 + 230 * self.params.len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let n_chains = self.chains.first().map_or(0, Vec::len);
        let shown = self.shown();
        let title = if shown < n_chains {
            format!("{} (first {shown} of {n_chains} chains)", self.title)
        } else {
            self.title.clone()
        };
        let body = root.titled(&title, axis_font(18.0)).map_err(drawing)?;
        let rows = body.split_evenly((self.params.len(), 1));
        for (k, row) in rows.iter().enumerate() {
            let (left, right) = row.split_horizontally(600);
            let chains = &self.chains[k][..shown];
            let n_draws = chains.iter().map(Vec::len).max().unwrap_or(0).max(2);
            let (lo, hi) = super::shared_range(chains.iter().map(Vec::as_slice), 0.0);
            let mut chart = ChartBuilder::on(&left)
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(64)
                .build_cartesian_2d(0.0..(n_draws - 1) as f64, lo..hi)
                .map_err(drawing)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .label_style(axis_font(12.0))
                .x_label_formatter(&|v| format!("{v:.0}"))
                .draw()
                .map_err(drawing)?;
            for (c, draws) in chains.iter().enumerate() {
                chart
                    .draw_series(LineSeries::new(
                        draws.iter().enumerate().map(|(d, &v)| (d as f64, v)),
                        PALETTE[c % PALETTE.len()].mix(0.8).stroke_width(1),
                    ))
                    .map_err(drawing)?;
            }
            RichLabel::from_name(&self.params[k]).draw(
                &left,
                (14, left.dim_in_pixel().1 as i32 / 2),
                18.0,
                true,
                "",
            )?;
            self.draw_rank(&right, k, shown)?;
        }
        Ok(())
    }
}

impl TraceRank {
    /// Rank histograms per chain, stacked; each should be flat (dashed
    /// line) when the chains mix.
    fn draw_rank<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        k: usize,
        shown: usize,
    ) -> Result<()> {
        let ranks = pooled_ranks(&self.chains[k]);
        let total: usize = ranks.iter().map(Vec::len).sum();
        let bins = 20usize;
        let mut chart = ChartBuilder::on(area)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(10)
            .build_cartesian_2d(0.0..total as f64, 0.0..shown.max(1) as f64)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_y_axis()
            .label_style(axis_font(12.0))
            .x_labels(3)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(drawing)?;
        let width = total as f64 / bins as f64;
        for (c, r) in ranks.iter().take(shown).enumerate() {
            let mut counts = vec![0usize; bins];
            for &x in r {
                counts[((x as f64 / width) as usize).min(bins - 1)] += 1;
            }
            let expected = r.len() as f64 / bins as f64;
            let scale = 0.45 / expected.max(1.0);
            let base = c as f64 + 0.05;
            let color = PALETTE[c % PALETTE.len()];
            chart
                .draw_series(counts.iter().enumerate().map(|(b, &n)| {
                    let x0 = b as f64 * width;
                    Rectangle::new(
                        [(x0, base), (x0 + width * 0.95, base + n as f64 * scale)],
                        color.mix(0.7).filled(),
                    )
                }))
                .map_err(drawing)?;
            chart
                .draw_series(DashedLineSeries::new(
                    [
                        (0.0, base + expected * scale),
                        (total as f64, base + expected * scale),
                    ],
                    5,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(drawing)?;
        }
        put_text(
            area,
            "rank (all chains)",
            (area.dim_in_pixel().0 as i32 / 2, 4),
            12.0,
            (HPos::Center, VPos::Top),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_ranks_are_a_permutation() {
        let chains = vec![vec![0.5, 0.1, 0.9], vec![0.3, 0.7]];
        let r = pooled_ranks(&chains);
        assert_eq!(r, vec![vec![2, 0, 4], vec![1, 3]]);
    }

    #[test]
    fn band_quantiles_of_a_known_family() {
        // pdf(theta, x) = theta: the band at every x is the quantiles of
        // the draws themselves, 0..=100 -> 2.5, 16, 50, 84, 97.5.
        let draws: Vec<Vec<f64>> = (0..=100).map(|i| vec![f64::from(i)]).collect();
        let b = Band::from_draws("m", BLACK, &[0.0, 1.0], &draws, 1000, |t, _| t[0]);
        for (q, want) in b.quantiles.iter().zip([2.5, 16.0, 50.0, 84.0, 97.5]) {
            assert_eq!(q, &vec![want, want]);
        }
    }
}
