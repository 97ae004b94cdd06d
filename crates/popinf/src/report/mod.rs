//! What a person looks at: the figures and the offline HTML report. They
//! read traces, summaries and catalogs; they compute nothing that a result
//! depends on.
//!
//! Figures are PNG and SVG with no system fonts: plotters' bitmap and SVG
//! backends, text through `ab_glyph` with DejaVu Sans embedded in the
//! binary. Every figure is drawn twice from the same code, once per
//! backend, by a [`Draw`] implementation.

pub mod contour;
pub mod corner;
pub mod figures;
pub mod graph;
pub mod html;
pub mod label;

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
pub use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};

/// DejaVu Sans cut to Latin, Greek and mathematical symbols (see
/// `assets/README.md` for the licence and how it was made).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");

/// The family name figures ask for; the embedded font answers it.
pub const FAMILY: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse (a test loads it), so
        // failure here is a build defect, not an input problem.
        for style in [FontStyle::Normal, FontStyle::Bold, FontStyle::Italic] {
            if plotters::style::register_font(FAMILY, style, FONT).is_err() {
                panic!("the embedded font does not parse");
            }
        }
    });
}

/// Colours for methods and chains: matplotlib's "tab10", so a figure reads
/// like the corner.py / ArviZ figures astronomers know.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Colour of the truth lines, as corner.py's default "#4682b4" is hard to
/// tell from the first palette colour; black is not.
pub const TRUTH: RGBColor = RGBColor(0, 0, 0);

/// A figure that can draw itself on any plotters backend.
pub trait Draw {
    /// Size in pixels (the SVG uses the same user units).
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// A drawn figure, in both formats, ready to write.
#[derive(Debug, Clone)]
pub struct Figure {
    pub png: Vec<u8>,
    pub svg: String,
}

/// Turns a backend's error into ours.
pub(crate) fn drawing<E: std::fmt::Debug>(e: E) -> Error {
    Error::Invalid(format!("drawing a figure failed: {e:?}"))
}

/// Draws `fig` as PNG (RGB, encoded here) and as SVG.
pub fn render<F: Draw>(fig: &F) -> Result<Figure> {
    register_font();
    let (w, h) = fig.size();
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let area = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        area.fill(&WHITE).map_err(drawing)?;
        fig.draw(&area)?;
        area.present().map_err(drawing)?;
    }
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        area.fill(&WHITE).map_err(drawing)?;
        fig.draw(&area)?;
        area.present().map_err(drawing)?;
    }
    Ok(Figure {
        png: encode_png(&rgb, w, h)?,
        svg,
    })
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    // Plots are large flat areas: fast compression loses little size.
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().map_err(drawing)?;
    writer.write_image_data(rgb).map_err(drawing)?;
    writer.finish().map_err(drawing)?;
    Ok(out)
}

impl Figure {
    /// Writes `DIR/NAME.png` and `DIR/NAME.svg`, each atomically; returns
    /// both paths.
    pub fn write(&self, dir: &Path, name: &str) -> Result<[PathBuf; 2]> {
        let png = dir.join(format!("{name}.png"));
        let svg = dir.join(format!("{name}.svg"));
        crate::data::files::write_atomically(&png, &self.png)?;
        crate::data::files::write_atomically(&svg, self.svg.as_bytes())?;
        Ok([png, svg])
    }
}

/// Text in the embedded font at `size` pixels, anchored at `pos`.
pub fn text_style(size: f64, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from(FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Normal))
        .color(&BLACK)
        .pos(Pos::new(h, v))
}

/// Width in pixels of `text` at `size`.
pub fn text_width<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, size: f64) -> Result<i32> {
    if text.is_empty() {
        return Ok(0);
    }
    let style = text_style(size, HPos::Left, VPos::Top);
    Ok(area.estimate_text_size(text, &style).map_err(drawing)?.0 as i32)
}

/// Draws `text` anchored at `pos` (pixels of `area`).
pub fn put_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    pos: (i32, i32),
    size: f64,
    anchor: (HPos, VPos),
) -> Result<()> {
    area.draw_text(text, &text_style(size, anchor.0, anchor.1), pos)
        .map_err(drawing)
}

/// "Nice" tick spacing: 1, 2 or 5 times a power of ten, giving about
/// `target` ticks over `span`.
pub fn tick_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let frac = raw / mag;
    let nice = if frac < 1.5 {
        1.0
    } else if frac < 3.5 {
        2.0
    } else if frac < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Decimal places that show a tick step exactly (0.05 -> 2, 20 -> 0).
pub fn tick_decimals(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10() - 1e-9).ceil().max(0.0) as usize
    }
}

/// A histogram of `values` over `[lo, hi)` with `bins` bins, as densities
/// (integrating to the fraction of values inside the range).
pub fn density_histogram(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let mut counts = vec![0.0; bins];
    let width = (hi - lo) / bins as f64;
    for &v in values {
        if v >= lo && v < hi {
            let b = (((v - lo) / width) as usize).min(bins - 1);
            counts[b] += 1.0;
        }
    }
    let norm = 1.0 / (values.len().max(1) as f64 * width);
    counts.iter_mut().for_each(|c| *c *= norm);
    counts
}

/// The range covering the central `1 - 2 tail` of every data set, padded
/// by 10% on each side: a shared axis range for overlays.
pub fn shared_range<'a>(sets: impl IntoIterator<Item = &'a [f64]>, tail: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for set in sets {
        if set.is_empty() {
            continue;
        }
        let mut s = set.to_vec();
        s.sort_unstable_by(f64::total_cmp);
        lo = lo.min(crate::math::stats::quantile_sorted(&s, tail));
        hi = hi.max(crate::math::stats::quantile_sorted(&s, 1.0 - tail));
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    if hi <= lo {
        let pad = lo.abs().max(1.0) * 0.1;
        return (lo - pad, hi + pad);
    }
    let pad = 0.1 * (hi - lo);
    (lo - pad, hi + pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_font_parses_and_has_greek() {
        let font = ab_glyph::FontRef::try_from_slice(FONT).unwrap();
        use ab_glyph::Font;
        for c in ['θ', 'μ', 'σ', 'α', 'φ', '−', 'A', '9'] {
            assert_ne!(font.glyph_id(c).0, 0, "glyph for {c} missing");
        }
    }

    #[test]
    fn ticks_are_nice() {
        assert_eq!(tick_step(1.0, 5), 0.2);
        assert_eq!(tick_step(10.0, 4), 2.0);
        assert!((tick_step(0.3, 4) - 0.1).abs() < 1e-15);
        assert_eq!(tick_decimals(0.05), 2);
        assert_eq!(tick_decimals(0.1), 1);
        assert_eq!(tick_decimals(2.0), 0);
    }

    #[test]
    fn histogram_integrates_to_fraction_inside() {
        // Values away from bin edges, 50 per bin of width 0.05.
        let v: Vec<f64> = (0..1000).map(|i| (i as f64 + 0.5) / 1000.0).collect();
        let h = density_histogram(&v, 0.0, 0.5, 10);
        let integral: f64 = h.iter().map(|d| d * 0.05).sum();
        assert!((integral - 0.5).abs() < 1e-12);
        assert!(h.iter().all(|&d| (d - 1.0).abs() < 1e-12));
    }
}
