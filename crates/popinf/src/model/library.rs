//! The library of population models: [`Population`], one of the families
//! (one per file of this folder) or a product of them, one per dimension of
//! mu. Dispatch is static, so the likelihood's vector copies inline each
//! family's batch loop.

use crate::error::Result;
use crate::invalid;
use crate::model::population::{
    Family, Feature, KernelForm, MAX_PARAMS, ModelSettings, PopulationModel, ln_integral_grad,
};

/// Declares the library: the [`Population`] enum with one variant per
/// family, [`MODEL_NAMES`], the constructor from the run file's name, and
/// `by_family!`, which runs an expression on the family inside (or on the
/// parts of a product). (`$d` is a literal `$`, for the inner macro.)
macro_rules! families {
    ($d:tt $($variant:ident($ty:ty) = $name:literal,)*) => {
        /// A population model of the library: one family, or independent
        /// 1-D families, one per dimension of mu.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Population {
            $($variant($ty),)*
            /// Independent 1-D models, one per dimension of mu.
            Product(Vec<Population>),
        }

        /// Names of the models the run file's `model.population` knows.
        pub const MODEL_NAMES: &[&str] = &[$($name),*];

        impl Population {
            /// The model the run file calls `name`; `None` for an unknown
            /// name.
            pub fn from_settings(name: &str, settings: &ModelSettings) -> Result<Option<Population>> {
                Ok(Some(match name {
                    $($name => Population::$variant(<$ty as Family>::from_settings(settings)?),)*
                    _ => return Ok(None),
                }))
            }

            /// The run file's name of the model ("product" for a product).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Population::$variant(_) => $name,)*
                    Population::Product(_) => "product",
                }
            }
        }

        macro_rules! by_family {
            ($d model:expr, $d f:ident => $d one:expr, $d parts:ident => $d product:expr) => {
                match $d model {
                    $(Population::$variant($d f) => $d one,)*
                    Population::Product($d parts) => $d product,
                }
            };
        }
    };
}

// The library. A new family: its file, `pub mod` in model/mod.rs, one line here.
families! {$
    Gaussian(crate::model::gaussian::Gaussian) = "gaussian",
    TruncatedNormal(crate::model::gaussian::TruncatedNormal) = "truncated_normal",
    LogNormal(crate::model::gaussian::LogNormal) = "lognormal",
    Schechter(crate::model::schechter::Schechter) = "schechter",
    DoubleSchechter(crate::model::schechter::DoubleSchechter) = "double_schechter",
    PowerLaw(crate::model::power_law::PowerLaw) = "power_law",
    BrokenPowerLaw(crate::model::power_law::BrokenPowerLaw) = "broken_power_law",
    Beta(crate::model::beta::Beta) = "beta",
    Mixture(crate::model::mixture::Mixture) = "mixture",
    Binned(crate::model::binned::Binned) = "binned",
}

impl Population {
    pub fn n_params(&self) -> usize {
        by_family!(self, f => Family::n_params(f), parts => parts.iter().map(Population::n_params).sum())
    }

    /// Where each hyperparameter lives (see [`Family::param_domains`]).
    pub fn param_domains(&self) -> Vec<crate::model::prior::Support> {
        by_family!(self, f => Family::param_domains(f), parts => parts.iter().flat_map(Population::param_domains).collect())
    }

    fn own_names(&self) -> Vec<String> {
        by_family!(self, f => Family::param_names(f), parts => product_param_names(parts))
    }

    /// Checks the model's fixed settings.
    pub fn validate(&self) -> Result<()> {
        by_family!(self, f => f.validate(), parts => product_validate(parts))
    }

    /// Checks the model's size against the likelihood's limit.
    pub fn check_size(&self) -> Result<()> {
        if self.n_params() > MAX_PARAMS {
            return invalid!(
                "population model has {} hyperparameters; at most {MAX_PARAMS} are supported",
                self.n_params(),
            );
        }
        Ok(())
    }

    /// The parameters sampled in increasing order: a mixture's means, so
    /// that its exchangeable components cannot swap labels (which leaves
    /// chains in different labellings: R-hat ~1.2, measured).
    pub fn ordered_params(&self) -> Option<std::ops::Range<usize>> {
        match self {
            Population::Mixture(m) if m.k >= 2 => Some(0..m.k),
            _ => None,
        }
    }

    /// The fixed support of a 1-D model, where it has one (unbounded sides
    /// are infinite); None for the real line and for products.
    pub fn support(&self) -> Option<(f64, f64)> {
        by_family!(self, f => f.support(), _parts => None)
    }

    /// Whether theta lies in the model's parameter space.
    pub fn valid(&self, theta: &[f64]) -> bool {
        if theta.iter().any(|t| !t.is_finite()) {
            return false;
        }
        by_family!(self, f => f.valid(theta), parts => product_valid(parts, theta))
    }

    /// Whether the model's f carries a number density (phi*), so the counts
    /// form needs a volume rather than a rate parameter.
    pub fn has_amplitude(&self) -> bool {
        by_family!(self, f => f.has_amplitude(), _parts => false)
    }

    /// ln f(x | theta) of a 1-D model, unnormalised (see
    /// [`Population::ln_norm_grad`]), with d/d theta into `g` when given.
    /// -inf outside the support.
    pub fn ln_f_1d(&self, theta: &[f64], x: f64, g: Option<&mut [f64]>) -> f64 {
        by_family!(self, f => f.ln_f(theta, x, g), _parts => unreachable!("product models are evaluated part by part"))
    }

    /// A finite range holding all but a negligible part (< 1e-30) of the
    /// density at theta, and points where it has kinks or sharp features.
    pub fn integration_range(&self, theta: &[f64]) -> (f64, f64, Vec<f64>) {
        by_family!(self, f => f.integration_range(theta), _parts => unreachable!("integrals are per 1-D model"))
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
        by_family!(
            self,
            f => ln_integral_grad(f, theta, w, w_breaks, grad),
            _parts => unreachable!("integrals are per 1-D model")
        )
    }

    /// ln Z(theta) = ln of the integral of f over the support, and its
    /// gradient: 0 for models whose f is already normalised.
    pub fn ln_norm_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let p = self.n_params();
        grad[..p].fill(0.0);
        by_family!(
            self,
            f => Family::ln_norm_grad(f, theta, &mut grad[..p]),
            parts => product_ln_norm_grad(parts, theta, grad)
        )
    }

    /// Extra ln prior the model carries (the binned model's smoothness),
    /// with its gradient added into `grad`.
    pub fn ln_prior_extra(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        by_family!(
            self,
            f => f.ln_prior_extra(theta, grad),
            parts => product_ln_prior_extra(parts, theta, grad)
        )
    }

    /// The normalised density p(x | theta) of a 1-D model (for plots and
    /// tests; the likelihood never normalises per sample).
    pub fn pdf_1d(&self, theta: &[f64], x: f64) -> f64 {
        let mut g = vec![0.0; self.n_params()];
        (self.ln_f_1d(theta, x, None) - self.ln_norm_grad(theta, &mut g)).exp()
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

    // inline(always): the likelihood's vector copies then inline each
    // family's batch loop (polynomial exp and log, no libm calls).
    #[inline(always)]
    fn ln_pdf_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64]) {
        by_family!(
            self,
            f => f.ln_f_batch(theta, mu, ln_p, None),
            parts => product_ln_f_batch(parts, theta, mu, ln_p, None)
        )
    }

    #[inline(always)]
    fn ln_pdf_grad_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64], grad: &mut [f64]) {
        by_family!(
            self,
            f => f.ln_f_batch(theta, mu, ln_p, Some(grad)),
            parts => product_ln_f_batch(parts, theta, mu, ln_p, Some(grad))
        )
    }

    fn ln_norm_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        Population::ln_norm_grad(self, theta, grad)
    }

    fn kernel_feature(&self) -> Option<Feature> {
        by_family!(self, f => Family::kernel_feature(f), _parts => None)
    }

    fn kernel_support(&self) -> Option<(f64, f64)> {
        self.support()
    }

    fn kernel_form(&self, theta: &[f64], form: &mut KernelForm) -> bool {
        by_family!(self, f => Family::kernel_form(f, theta, form), _parts => false)
    }
}

// Products of independent 1-D families, one per dimension of mu:
// p(mu | theta) = prod_d p_d(mu_d | theta_d), evaluated part by part.

/// Each part with its parameter offset and its dimension.
fn with_offsets(parts: &[Population]) -> Vec<(&Population, usize, usize)> {
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

/// The parts' names, suffixed `_dim<d>` when two parts share a name.
fn product_param_names(parts: &[Population]) -> Vec<String> {
    let all: Vec<Vec<String>> = parts.iter().map(PopulationModel::param_names).collect();
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

fn product_validate(parts: &[Population]) -> Result<()> {
    if parts.is_empty() {
        return invalid!("a product model needs at least one part");
    }
    for p in parts {
        if matches!(p, Population::Product(_)) {
            return invalid!("product models cannot nest");
        }
        p.validate()?;
    }
    Ok(())
}

fn product_valid(parts: &[Population], theta: &[f64]) -> bool {
    let mut off = 0;
    parts.iter().all(|p| {
        let n = p.n_params();
        off += n;
        p.valid(&theta[off - n..off])
    })
}

/// ln f of every sample (sample-major, one value per part) and with `grad`
/// its gradient, parameter-major, part by part through
/// [`Population::ln_f_1d`].
fn product_ln_f_batch(
    parts: &[Population],
    theta: &[f64],
    mu: &[f64],
    ln_p: &mut [f64],
    grad: Option<&mut [f64]>,
) {
    let n = ln_p.len();
    let dim = parts.len();
    ln_p.fill(0.0);
    let mut g = [0.0f64; MAX_PARAMS];
    let mut grad = grad;
    for (part, off, d) in with_offsets(parts) {
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

fn product_ln_norm_grad(parts: &[Population], theta: &[f64], grad: &mut [f64]) -> f64 {
    let mut total = 0.0;
    for (part, off, _) in with_offsets(parts) {
        let n = part.n_params();
        total += part.ln_norm_grad(&theta[off..off + n], &mut grad[off..off + n]);
    }
    total
}

fn product_ln_prior_extra(parts: &[Population], theta: &[f64], grad: &mut [f64]) -> f64 {
    let mut v = 0.0;
    for (part, off, _) in with_offsets(parts) {
        let n = part.n_params();
        v += part.ln_prior_extra(&theta[off..off + n], &mut grad[off..off + n]);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::special::ln_beta;
    use crate::model::beta::Beta;
    use crate::model::binned::Binned;
    use crate::model::gaussian::{Gaussian, LogNormal, TruncatedNormal};
    use crate::model::mixture::Mixture;
    use crate::model::power_law::{BrokenPowerLaw, PowerLaw};
    use crate::model::schechter::{DoubleSchechter, Schechter};

    /// Every model on a grid of parameter values, including alpha < -1
    /// for the Schechter forms.
    pub(crate) fn cases() -> Vec<(Population, Vec<Vec<f64>>)> {
        vec![
            (
                Population::Gaussian(Gaussian),
                vec![vec![0.3, 1.7], vec![-4.0, 0.05]],
            ),
            (
                Population::TruncatedNormal(TruncatedNormal { lo: -1.0, hi: 2.0 }),
                vec![vec![0.0, 1.0], vec![3.0, 0.5], vec![-0.5, 4.0]],
            ),
            (
                Population::LogNormal(LogNormal),
                vec![vec![0.0, 0.5], vec![2.0, 1.2]],
            ),
            (
                Population::Schechter(Schechter {
                    lo: 8.0,
                    hi: 12.5,
                    amplitude: false,
                }),
                vec![
                    vec![10.8, -0.3],
                    vec![10.6, -1.0],
                    vec![11.0, -1.5],
                    vec![10.2, -2.2],
                ],
            ),
            (
                Population::Schechter(Schechter {
                    lo: 9.0,
                    hi: 13.0,
                    amplitude: true,
                }),
                vec![vec![10.8, -1.4, -2.9]],
            ),
            (
                Population::DoubleSchechter(DoubleSchechter { lo: 8.5, hi: 12.5 }),
                vec![
                    vec![10.79, -0.28, -1.48, -2.44, -2.89],
                    vec![10.5, 0.5, -1.9, -3.0, -3.5],
                ],
            ),
            (
                Population::PowerLaw(PowerLaw { lo: 1.0, hi: 100.0 }),
                vec![vec![-2.35], vec![-1.0], vec![0.7]],
            ),
            (
                Population::BrokenPowerLaw(BrokenPowerLaw { lo: 0.1, hi: 50.0 }),
                vec![vec![-1.3, -2.3, 0.5], vec![0.5, -3.0, 10.0]],
            ),
            (
                Population::Beta(Beta),
                vec![vec![2.0, 5.0], vec![0.8, 1.5], vec![30.0, 3.0]],
            ),
            (
                Population::Mixture(Mixture { k: 3 }),
                vec![vec![-1.0, 0.5, 3.0, 0.3, 1.0, 0.7, 0.2, 0.6]],
            ),
            (
                Population::Binned(Binned {
                    edges: vec![0.0, 0.5, 1.5, 2.0, 4.0],
                    smoothness: 1.0,
                }),
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
                let (lo, hi, tails) = if matches!(model, Population::Beta(_)) {
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

    /// Every name in the library builds its model from the run file's
    /// settings, and a model knows its own name.
    #[test]
    fn every_name_builds_its_model() {
        let settings = ModelSettings {
            support: Some([1.0, 10.0]),
            edges: Some(vec![0.0, 1.0, 2.0]),
            ..Default::default()
        };
        for name in MODEL_NAMES {
            let model = Population::from_settings(name, &settings).unwrap().unwrap();
            assert_eq!(model.name(), *name);
        }
        assert!(Population::from_settings("gausian", &settings).unwrap().is_none());
        let bounded = ModelSettings {
            name: "schechter".into(),
            ..Default::default()
        };
        let err = Population::from_settings("schechter", &bounded)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the schechter model needs model.support"), "{err}");
    }

    #[test]
    fn product_model_adds_its_parts() {
        let (gauss, beta) = (Population::Gaussian(Gaussian), Population::Beta(Beta));
        let m = Population::Product(vec![gauss.clone(), beta.clone()]);
        m.validate().unwrap();
        assert_eq!(m.param_names(), ["theta_mu", "theta_sigma", "beta_a", "beta_b"]);
        let twice = Population::Product(vec![gauss.clone(), gauss.clone()]);
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
            let want = gauss.pdf_1d(&theta[..2], mu[2 * j]) * beta.pdf_1d(&theta[2..], mu[2 * j + 1]);
            assert!(((ln_p[j] - lnz).exp() - want).abs() < 1e-12 * want);
        }
        let nested = Population::Product(vec![m]);
        assert!(nested.validate().is_err());
    }
}
