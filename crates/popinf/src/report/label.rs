//! LaTeX-like parameter labels without LaTeX: `theta_mu` is drawn as a
//! Greek theta with a subscript mu, `log_phi_star_1` as "log φ*" with
//! subscript 1.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FAMILY, drawing, text_width};
use crate::error::Result;

/// A label as base text and an optional subscript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RichLabel {
    pub base: String,
    pub sub: String,
}

const GREEK: [(&str, &str); 24] = [
    ("alpha", "α"),
    ("beta", "β"),
    ("gamma", "γ"),
    ("delta", "δ"),
    ("epsilon", "ε"),
    ("zeta", "ζ"),
    ("eta", "η"),
    ("theta", "θ"),
    ("iota", "ι"),
    ("kappa", "κ"),
    ("lambda", "λ"),
    ("mu", "μ"),
    ("nu", "ν"),
    ("xi", "ξ"),
    ("pi", "π"),
    ("rho", "ρ"),
    ("sigma", "σ"),
    ("tau", "τ"),
    ("phi", "φ"),
    ("chi", "χ"),
    ("psi", "ψ"),
    ("omega", "ω"),
    ("Phi", "Φ"),
    ("Sigma", "Σ"),
];

fn greek(word: &str) -> String {
    GREEK
        .iter()
        .find(|(name, _)| *name == word)
        .map(|(_, g)| g.to_string())
        .unwrap_or_else(|| word.to_string())
}

impl RichLabel {
    /// The label for a parameter name: words split at `_`; leading "log"
    /// or "ln" stay words, the first other word is the base (Greek where it
    /// names a letter, "star" adds a superscript-like `*`), the rest the
    /// subscript.
    pub fn from_name(name: &str) -> Self {
        let words: Vec<&str> = name.split('_').filter(|w| !w.is_empty()).collect();
        let mut prefix = String::new();
        let mut rest = words.as_slice();
        while let [first, tail @ ..] = rest {
            if (*first == "log" || *first == "ln" || *first == "log10") && !tail.is_empty() {
                prefix.push_str(first);
                prefix.push(' ');
                rest = tail;
            } else {
                break;
            }
        }
        let Some((first, tail)) = rest.split_first() else {
            return Self {
                base: name.to_string(),
                sub: String::new(),
            };
        };
        let mut base = format!("{prefix}{}", greek(first));
        let mut subs = Vec::new();
        for w in tail {
            if *w == "star" {
                base.push('*');
            } else {
                subs.push(greek(w));
            }
        }
        Self {
            base,
            sub: subs.join(","),
        }
    }

    /// Plain text, with `_` before the subscript (for HTML alt text).
    pub fn plain(&self) -> String {
        if self.sub.is_empty() {
            self.base.clone()
        } else {
            format!("{}_{}", self.base, self.sub)
        }
    }

    /// HTML with a `<sub>` element.
    pub fn html(&self) -> String {
        if self.sub.is_empty() {
            html_escape(&self.base)
        } else {
            format!("{}<sub>{}</sub>", html_escape(&self.base), html_escape(&self.sub))
        }
    }

    /// Draws the label with its centre at `centre`, horizontal or, with
    /// `vertical`, reading bottom to top; `suffix` (e.g. " = 1.0 +0.1 -0.1")
    /// follows the subscript at full size.
    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        centre: (i32, i32),
        size: f64,
        vertical: bool,
        suffix: &str,
    ) -> Result<()> {
        self.draw_with_room(area, centre, size, vertical, suffix, 0)
            .map(|_| ())
    }

    /// As [`RichLabel::draw`], leaving `extra` pixels after the suffix
    /// (for stacked +/- errors), and returning where the label ends along
    /// the text direction.
    pub fn draw_with_room<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        centre: (i32, i32),
        size: f64,
        vertical: bool,
        suffix: &str,
        extra: i32,
    ) -> Result<(i32, i32)> {
        let sub_size = size * 0.7;
        let style = |s: f64| -> TextStyle {
            let font = FontDesc::new(FontFamily::Name(FAMILY), s, FontStyle::Normal);
            let font = if vertical {
                font.transform(FontTransform::Rotate270)
            } else {
                font
            };
            TextStyle::from(font)
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center))
        };
        let width = |t: &str, s: f64| text_width(area, t, s);
        let (wb, ws, wx) = (
            width(&self.base, size)?,
            width(&self.sub, sub_size)?,
            width(suffix, size)?,
        );
        let total = wb + ws + wx + extra;
        // Position along the text direction (t) and across it (n, positive
        // = towards the baseline's "down").
        let at = |t: i32, n: i32| -> (i32, i32) {
            if vertical {
                (centre.0 + n, centre.1 + total / 2 - t)
            } else {
                (centre.0 - total / 2 + t, centre.1 + n)
            }
        };
        let drop = (0.3 * size) as i32;
        area.draw_text(&self.base, &style(size), at(0, 0))
            .map_err(drawing)?;
        if !self.sub.is_empty() {
            area.draw_text(&self.sub, &style(sub_size), at(wb, drop))
                .map_err(drawing)?;
        }
        if !suffix.is_empty() {
            area.draw_text(suffix, &style(size), at(wb + ws, 0))
                .map_err(drawing)?;
        }
        Ok(at(wb + ws + wx, 0))
    }
}

/// Escapes text for HTML and SVG.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(base: &str, sub: &str) -> RichLabel {
        RichLabel {
            base: base.into(),
            sub: sub.into(),
        }
    }

    #[test]
    fn names_become_greek_with_subscripts() {
        assert_eq!(RichLabel::from_name("theta_mu"), l("θ", "μ"));
        assert_eq!(RichLabel::from_name("theta_sigma"), l("θ", "σ"));
        assert_eq!(RichLabel::from_name("alpha_1"), l("α", "1"));
        assert_eq!(RichLabel::from_name("log_phi_star_2"), l("log φ*", "2"));
        assert_eq!(RichLabel::from_name("x_lo"), l("x", "lo"));
        assert_eq!(RichLabel::from_name("rate"), l("rate", ""));
        assert_eq!(RichLabel::from_name("theta_mu").plain(), "θ_μ");
        assert_eq!(RichLabel::from_name("theta_mu").html(), "θ<sub>μ</sub>");
    }
}
