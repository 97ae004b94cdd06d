//! A piecewise-constant density on fixed bin edges, its parameters the log
//! heights, with a Gaussian smoothness prior on neighbouring log heights.

use crate::error::Result;
use crate::invalid;
use crate::model::population::{Family, ModelSettings};

/// Piecewise-constant density on `edges`; neighbouring log heights carry a
/// Gaussian prior of width `smoothness`.
#[derive(Debug, Clone, PartialEq)]
pub struct Binned {
    pub edges: Vec<f64>,
    pub smoothness: f64,
}

impl Family for Binned {
    fn from_settings(settings: &ModelSettings) -> Result<Self> {
        Ok(Binned {
            edges: match &settings.edges {
                Some(e) => e.clone(),
                None => return invalid!("the binned model needs model.edges = [e0, e1, ...]"),
            },
            smoothness: settings.smoothness.unwrap_or(1.0),
        })
    }
    fn param_names(&self) -> Vec<String> {
        (1..self.edges.len()).map(|i| format!("ln_height_{i}")).collect()
    }
    fn n_params(&self) -> usize {
        self.edges.len() - 1
    }
    fn validate(&self) -> Result<()> {
        let (edges, smoothness) = (&self.edges, self.smoothness);
        if edges.len() < 2 || edges.windows(2).any(|w| w[0] >= w[1]) || edges.iter().any(|e| !e.is_finite()) {
            return invalid!("binned model: edges must be finite and increasing, got {edges:?}");
        }
        if smoothness.is_nan() || smoothness <= 0.0 {
            return invalid!("binned model: smoothness must be positive, got {smoothness}");
        }
        Ok(())
    }
    fn support(&self) -> Option<(f64, f64)> {
        Some((self.edges[0], self.edges[self.edges.len() - 1]))
    }
    fn ln_f(&self, theta: &[f64], x: f64, g: Option<&mut [f64]>) -> f64 {
        let edges = &self.edges;
        let mut g = g;
        if let Some(g) = g.as_deref_mut() {
            g.fill(0.0);
        }
        if !(x >= edges[0] && x <= edges[edges.len() - 1]) {
            return f64::NEG_INFINITY;
        }
        let b = edges.partition_point(|&e| e <= x).clamp(1, edges.len() - 1) - 1;
        if let Some(g) = g {
            g[b] = 1.0;
        }
        theta[b]
    }
    fn integration_range(&self, _: &[f64]) -> (f64, f64, Vec<f64>) {
        let edges = &self.edges;
        (edges[0], edges[edges.len() - 1], edges.clone())
    }
    /// Z = sum_b e^(h_b) (width of bin b), in closed form.
    fn ln_norm_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let m = theta.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let masses: Vec<f64> = self
            .edges
            .windows(2)
            .zip(theta)
            .map(|(e, h)| (h - m).exp() * (e[1] - e[0]))
            .collect();
        let z: f64 = masses.iter().sum();
        for (g, mass) in grad.iter_mut().zip(&masses) {
            *g = mass / z;
        }
        m + z.ln()
    }
    /// The smoothness prior: -(h_{b+1} - h_b)^2 / (2 smoothness^2) summed.
    fn ln_prior_extra(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let inv = 1.0 / (self.smoothness * self.smoothness);
        let mut v = 0.0;
        for b in 0..theta.len().saturating_sub(1) {
            let d = theta[b + 1] - theta[b];
            v -= 0.5 * d * d * inv;
            grad[b] += d * inv;
            grad[b + 1] -= d * inv;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binned_smoothness_prior_gradient() {
        let m = Binned {
            edges: vec![0.0, 1.0, 2.0, 3.0],
            smoothness: 0.5,
        };
        let theta = [0.2, -0.3, 0.9];
        let mut g = [0.0; 3];
        let v = m.ln_prior_extra(&theta, &mut g);
        assert!((v - (-0.5 * (0.25 + 1.44) / 0.25)).abs() < 1e-12);
        for k in 0..3 {
            let (mut a, mut b) = (theta, theta);
            a[k] += 1e-6;
            b[k] -= 1e-6;
            let fd = (m.ln_prior_extra(&a, &mut [0.0; 3]) - m.ln_prior_extra(&b, &mut [0.0; 3])) / 2e-6;
            assert!((g[k] - fd).abs() < 1e-6);
        }
    }
}
