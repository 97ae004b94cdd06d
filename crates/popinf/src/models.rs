//! The library of population models: each an unnormalised density f(x |
//! theta) with its analytic gradient, and a normalising constant Z(theta)
//! in closed form or by adaptive Gauss–Kronrod quadrature (the gradient of
//! ln Z then comes from integrating d f / d theta in the same pass).
//!
//! Stellar mass functions are per dex in x = log10 M:
//! Phi(x) = ln(10) phi* 10^((x - x*)(alpha + 1)) exp(-10^(x - x*)),
//! normalised on a finite [x_lo, x_hi] by quadrature, which holds for
//! alpha <= -1 too (where the incomplete gamma function's recurrence would
//! be needed).

use crate::error::Result;
use crate::invalid;
use crate::population::PopulationModel;
use crate::quadrature::integrate;
use crate::special::{digamma, ln_beta};

const LN10: f64 = std::f64::consts::LN_10;
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;
/// Relative accuracy of every quadrature-normalised constant.
const QUAD_REL_TOL: f64 = 1e-13;

#[derive(Debug, Clone, PartialEq)]
pub enum Population {
    /// N(theta_mu, theta_sigma) on the real line.
    Gaussian,
    /// N(theta_mu, theta_sigma) restricted to [lo, hi].
    TruncatedNormal { lo: f64, hi: f64 },
    /// ln x ~ N(theta_mu, theta_sigma), x > 0.
    LogNormal,
    /// Schechter function in x = log10 M on [lo, hi]; with `amplitude`,
    /// log_phi_star is a parameter (for the counts form).
    Schechter { lo: f64, hi: f64, amplitude: bool },
    /// Two Schechter terms sharing x*, with amplitudes (counts form).
    DoubleSchechter { lo: f64, hi: f64 },
    /// p(x) ∝ x^alpha on [lo, hi], 0 < lo.
    PowerLaw { lo: f64, hi: f64 },
    /// x^alpha_1 below x_break, x^alpha_2 above (continuous), on [lo, hi].
    BrokenPowerLaw { lo: f64, hi: f64 },
    /// Beta(beta_a, beta_b) on (0, 1): fractions, eccentricities.
    Beta,
    /// K Gaussians with stick-breaking weights: w_1 = frac_1, w_k = frac_k
    /// prod_{j<k} (1 - frac_j), w_K = prod_{j<K} (1 - frac_j).
    Mixture { k: usize },
    /// Piecewise-constant density on `edges`, parameters the log heights;
    /// neighbouring log heights carry a Gaussian smoothness prior of width
    /// `smoothness`.
    Binned { edges: Vec<f64>, smoothness: f64 },
    /// Independent 1-D models, one per dimension of mu.
    Product(Vec<Population>),
}

/// Names of the models `Population::from_name` knows.
pub const MODEL_NAMES: [&str; 10] = [
    "gaussian",
    "truncated_normal",
    "lognormal",
    "schechter",
    "double_schechter",
    "power_law",
    "broken_power_law",
    "beta",
    "mixture",
    "binned",
];

impl Population {
    pub fn n_params(&self) -> usize {
        match self {
            Population::Gaussian | Population::TruncatedNormal { .. } | Population::LogNormal => 2,
            Population::Schechter { amplitude, .. } => 2 + usize::from(*amplitude),
            Population::DoubleSchechter { .. } => 5,
            Population::PowerLaw { .. } => 1,
            Population::BrokenPowerLaw { .. } => 3,
            Population::Beta => 2,
            Population::Mixture { k } => 3 * k - 1,
            Population::Binned { edges, .. } => edges.len() - 1,
            Population::Product(parts) => parts.iter().map(Population::n_params).sum(),
        }
    }

    fn own_names(&self) -> Vec<String> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match self {
            Population::Gaussian | Population::TruncatedNormal { .. } | Population::LogNormal => {
                s(&["theta_mu", "theta_sigma"])
            }
            Population::Schechter { amplitude, .. } => {
                let mut v = s(&["log_m_star", "alpha"]);
                if *amplitude {
                    v.push("log_phi_star".into());
                }
                v
            }
            Population::DoubleSchechter { .. } => s(&[
                "log_m_star",
                "alpha_1",
                "alpha_2",
                "log_phi_star_1",
                "log_phi_star_2",
            ]),
            Population::PowerLaw { .. } => s(&["alpha"]),
            Population::BrokenPowerLaw { .. } => s(&["alpha_1", "alpha_2", "x_break"]),
            Population::Beta => s(&["beta_a", "beta_b"]),
            Population::Mixture { k } => (1..=*k)
                .map(|i| format!("mu_{i}"))
                .chain((1..=*k).map(|i| format!("sigma_{i}")))
                .chain((1..*k).map(|i| format!("frac_{i}")))
                .collect(),
            Population::Binned { edges, .. } => (1..edges.len()).map(|i| format!("ln_height_{i}")).collect(),
            Population::Product(parts) => {
                let all: Vec<Vec<String>> = parts.iter().map(Population::own_names).collect();
                let flat: Vec<&String> = all.iter().flatten().collect();
                let clash = flat.iter().enumerate().any(|(i, a)| flat[..i].contains(a));
                all.into_iter()
                    .enumerate()
                    .flat_map(|(d, names)| {
                        names
                            .into_iter()
                            .map(move |n| if clash { format!("{n}_dim{}", d + 1) } else { n })
                    })
                    .collect()
            }
        }
    }

    /// Checks the model's fixed settings.
    pub fn validate(&self) -> Result<()> {
        match self {
            Population::TruncatedNormal { lo, hi }
            | Population::Schechter { lo, hi, .. }
            | Population::DoubleSchechter { lo, hi }
            | Population::PowerLaw { lo, hi }
            | Population::BrokenPowerLaw { lo, hi } => {
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    return invalid!("population support [{lo}, {hi}] must be finite with lo < hi");
                }
                if matches!(
                    self,
                    Population::PowerLaw { .. } | Population::BrokenPowerLaw { .. }
                ) && *lo <= 0.0
                {
                    return invalid!("power-law support must start above 0, got lo = {lo}");
                }
            }
            Population::Mixture { k } if !(1..=10).contains(k) => {
                return invalid!("a mixture needs 1 to 10 components, got {k}");
            }
            Population::Binned { edges, smoothness } => {
                if edges.len() < 2
                    || edges.windows(2).any(|w| w[0] >= w[1])
                    || edges.iter().any(|e| !e.is_finite())
                {
                    return invalid!("binned model: edges must be finite and increasing, got {edges:?}");
                }
                if smoothness.is_nan() || *smoothness <= 0.0 {
                    return invalid!("binned model: smoothness must be positive, got {smoothness}");
                }
            }
            Population::Product(parts) => {
                if parts.is_empty() {
                    return invalid!("a product model needs at least one part");
                }
                for p in parts {
                    if matches!(p, Population::Product(_)) {
                        return invalid!("product models cannot nest");
                    }
                    p.validate()?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks the model's size against the likelihood's limit.
    pub fn check_size(&self) -> Result<()> {
        if self.n_params() > crate::likelihood::MAX_PARAMS {
            return invalid!(
                "population model has {} hyperparameters; at most {} are supported",
                self.n_params(),
                crate::likelihood::MAX_PARAMS
            );
        }
        Ok(())
    }

    /// The fixed support of a 1-D model, where it has one (unbounded sides
    /// are infinite); None for the real line and for products.
    pub fn support(&self) -> Option<(f64, f64)> {
        match self {
            Population::TruncatedNormal { lo, hi }
            | Population::Schechter { lo, hi, .. }
            | Population::DoubleSchechter { lo, hi }
            | Population::PowerLaw { lo, hi }
            | Population::BrokenPowerLaw { lo, hi } => Some((*lo, *hi)),
            Population::Beta => Some((0.0, 1.0)),
            Population::Binned { edges, .. } => Some((edges[0], edges[edges.len() - 1])),
            Population::LogNormal => Some((0.0, f64::INFINITY)),
            Population::Gaussian | Population::Mixture { .. } | Population::Product(_) => None,
        }
    }

    /// Whether theta lies in the model's parameter space.
    pub fn valid(&self, theta: &[f64]) -> bool {
        if theta.iter().any(|t| !t.is_finite()) {
            return false;
        }
        match self {
            Population::Gaussian | Population::TruncatedNormal { .. } | Population::LogNormal => {
                theta[1] > 0.0
            }
            Population::BrokenPowerLaw { lo, hi } => theta[2] > *lo && theta[2] < *hi,
            Population::Beta => theta[0] > 0.0 && theta[1] > 0.0,
            Population::Mixture { k } => {
                theta[*k..2 * k].iter().all(|&s| s > 0.0)
                    && theta[2 * k..].iter().all(|&f| f > 0.0 && f < 1.0)
            }
            Population::Product(parts) => {
                let mut off = 0;
                parts.iter().all(|p| {
                    let n = p.n_params();
                    off += n;
                    p.valid(&theta[off - n..off])
                })
            }
            _ => true,
        }
    }

    /// Whether the model's f carries a number density (phi*), so the counts
    /// form needs a volume rather than a rate parameter.
    pub fn has_amplitude(&self) -> bool {
        matches!(
            self,
            Population::Schechter { amplitude: true, .. } | Population::DoubleSchechter { .. }
        )
    }

    /// ln f(x | theta) of a 1-D model, unnormalised (see
    /// [`Population::ln_norm_grad`]), with d/d theta into `g` when given.
    /// -inf outside the support.
    pub fn ln_f_1d(&self, theta: &[f64], x: f64, mut g: Option<&mut [f64]>) -> f64 {
        let ninf = f64::NEG_INFINITY;
        macro_rules! grad {
            ($($k:expr => $v:expr),* $(,)?) => {
                if let Some(g) = g.as_deref_mut() { $(g[$k] = $v;)* }
            };
        }
        match self {
            Population::Gaussian | Population::TruncatedNormal { .. } => {
                if let Population::TruncatedNormal { lo, hi } = self
                    && !(x >= *lo && x <= *hi)
                {
                    grad!(0 => 0.0, 1 => 0.0);
                    return ninf;
                }
                let (m, s) = (theta[0], theta[1]);
                let z = (x - m) / s;
                grad!(0 => z / s, 1 => (z * z - 1.0) / s);
                -0.5 * z * z - s.ln() - HALF_LN_2PI
            }
            Population::LogNormal => {
                if x.is_nan() || x <= 0.0 {
                    grad!(0 => 0.0, 1 => 0.0);
                    return ninf;
                }
                let y = x.ln();
                let (m, s) = (theta[0], theta[1]);
                let z = (y - m) / s;
                grad!(0 => z / s, 1 => (z * z - 1.0) / s);
                -y - 0.5 * z * z - s.ln() - HALF_LN_2PI
            }
            Population::Schechter { lo, hi, amplitude } => {
                if !(x >= *lo && x <= *hi) {
                    if let Some(g) = g.as_deref_mut() {
                        g.fill(0.0);
                    }
                    return ninf;
                }
                let (xs, alpha) = (theta[0], theta[1]);
                let u = (x - xs) * LN10;
                let t = u.exp();
                grad!(0 => (t - (alpha + 1.0)) * LN10, 1 => u);
                let mut v = LN10.ln() + (alpha + 1.0) * u - t;
                if *amplitude {
                    grad!(2 => LN10);
                    v += theta[2] * LN10;
                }
                v
            }
            Population::DoubleSchechter { lo, hi } => {
                if !(x >= *lo && x <= *hi) {
                    if let Some(g) = g.as_deref_mut() {
                        g.fill(0.0);
                    }
                    return ninf;
                }
                let (xs, a1, a2, p1, p2) = (theta[0], theta[1], theta[2], theta[3], theta[4]);
                let u = (x - xs) * LN10;
                let t = u.exp();
                let (e1, e2) = (p1 * LN10 + (a1 + 1.0) * u, p2 * LN10 + (a2 + 1.0) * u);
                let m = e1.max(e2);
                let (w1, w2) = ((e1 - m).exp(), (e2 - m).exp());
                let (r1, r2) = (w1 / (w1 + w2), w2 / (w1 + w2));
                grad!(
                    0 => (t - (a1 + 1.0) * r1 - (a2 + 1.0) * r2) * LN10,
                    1 => r1 * u,
                    2 => r2 * u,
                    3 => r1 * LN10,
                    4 => r2 * LN10,
                );
                LN10.ln() - t + m + (w1 + w2).ln()
            }
            Population::PowerLaw { lo, hi } => {
                if !(x >= *lo && x <= *hi) {
                    grad!(0 => 0.0);
                    return ninf;
                }
                let lx = x.ln();
                grad!(0 => lx);
                theta[0] * lx
            }
            Population::BrokenPowerLaw { lo, hi } => {
                if !(x >= *lo && x <= *hi) {
                    grad!(0 => 0.0, 1 => 0.0, 2 => 0.0);
                    return ninf;
                }
                let (a1, a2, xb) = (theta[0], theta[1], theta[2]);
                let r = (x / xb).ln();
                if x < xb {
                    grad!(0 => r, 1 => 0.0, 2 => -a1 / xb);
                    a1 * r
                } else {
                    grad!(0 => 0.0, 1 => r, 2 => -a2 / xb);
                    a2 * r
                }
            }
            Population::Beta => {
                if !(x > 0.0 && x < 1.0) {
                    grad!(0 => 0.0, 1 => 0.0);
                    return ninf;
                }
                let (lx, l1x) = (x.ln(), (-x).ln_1p());
                grad!(0 => lx, 1 => l1x);
                (theta[0] - 1.0) * lx + (theta[1] - 1.0) * l1x
            }
            Population::Mixture { k } => {
                let k = *k;
                let (mus, rest) = theta.split_at(k);
                let (sigmas, fracs) = rest.split_at(k);
                // ln w_k by stick breaking.
                let mut ln_w = [0.0f64; 16];
                let mut stick = 0.0;
                for c in 0..k {
                    ln_w[c] = stick + if c + 1 < k { fracs[c].ln() } else { 0.0 };
                    if c + 1 < k {
                        stick += (-fracs[c]).ln_1p();
                    }
                }
                let mut terms = [0.0f64; 16];
                let mut zs = [0.0f64; 16];
                let mut m = f64::NEG_INFINITY;
                for c in 0..k {
                    let z = (x - mus[c]) / sigmas[c];
                    zs[c] = z;
                    terms[c] = ln_w[c] - 0.5 * z * z - sigmas[c].ln() - HALF_LN_2PI;
                    m = m.max(terms[c]);
                }
                let total: f64 = terms[..k].iter().map(|t| (t - m).exp()).sum();
                if let Some(g) = g.as_deref_mut() {
                    let mut tail = 0.0;
                    for c in (0..k).rev() {
                        let r = (terms[c] - m).exp() / total;
                        g[c] = r * zs[c] / sigmas[c];
                        g[k + c] = r * (zs[c] * zs[c] - 1.0) / sigmas[c];
                        if c + 1 < k {
                            g[2 * k + c] = r / fracs[c] - tail / (1.0 - fracs[c]);
                        }
                        tail += r;
                    }
                }
                m + total.ln()
            }
            Population::Binned { edges, .. } => {
                if let Some(g) = g.as_deref_mut() {
                    g.fill(0.0);
                }
                if !(x >= edges[0] && x <= edges[edges.len() - 1]) {
                    return ninf;
                }
                let b = edges.partition_point(|&e| e <= x).clamp(1, edges.len() - 1) - 1;
                grad!(b => 1.0);
                theta[b]
            }
            Population::Product(_) => unreachable!("product models are evaluated part by part"),
        }
    }

    /// The parts of a product model, each with its parameter offset and
    /// dimension offset; a 1-D model is its own single part.
    fn parts(&self) -> Vec<(&Population, usize, usize)> {
        match self {
            Population::Product(parts) => {
                let mut off = 0;
                parts
                    .iter()
                    .enumerate()
                    .map(|(d, p)| {
                        off += p.n_params();
                        (p, off - p.n_params(), d)
                    })
                    .collect()
            }
            _ => vec![(self, 0, 0)],
        }
    }

    /// A finite range holding all but a negligible part (< 1e-30) of the
    /// density at theta, and points where it has kinks or sharp features.
    pub fn integration_range(&self, theta: &[f64]) -> (f64, f64, Vec<f64>) {
        match self {
            Population::Gaussian => {
                let (m, s) = (theta[0], theta[1]);
                (m - 12.0 * s, m + 12.0 * s, vec![m])
            }
            Population::TruncatedNormal { lo, hi } => {
                let (m, s) = (theta[0], theta[1]);
                ((m - 12.0 * s).max(*lo), (m + 12.0 * s).min(*hi), vec![m])
            }
            Population::LogNormal => {
                let (m, s) = (theta[0], theta[1]);
                let breaks = (-11..=11).map(|k| (m + k as f64 * s).exp()).collect();
                ((m - 12.0 * s).exp(), (m + 12.0 * s).exp(), breaks)
            }
            Population::Schechter { lo, hi, .. } | Population::DoubleSchechter { lo, hi } => {
                let xs = theta[0];
                // The exponential cut-off falls by e^-10 within 1 dex of x*.
                let breaks = [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
                    .iter()
                    .map(|d| xs + d)
                    .collect();
                (*lo, *hi, breaks)
            }
            Population::PowerLaw { lo, hi } => {
                let breaks = (1..16).map(|k| lo * (hi / lo).powf(k as f64 / 16.0)).collect();
                (*lo, *hi, breaks)
            }
            Population::BrokenPowerLaw { lo, hi } => {
                let mut breaks: Vec<f64> = (1..16).map(|k| lo * (hi / lo).powf(k as f64 / 16.0)).collect();
                breaks.push(theta[2]);
                (*lo, *hi, breaks)
            }
            Population::Beta => (0.0, 1.0, vec![0.01, 0.1, 0.5, 0.9, 0.99]),
            Population::Mixture { k } => {
                let k = *k;
                let lo = (0..k)
                    .map(|c| theta[c] - 12.0 * theta[k + c])
                    .fold(f64::INFINITY, f64::min);
                let hi = (0..k)
                    .map(|c| theta[c] + 12.0 * theta[k + c])
                    .fold(f64::NEG_INFINITY, f64::max);
                (lo, hi, theta[..k].to_vec())
            }
            Population::Binned { edges, .. } => (edges[0], edges[edges.len() - 1], edges.clone()),
            Population::Product(_) => unreachable!("integrals are per 1-D model"),
        }
    }

    /// ln of the integral of w(x) f(x | theta) over the model's range, and
    /// its gradient, by adaptive quadrature (1-D models). `w_breaks` are
    /// kinks of w.
    pub fn ln_integral_grad(
        &self,
        theta: &[f64],
        w: &dyn Fn(f64) -> f64,
        w_breaks: &[f64],
        grad: &mut [f64],
    ) -> f64 {
        let (lo, hi, mut breaks) = self.integration_range(theta);
        breaks.extend_from_slice(w_breaks);
        let p = self.n_params();
        // Scale by the largest ln f on a coarse grid so exp stays finite.
        let shift = (0..=64)
            .map(|i| self.ln_f_1d(theta, lo + (hi - lo) * i as f64 / 64.0, None))
            .chain(
                breaks
                    .iter()
                    .filter(|&&b| b > lo && b < hi)
                    .map(|&b| self.ln_f_1d(theta, b, None)),
            )
            .fold(f64::NEG_INFINITY, f64::max);
        if !shift.is_finite() {
            grad[..p].fill(0.0);
            return f64::NEG_INFINITY;
        }
        let mut g = vec![0.0; p];
        let mut f = |x: f64, out: &mut [f64]| {
            let weight = w(x);
            let lf = if weight > 0.0 {
                self.ln_f_1d(theta, x, Some(&mut g))
            } else {
                f64::NEG_INFINITY
            };
            let v = if lf == f64::NEG_INFINITY {
                0.0
            } else {
                weight * (lf - shift).exp()
            };
            out[0] = v;
            for k in 0..p {
                out[1 + k] = if v == 0.0 { 0.0 } else { v * g[k] };
            }
        };
        let (sums, _) = integrate(&mut f, lo, hi, &breaks, p + 1, QUAD_REL_TOL, 0.0);
        if sums[0].is_nan() || sums[0] <= 0.0 {
            grad[..p].fill(0.0);
            return f64::NEG_INFINITY;
        }
        for k in 0..p {
            grad[k] = sums[1 + k] / sums[0];
        }
        shift + sums[0].ln()
    }

    /// ln Z(theta) = ln of the integral of f over the support, and its
    /// gradient: 0 for models whose f is already normalised.
    pub fn ln_norm_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let p = self.n_params();
        grad[..p].fill(0.0);
        match self {
            Population::Gaussian | Population::LogNormal | Population::Mixture { .. } => 0.0,
            Population::Beta => {
                let (a, b) = (theta[0], theta[1]);
                let d = digamma(a + b);
                grad[0] = digamma(a) - d;
                grad[1] = digamma(b) - d;
                ln_beta(a, b)
            }
            Population::Binned { edges, .. } => {
                let m = theta.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let masses: Vec<f64> = edges
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
            Population::Product(_) => {
                let mut total = 0.0;
                for (part, off, _) in self.parts() {
                    let n = part.n_params();
                    total += part.ln_norm_grad(&theta[off..off + n], &mut grad[off..off + n]);
                }
                total
            }
            _ => self.ln_integral_grad(theta, &|_| 1.0, &[], grad),
        }
    }

    /// Extra ln prior the model carries (the binned model's smoothness),
    /// with its gradient added into `grad`.
    pub fn ln_prior_extra(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        match self {
            Population::Binned { smoothness, .. } => {
                let inv = 1.0 / (smoothness * smoothness);
                let mut v = 0.0;
                for b in 0..theta.len().saturating_sub(1) {
                    let d = theta[b + 1] - theta[b];
                    v -= 0.5 * d * d * inv;
                    grad[b] += d * inv;
                    grad[b + 1] -= d * inv;
                }
                v
            }
            Population::Product(_) => {
                let mut v = 0.0;
                for (part, off, _) in self.parts() {
                    let n = part.n_params();
                    v += part.ln_prior_extra(&theta[off..off + n], &mut grad[off..off + n]);
                }
                v
            }
            _ => 0.0,
        }
    }

    /// The normalised density p(x | theta) of a 1-D model (for plots and
    /// tests; the likelihood never normalises per sample).
    pub fn pdf_1d(&self, theta: &[f64], x: f64) -> f64 {
        let mut g = vec![0.0; self.n_params()];
        (self.ln_f_1d(theta, x, None) - self.ln_norm_grad(theta, &mut g)).exp()
    }
}

impl Population {
    /// Any model, sample by sample through [`Population::ln_f_1d`].
    fn generic_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64], grad: Option<&mut [f64]>) {
        let n = ln_p.len();
        let dim = PopulationModel::dim(self);
        ln_p.fill(0.0);
        let mut g = [0.0f64; crate::likelihood::MAX_PARAMS];
        let mut grad = grad;
        for (part, off, d) in self.parts() {
            let np = part.n_params();
            let th = &theta[off..off + np];
            for j in 0..n {
                match grad.as_deref_mut() {
                    Some(grad) => {
                        ln_p[j] += part.ln_f_1d(th, mu[j * dim + d], Some(&mut g[..np]));
                        for k in 0..np {
                            grad[(off + k) * n + j] = g[k];
                        }
                    }
                    None => ln_p[j] += part.ln_f_1d(th, mu[j * dim + d], None),
                }
            }
        }
    }
}

/// ln Phi of the Schechter function for every sample (and its gradient,
/// parameter-major), with the same arithmetic as [`Population::ln_f_1d`]
/// but the polynomial exp, branch-free, so the loop vectorises.
#[inline(always)]
fn schechter_batch(
    theta: &[f64],
    lo: f64,
    hi: f64,
    amplitude: bool,
    mu: &[f64],
    ln_p: &mut [f64],
    grad: Option<&mut [f64]>,
) {
    use crate::fastmath::exp_bounded;
    let n = ln_p.len();
    let (xs, alpha) = (theta[0], theta[1]);
    let a1 = alpha + 1.0;
    let c0 = LN10.ln() + if amplitude { theta[2] * LN10 } else { 0.0 };
    match grad {
        None => {
            for (out, &x) in ln_p.iter_mut().zip(&mu[..n]) {
                let u = (x - xs) * LN10;
                let v = c0 + a1 * u - exp_bounded(u);
                *out = if x >= lo && x <= hi { v } else { f64::NEG_INFINITY };
            }
        }
        Some(grad) => {
            let (g0, rest) = grad.split_at_mut(n);
            let (g1, rest) = rest.split_at_mut(n);
            for j in 0..n {
                let x = mu[j];
                let u = (x - xs) * LN10;
                let t = exp_bounded(u);
                let inside = x >= lo && x <= hi;
                ln_p[j] = if inside {
                    c0 + a1 * u - t
                } else {
                    f64::NEG_INFINITY
                };
                g0[j] = if inside { (t - a1) * LN10 } else { 0.0 };
                g1[j] = if inside { u } else { 0.0 };
            }
            if amplitude {
                for (g, &x) in rest[..n].iter_mut().zip(&mu[..n]) {
                    *g = if x >= lo && x <= hi { LN10 } else { 0.0 };
                }
            }
        }
    }
}

/// The double Schechter function: ln of two terms sharing x* as
/// max + ln(1 + e^-|a1 - a2|), with the polynomial exp and log. Blocks of
/// 64 samples go through one simple loop per transcendental function
/// (loop fission): LLVM vectorises each, where one loop holding both
/// exps and the log ran ~5x slower.
#[inline(always)]
fn double_schechter_batch(
    theta: &[f64],
    lo: f64,
    hi: f64,
    mu: &[f64],
    ln_p: &mut [f64],
    grad: Option<&mut [f64]>,
) {
    use crate::fastmath::{exp_bounded, exp_nonpositive, ln_one_to_two};
    const B: usize = 64;
    let n = ln_p.len();
    let (xs, b1, b2) = (theta[0], theta[1] + 1.0, theta[2] + 1.0);
    let (c1, c2) = (theta[3] * LN10, theta[4] * LN10);
    let c0 = LN10.ln();
    let mut grad = grad;
    let mut j0 = 0;
    while j0 < n {
        let w = B.min(n - j0);
        let x = &mu[j0..j0 + w];
        let (mut u, mut t, mut d, mut m, mut e, mut r1) =
            ([0.0; B], [0.0; B], [0.0; B], [0.0; B], [0.0; B], [0.0; B]);
        for l in 0..w {
            u[l] = (x[l] - xs) * LN10;
        }
        for l in 0..w {
            t[l] = exp_bounded(u[l]);
        }
        for l in 0..w {
            let (a1, a2) = (c1 + b1 * u[l], c2 + b2 * u[l]);
            let first = a1 >= a2;
            m[l] = if first { a1 } else { a2 };
            d[l] = if first { a2 - a1 } else { a1 - a2 };
            r1[l] = if first { 1.0 } else { 0.0 };
        }
        for l in 0..w {
            e[l] = exp_nonpositive(d[l]);
        }
        for l in 0..w {
            let v = c0 - t[l] + m[l] + ln_one_to_two(1.0 + e[l]);
            ln_p[j0 + l] = if x[l] >= lo && x[l] <= hi {
                v
            } else {
                f64::NEG_INFINITY
            };
        }
        if let Some(grad) = grad.as_deref_mut() {
            for l in 0..w {
                // Share of the first term: 1/(1+e) when it is the larger.
                let inv = 1.0 / (1.0 + e[l]);
                let share = if r1[l] > 0.0 { inv } else { e[l] * inv };
                let k = if x[l] >= lo && x[l] <= hi { 1.0 } else { 0.0 };
                let (s1, s2) = (share, 1.0 - share);
                let j = j0 + l;
                grad[j] = k * (t[l] - b1 * s1 - b2 * s2) * LN10;
                grad[n + j] = k * s1 * u[l];
                grad[2 * n + j] = k * s2 * u[l];
                grad[3 * n + j] = k * s1 * LN10;
                grad[4 * n + j] = k * s2 * LN10;
            }
        }
        j0 += w;
    }
}

impl PopulationModel for Population {
    fn dim(&self) -> usize {
        match self {
            Population::Product(parts) => parts.len(),
            _ => 1,
        }
    }

    fn param_names(&self) -> Vec<String> {
        self.own_names()
    }

    fn n_params(&self) -> usize {
        Population::n_params(self)
    }

    // inline(always): the likelihood's AVX2 copy then vectorises the
    // specialised loops below (polynomial exp and log, no libm calls).
    #[inline(always)]
    fn ln_pdf_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64]) {
        match self {
            Population::Gaussian => crate::population::Gaussian.ln_pdf_batch(theta, mu, ln_p),
            Population::Schechter { lo, hi, amplitude } => {
                schechter_batch(theta, *lo, *hi, *amplitude, mu, ln_p, None)
            }
            Population::DoubleSchechter { lo, hi } => double_schechter_batch(theta, *lo, *hi, mu, ln_p, None),
            _ => self.generic_batch(theta, mu, ln_p, None),
        }
    }

    #[inline(always)]
    fn ln_pdf_grad_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64], grad: &mut [f64]) {
        match self {
            Population::Gaussian => crate::population::Gaussian.ln_pdf_grad_batch(theta, mu, ln_p, grad),
            Population::Schechter { lo, hi, amplitude } => {
                schechter_batch(theta, *lo, *hi, *amplitude, mu, ln_p, Some(grad))
            }
            Population::DoubleSchechter { lo, hi } => {
                double_schechter_batch(theta, *lo, *hi, mu, ln_p, Some(grad))
            }
            _ => self.generic_batch(theta, mu, ln_p, Some(grad)),
        }
    }

    fn ln_norm_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        Population::ln_norm_grad(self, theta, grad)
    }

    fn has_quadratic_form(&self) -> bool {
        matches!(self, Population::Gaussian)
    }

    fn quadratic_form(&self, theta: &[f64], form: &mut crate::population::QuadraticForm) -> bool {
        match self {
            Population::Gaussian => crate::population::Gaussian.quadratic_form(theta, form),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every model on a grid of parameter values, including alpha < -1
    /// for the Schechter forms.
    pub(crate) fn cases() -> Vec<(Population, Vec<Vec<f64>>)> {
        vec![
            (Population::Gaussian, vec![vec![0.3, 1.7], vec![-4.0, 0.05]]),
            (
                Population::TruncatedNormal { lo: -1.0, hi: 2.0 },
                vec![vec![0.0, 1.0], vec![3.0, 0.5], vec![-0.5, 4.0]],
            ),
            (Population::LogNormal, vec![vec![0.0, 0.5], vec![2.0, 1.2]]),
            (
                Population::Schechter {
                    lo: 8.0,
                    hi: 12.5,
                    amplitude: false,
                },
                vec![
                    vec![10.8, -0.3],
                    vec![10.6, -1.0],
                    vec![11.0, -1.5],
                    vec![10.2, -2.2],
                ],
            ),
            (
                Population::Schechter {
                    lo: 9.0,
                    hi: 13.0,
                    amplitude: true,
                },
                vec![vec![10.8, -1.4, -2.9]],
            ),
            (
                Population::DoubleSchechter { lo: 8.5, hi: 12.5 },
                vec![
                    vec![10.79, -0.28, -1.48, -2.44, -2.89],
                    vec![10.5, 0.5, -1.9, -3.0, -3.5],
                ],
            ),
            (
                Population::PowerLaw { lo: 1.0, hi: 100.0 },
                vec![vec![-2.35], vec![-1.0], vec![0.7]],
            ),
            (
                Population::BrokenPowerLaw { lo: 0.1, hi: 50.0 },
                vec![vec![-1.3, -2.3, 0.5], vec![0.5, -3.0, 10.0]],
            ),
            (
                Population::Beta,
                vec![vec![2.0, 5.0], vec![0.8, 1.5], vec![30.0, 3.0]],
            ),
            (
                Population::Mixture { k: 3 },
                vec![vec![-1.0, 0.5, 3.0, 0.3, 1.0, 0.7, 0.2, 0.6]],
            ),
            (
                Population::Binned {
                    edges: vec![0.0, 0.5, 1.5, 2.0, 4.0],
                    smoothness: 1.0,
                },
                vec![vec![0.1, -0.4, 1.2, 0.0]],
            ),
        ]
    }

    /// An independent check of the normalisation: adaptive Simpson on the
    /// normalised pdf, to 1e-12.
    fn simpson(f: &dyn Fn(f64) -> f64, a: f64, b: f64, tol: f64, depth: u32) -> f64 {
        #[allow(clippy::too_many_arguments)]
        fn rec(
            f: &dyn Fn(f64) -> f64,
            a: f64,
            b: f64,
            fa: f64,
            fm: f64,
            fb: f64,
            whole: f64,
            tol: f64,
            depth: u32,
        ) -> f64 {
            let m = 0.5 * (a + b);
            let (lm, rm) = (0.5 * (a + m), 0.5 * (m + b));
            let (flm, frm) = (f(lm), f(rm));
            let left = (m - a) / 6.0 * (fa + 4.0 * flm + fm);
            let right = (b - m) / 6.0 * (fm + 4.0 * frm + fb);
            if depth == 0 || (left + right - whole).abs() <= 15.0 * tol {
                return left + right + (left + right - whole) / 15.0;
            }
            rec(f, a, m, fa, flm, fm, left, tol / 2.0, depth - 1)
                + rec(f, m, b, fm, frm, fb, right, tol / 2.0, depth - 1)
        }
        let m = 0.5 * (a + b);
        let (fa, fm, fb) = (f(a), f(m), f(b));
        rec(
            f,
            a,
            b,
            fa,
            fm,
            fb,
            (b - a) / 6.0 * (fa + 4.0 * fm + fb),
            tol,
            depth,
        )
    }

    #[test]
    fn every_model_integrates_to_one() {
        for (model, thetas) in cases() {
            model.validate().unwrap();
            for theta in thetas {
                assert!(model.valid(&theta), "{model:?} {theta:?}");
                let (lo, hi, mut breaks) = model.integration_range(&theta);
                let f = |x: f64| {
                    let v = model.pdf_1d(&theta, x);
                    if v.is_finite() { v } else { 0.0 }
                };
                // Simpson piecewise between the model's own breakpoints
                // and 200 equal pieces. The beta's ends may be integrable
                // singularities (a or b < 1): Simpson covers [eps, 1 - eps]
                // and the tails are added analytically, eps^a / (a B(a, b))
                // to leading order (the next term is O(eps) smaller).
                let (lo, hi, tails) = if matches!(model, Population::Beta) {
                    let eps = 1e-8f64;
                    let lb = ln_beta(theta[0], theta[1]);
                    let tail = |a: f64| (a * eps.ln() - lb).exp() / a;
                    (eps, 1.0 - eps, tail(theta[0]) + tail(theta[1]))
                } else {
                    (lo, hi, 0.0)
                };
                breaks.extend((1..200).map(|i| lo + (hi - lo) * i as f64 / 200.0));
                breaks.retain(|&b| b > lo && b < hi);
                breaks.push(lo);
                breaks.push(hi);
                breaks.sort_by(f64::total_cmp);
                breaks.dedup();
                let total: f64 = tails
                    + breaks
                        .windows(2)
                        .map(|w| simpson(&f, w[0], w[1], 1e-14, 40))
                        .sum::<f64>();
                assert!(
                    (total - 1.0).abs() < 1e-8,
                    "{model:?} at {theta:?}: integral {total}"
                );
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (model, thetas) in cases() {
            for theta in thetas {
                let p = model.n_params();
                let (lo, hi, _) = model.integration_range(&theta);
                let xs: Vec<f64> = (1..8)
                    .map(|i| lo + (hi - lo) * (i as f64 / 8.0).powi(2))
                    .collect();
                let mut ln_p = vec![0.0; xs.len()];
                let mut grad = vec![0.0; p * xs.len()];
                model.ln_pdf_grad_batch(&theta, &xs, &mut ln_p, &mut grad);
                let mut gz = vec![0.0; p];
                let lnz = model.ln_norm_grad(&theta, &mut gz);
                let ln_pdf = |th: &[f64], x: f64| {
                    let mut g = vec![0.0; p];
                    model.ln_f_1d(th, x, None) - model.ln_norm_grad(th, &mut g)
                };
                for (j, &x) in xs.iter().enumerate() {
                    assert!((ln_p[j] - lnz - ln_pdf(&theta, x)).abs() < 1e-12);
                    for k in 0..p {
                        let h = 1e-5 * theta[k].abs().max(0.1);
                        let (mut a, mut b) = (theta.clone(), theta.clone());
                        a[k] += h;
                        b[k] -= h;
                        let fd = (ln_pdf(&a, x) - ln_pdf(&b, x)) / (2.0 * h);
                        let analytic = grad[k * xs.len() + j] - gz[k];
                        assert!(
                            (analytic - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                            "{model:?} d/d{} at {theta:?}, x={x}: {analytic} vs {fd}",
                            model.param_names()[k]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn product_model_adds_its_parts() {
        let m = Population::Product(vec![Population::Gaussian, Population::Beta]);
        m.validate().unwrap();
        assert_eq!(m.param_names(), ["theta_mu", "theta_sigma", "beta_a", "beta_b"]);
        let twice = Population::Product(vec![Population::Gaussian, Population::Gaussian]);
        assert_eq!(
            twice.param_names(),
            [
                "theta_mu_dim1",
                "theta_sigma_dim1",
                "theta_mu_dim2",
                "theta_sigma_dim2"
            ]
        );
        let theta = [0.5, 1.2, 2.0, 3.0];
        let mu = [0.1, 0.3, -1.0, 0.9];
        let mut ln_p = [0.0; 2];
        let mut grad = [0.0; 8];
        m.ln_pdf_grad_batch(&theta, &mu, &mut ln_p, &mut grad);
        let mut g = [0.0; 4];
        let lnz = m.ln_norm_grad(&theta, &mut g);
        for j in 0..2 {
            let want = Population::Gaussian.pdf_1d(&theta[..2], mu[2 * j])
                * Population::Beta.pdf_1d(&theta[2..], mu[2 * j + 1]);
            assert!(((ln_p[j] - lnz).exp() - want).abs() < 1e-12 * want);
        }
    }

    #[test]
    fn binned_smoothness_prior_gradient() {
        let m = Population::Binned {
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
