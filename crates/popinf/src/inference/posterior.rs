//! The hyperposterior in unconstrained space: what samplers see.

use crate::error::Result;
use crate::invalid;
use crate::likelihood::importance::HyperLikelihood;
use crate::model::population::MAX_PARAMS;
use crate::model::prior::{Hyperprior, Support};

/// A log density on R^dim, with its gradient. The only thing a sampler
/// knows about a model.
pub trait LogDensity: Send + Sync {
    fn dim(&self) -> usize;

    /// ln density at `u`; -inf (or NaN) where it is not defined.
    fn ln_density(&self, u: &[f64]) -> f64;

    /// ln density at `u`, with its gradient written to `grad`.
    fn ln_density_grad(&self, u: &[f64], grad: &mut [f64]) -> f64;
}

/// A posterior a sampler can run and a trace can report: a log density in
/// unconstrained space plus the map back to named, natural-unit quantities.
pub trait SampleableModel: LogDensity {
    /// Names of the reported quantities, hyperparameters first.
    fn param_names(&self) -> Vec<String>;

    /// Natural-unit values of the reported quantities at `u`
    /// (`theta.len() == param_names().len()`).
    fn to_natural(&self, u: &[f64], theta: &mut [f64]);

    /// Unconstrained point to start sampling from (before jitter).
    fn initial_point(&self) -> Vec<f64>;

    /// Which term makes the log density non-finite at `u` (a prior, an
    /// object's likelihood), in words; None if unknown or finite.
    fn explain_non_finite(&self, u: &[f64]) -> Option<String> {
        let _ = u;
        None
    }
}

/// ln p(theta | data) up to a constant, as a density over the unconstrained
/// u = (log or logit) theta, including the log-Jacobian.
pub struct Hyperposterior<L> {
    priors: Vec<Hyperprior>,
    likelihood: L,
    /// Where samplers start (unconstrained); the origin unless set.
    initial: Option<Vec<f64>>,
    /// Parameters [start, end) sampled in increasing order (see
    /// [`Self::with_ordered`]).
    ordered: Option<(usize, usize)>,
}

impl<L: HyperLikelihood> Hyperposterior<L> {
    /// One prior per hyperparameter, in the likelihood's parameter order.
    pub fn new(likelihood: L, priors: Vec<Hyperprior>) -> Result<Self> {
        let names = likelihood.param_names();
        if priors.len() != names.len() {
            return invalid!(
                "{} priors given for {} hyperparameters ({})",
                priors.len(),
                names.len(),
                names.join(", ")
            );
        }
        if names.len() > MAX_PARAMS {
            return invalid!(
                "{} hyperparameters; at most {MAX_PARAMS} are supported",
                names.len()
            );
        }
        for (p, name) in priors.iter().zip(&names) {
            p.validate()
                .map_err(|e| crate::error::Error::Invalid(format!("{name}: {e}")))?;
        }
        Ok(Self {
            priors,
            likelihood,
            initial: None,
            ordered: None,
        })
    }

    /// Samples the parameters `range` in increasing order, theta_start <
    /// theta_start+1 < ..., so that exchangeable components (a mixture's
    /// means) cannot swap labels between or within chains. Their priors
    /// must share one support; the prior density is their product on the
    /// ordered region. The map from unconstrained space: on (a, b) stick
    /// breaking of the gap to b, b - theta_k = (b - a) prod_{i<=k} (1 -
    /// s_i), s_i = logistic(u_i); on the real line theta_1 = u_1, theta_k =
    /// theta_k-1 + e^u_k (e^u_1 for the first on (0, inf)).
    pub fn with_ordered(mut self, range: Option<std::ops::Range<usize>>) -> Result<Self> {
        let Some(range) = range.filter(|r| r.len() >= 2) else {
            return Ok(self);
        };
        let names = self.likelihood.param_names();
        if range.end > self.priors.len() {
            return invalid!(
                "ordered parameters {range:?} beyond the {} hyperparameters",
                self.priors.len()
            );
        }
        let support = self.priors[range.start].support();
        for i in range.clone() {
            if self.priors[i].support() != support {
                return invalid!(
                    "{} and {} are sampled in increasing order (so that the components cannot swap \
                     labels), which needs priors with one support; got {} and {}: give them the same prior",
                    names[range.start],
                    names[i],
                    self.priors[range.start],
                    self.priors[i]
                );
            }
        }
        self.ordered = Some((range.start, range.end));
        Ok(self)
    }

    /// Starts samplers at `theta` (natural units) instead of the
    /// unconstrained origin: with a large catalog the hyperposterior is
    /// narrow, and a start near it saves the warm-up a long walk.
    pub fn with_initial_point(mut self, theta: &[f64]) -> Result<Self> {
        self.initial = Some(self.to_unconstrained(theta)?);
        Ok(self)
    }

    pub fn priors(&self) -> &[Hyperprior] {
        &self.priors
    }

    pub fn likelihood(&self) -> &L {
        &self.likelihood
    }

    /// Unconstrained u from natural-unit theta; an error names a value
    /// outside its prior's support.
    pub fn to_unconstrained(&self, theta: &[f64]) -> Result<Vec<f64>> {
        let names = self.likelihood.param_names();
        let mut u: Vec<f64> = theta
            .iter()
            .zip(&self.priors)
            .zip(&names)
            .map(|((&t, p), name)| {
                if p.contains(t) {
                    Ok(p.support().to_unconstrained(t))
                } else {
                    invalid!("{name} = {t} is outside the support of its prior {p}")
                }
            })
            .collect::<Result<_>>()?;
        if let Some((a, b)) = self.ordered {
            let block = &theta[a..b];
            if block
                .windows(2)
                .any(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
            {
                return invalid!(
                    "{} must be increasing (the components are ordered), got {block:?}",
                    names[a..b].join(" < ")
                );
            }
            ordered_to_unconstrained(self.priors[a].support(), block, &mut u[a..b]);
        }
        Ok(u)
    }
}

/// Ordered values from unconstrained `u` (see [`Hyperposterior::with_ordered`])
/// into `x`; returns ln |J| of the triangular map.
fn ordered_from_unconstrained(support: Support, u: &[f64], x: &mut [f64]) -> f64 {
    match support {
        Support::Interval(lo, hi) => {
            let mut r = hi - lo;
            let mut ln_j = 0.0;
            for (xk, &uk) in x.iter_mut().zip(u) {
                let s = 1.0 / (1.0 + (-uk).exp());
                r *= 1.0 - s;
                *xk = hi - r;
                ln_j += r.ln() + s.ln();
            }
            ln_j
        }
        Support::Real | Support::Positive => {
            let mut ln_j = 0.0;
            for k in 0..u.len() {
                if k == 0 && support == Support::Real {
                    x[0] = u[0];
                } else {
                    x[k] = if k == 0 { 0.0 } else { x[k - 1] } + u[k].exp();
                    ln_j += u[k];
                }
            }
            ln_j
        }
    }
}

/// d/du of F(x(u)) + ln |J(u)| from g = dF/dx, into `g` (see
/// [`ordered_from_unconstrained`]).
fn ordered_chain_rule(support: Support, u: &[f64], x: &[f64], g: &mut [f64]) {
    let n = u.len();
    match support {
        Support::Interval(_, hi) => {
            // dx_k/du_j = r_k s_j for j <= k (r_k = hi - x_k), and d ln|J|/du_j
            // = (1 - s_j) - (n - j) s_j (0-based j: n - j terms k >= j).
            let mut tail = 0.0;
            for j in (0..n).rev() {
                let s = 1.0 / (1.0 + (-u[j]).exp());
                tail += g[j] * (hi - x[j]);
                g[j] = s * tail + (1.0 - s) - (n - j) as f64 * s;
            }
        }
        Support::Real | Support::Positive => {
            // dx_k/du_j = c_j for j <= k: c_j = e^u_j, or 1 for the first on
            // the real line; ln|J| = sum of the u_j with c_j = e^u_j.
            let mut tail = 0.0;
            for j in (0..n).rev() {
                tail += g[j];
                let first_real = j == 0 && support == Support::Real;
                g[j] = if first_real { tail } else { u[j].exp() * tail + 1.0 };
            }
        }
    }
}

/// Unconstrained u of increasing `x` (the inverse of
/// [`ordered_from_unconstrained`]).
fn ordered_to_unconstrained(support: Support, x: &[f64], u: &mut [f64]) {
    match support {
        Support::Interval(lo, hi) => {
            let mut r_prev = hi - lo;
            for (uk, &xk) in u.iter_mut().zip(x) {
                let r = hi - xk;
                let s = 1.0 - r / r_prev;
                *uk = (s / (1.0 - s)).ln();
                r_prev = r;
            }
        }
        Support::Real | Support::Positive => {
            for k in 0..x.len() {
                u[k] = if k == 0 && support == Support::Real {
                    x[0]
                } else {
                    (x[k] - if k == 0 { 0.0 } else { x[k - 1] }).ln()
                };
            }
        }
    }
}

impl<L: HyperLikelihood> SampleableModel for Hyperposterior<L> {
    fn param_names(&self) -> Vec<String> {
        self.likelihood.param_names()
    }

    fn to_natural(&self, u: &[f64], theta: &mut [f64]) {
        for ((t, &ui), p) in theta.iter_mut().zip(u).zip(&self.priors) {
            *t = p.support().from_unconstrained(ui).value;
        }
        if let Some((a, b)) = self.ordered {
            ordered_from_unconstrained(self.priors[a].support(), &u[a..b], &mut theta[a..b]);
        }
    }

    fn explain_non_finite(&self, u: &[f64]) -> Option<String> {
        let names = self.likelihood.param_names();
        let mut theta = vec![0.0; names.len()];
        self.to_natural(u, &mut theta);
        for ((name, p), &t) in names.iter().zip(&self.priors).zip(&theta) {
            let lp = p.ln_pdf(t);
            if !lp.is_finite() {
                return Some(format!("the prior of {name}, {p}, is {lp} at {name} = {t}"));
            }
        }
        if let Some(why) = self.likelihood.explain_non_finite(&theta) {
            return Some(why);
        }
        let ll = self.likelihood.ln_likelihood(&theta);
        (!ll.is_finite()).then(|| {
            let at: Vec<String> = names
                .iter()
                .zip(&theta)
                .map(|(n, v)| format!("{n} = {v}"))
                .collect();
            format!("the likelihood is {ll} at {}", at.join(", "))
        })
    }

    /// The centre of each prior in unconstrained space (u = 0), like PyMC's
    /// default initial point; where the density is not finite there, a
    /// fixed search (below).
    fn initial_point(&self) -> Vec<f64> {
        if let Some(u) = &self.initial {
            return u.clone();
        }
        // The centre of every prior, unless the density is not finite
        // there (a model undefined at some prior centre, data the
        // population cannot reach from it): then the best of 256 fixed
        // pseudo-random points with |u_k| <= 3, the same on every run.
        let dim = self.priors.len();
        let origin = vec![0.0; dim];
        if self.ln_density(&origin).is_finite() {
            return origin;
        }
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(0x1417);
        let mut best = (f64::NEG_INFINITY, origin);
        for _ in 0..256 {
            let u: Vec<f64> = (0..dim).map(|_| rng.random_range(-3.0..3.0)).collect();
            let lp = self.ln_density(&u);
            if lp > best.0 {
                best = (lp, u);
            }
        }
        best.1
    }
}

impl<L: HyperLikelihood> LogDensity for Hyperposterior<L> {
    fn dim(&self) -> usize {
        self.priors.len()
    }

    fn ln_density(&self, u: &[f64]) -> f64 {
        let mut theta = [0.0f64; MAX_PARAMS];
        let theta = &mut theta[..self.priors.len()];
        let mut ln_p = 0.0;
        let ordered = self.ordered.unwrap_or((0, 0));
        for (i, ((t, &ui), p)) in theta.iter_mut().zip(u).zip(&self.priors).enumerate() {
            if (ordered.0..ordered.1).contains(&i) {
                continue;
            }
            let tr = p.support().from_unconstrained(ui);
            *t = tr.value;
            ln_p += p.ln_pdf_grad(tr.value).0 + tr.ln_jacobian;
        }
        if let Some((a, b)) = self.ordered {
            ln_p += ordered_from_unconstrained(self.priors[a].support(), &u[a..b], &mut theta[a..b]);
            for (p, &t) in self.priors[a..b].iter().zip(&theta[a..b]) {
                ln_p += p.ln_pdf_grad(t).0;
            }
        }
        if !ln_p.is_finite() {
            return f64::NEG_INFINITY;
        }
        ln_p + self.likelihood.ln_likelihood(theta)
    }

    fn ln_density_grad(&self, u: &[f64], grad: &mut [f64]) -> f64 {
        let n = self.priors.len();
        let mut theta = [0.0f64; MAX_PARAMS];
        let mut jac = [0.0f64; MAX_PARAMS];
        let mut d_prior_jac = [0.0f64; MAX_PARAMS];
        let mut ln_p = 0.0;
        let ordered = self.ordered.unwrap_or((0, 0));
        let in_order = |i: usize| (ordered.0..ordered.1).contains(&i);
        for i in (0..n).filter(|&i| !in_order(i)) {
            let tr = self.priors[i].support().from_unconstrained(u[i]);
            let (lp, dlp) = self.priors[i].ln_pdf_grad(tr.value);
            theta[i] = tr.value;
            jac[i] = tr.jacobian;
            ln_p += lp + tr.ln_jacobian;
            d_prior_jac[i] = dlp * tr.jacobian + tr.d_ln_jacobian;
        }
        let (a, b) = ordered;
        if b > a {
            let support = self.priors[a].support();
            ln_p += ordered_from_unconstrained(support, &u[a..b], &mut theta[a..b]);
            for i in a..b {
                let (lp, dlp) = self.priors[i].ln_pdf_grad(theta[i]);
                ln_p += lp;
                // (The prior's gradient in theta, added below before the chain rule.)
                d_prior_jac[i] = dlp;
            }
        }
        let ln_l = self.likelihood.ln_likelihood_grad(&theta[..n], grad);
        // Chain rule: d/du = (d ln L / d theta) d theta/du, plus the prior
        // and Jacobian terms already in u.
        for i in (0..n).filter(|&i| !in_order(i)) {
            grad[i] = grad[i] * jac[i] + d_prior_jac[i];
        }
        if b > a {
            for i in a..b {
                grad[i] += d_prior_jac[i];
            }
            ordered_chain_rule(self.priors[a].support(), &u[a..b], &theta[a..b], &mut grad[a..b]);
        }
        ln_p + ln_l
    }
}

#[cfg(test)]
mod tests {

    /// A likelihood defined only for theta > 1: the prior's centre (0) is
    /// outside, and the automatic start finds a point inside.
    #[test]
    fn the_automatic_start_leaves_a_point_where_the_density_is_not_finite() {
        struct RightOfOne;
        impl HyperLikelihood for RightOfOne {
            fn param_names(&self) -> Vec<String> {
                vec!["theta".into()]
            }
            fn ln_likelihood(&self, t: &[f64]) -> f64 {
                if t[0] > 1.0 {
                    -(t[0] - 3.0).powi(2)
                } else {
                    f64::NEG_INFINITY
                }
            }
            fn ln_likelihood_grad(&self, t: &[f64], g: &mut [f64]) -> f64 {
                g[0] = -2.0 * (t[0] - 3.0);
                self.ln_likelihood(t)
            }
        }
        let post = Hyperposterior::new(
            RightOfOne,
            vec![Hyperprior::Uniform {
                lower: -5.0,
                upper: 5.0,
            }],
        )
        .unwrap();
        assert_eq!(post.ln_density(&[0.0]), f64::NEG_INFINITY);
        let u = post.initial_point();
        assert!(post.ln_density(&u).is_finite(), "{u:?}");
        assert_eq!(u, post.initial_point(), "the same start every time");
    }

    use super::*;
    use crate::data::catalog::SampleCatalog;
    use crate::likelihood::importance::ImportanceLikelihood;
    use crate::model::gaussian::Gaussian;

    /// ln_density_grad's value equals ln_density's (1e-10) and its gradient
    /// central differences (h = 1e-6: truncation ~1e-12, rounding ~1e-10 of
    /// ln p) to `tol` relative (absolute below 1).
    fn assert_gradient_matches_central_differences<L: HyperLikelihood>(
        post: &Hyperposterior<L>,
        u: &[f64],
        tol: f64,
    ) {
        let mut g = vec![0.0; u.len()];
        let v = post.ln_density_grad(u, &mut g);
        assert!(
            (v - post.ln_density(u)).abs() < 1e-10,
            "{v} vs {}",
            post.ln_density(u)
        );
        for k in 0..u.len() {
            let h = 1e-6;
            let (mut a, mut b) = (u.to_vec(), u.to_vec());
            a[k] += h;
            b[k] -= h;
            let fd = (post.ln_density(&a) - post.ln_density(&b)) / (2.0 * h);
            assert!(
                (g[k] - fd).abs() < tol * fd.abs().max(1.0),
                "u {u:?}, k={k}: {} vs {fd}",
                g[k]
            );
        }
    }

    /// The ordered map: increasing values, its inverse, and the density's
    /// gradient against finite differences, on an interval, the real line
    /// and (0, inf); ln|J| against the log-determinant of the numerical
    /// Jacobian.
    #[test]
    fn ordered_parameters_map_increasing_with_the_right_jacobian() {
        use crate::model::mixture::Mixture;
        let cat = SampleCatalog::from_objects(
            &[vec![-0.5, 0.3, 1.2], vec![2.0, 2.2, 1.9], vec![-1.0, -1.3]],
            None,
        )
        .unwrap();
        let mix = crate::model::library::Population::Mixture(Mixture { k: 3 });
        for mu_prior in [
            Hyperprior::Uniform {
                lower: -3.0,
                upper: 4.0,
            },
            Hyperprior::Normal { mu: 0.0, sd: 3.0 },
            Hyperprior::HalfNormal { sd: 2.0 },
        ] {
            let mut priors = vec![mu_prior; 3];
            priors.extend([Hyperprior::HalfNormal { sd: 2.0 }; 3]);
            priors.extend(
                [Hyperprior::Uniform {
                    lower: 0.0,
                    upper: 1.0,
                }; 2],
            );
            let like = ImportanceLikelihood::new(&cat, mix.clone()).unwrap();
            let post = Hyperposterior::new(like, priors)
                .unwrap()
                .with_ordered(Some(0..3))
                .unwrap();
            let support = mu_prior.support();
            for u in [
                [0.3, -0.7, 1.1, 0.2, -0.1, 0.4, 0.5, -0.5],
                [-1.2, 0.4, -0.3, -0.6, 0.3, 0.1, -1.0, 0.8],
            ] {
                let mut theta = [0.0; 8];
                post.to_natural(&u, &mut theta);
                assert!(
                    theta[0] < theta[1] && theta[1] < theta[2],
                    "{support:?}: {theta:?}"
                );
                let back = post.to_unconstrained(&theta).unwrap();
                for k in 0..8 {
                    assert!(
                        (back[k] - u[k]).abs() < 1e-9,
                        "{support:?}: u {k}: {} vs {}",
                        back[k],
                        u[k]
                    );
                }
                // ln|J| = ln det of the (triangular) numerical Jacobian.
                let mut x = [0.0; 3];
                let ln_j = ordered_from_unconstrained(support, &u[..3], &mut x);
                let mut det = 1.0;
                for k in 0..3 {
                    let h = 1e-6;
                    let (mut up, mut dn) = ([u[0], u[1], u[2]], [u[0], u[1], u[2]]);
                    up[k] += h;
                    dn[k] -= h;
                    let (mut xu, mut xd) = ([0.0; 3], [0.0; 3]);
                    ordered_from_unconstrained(support, &up, &mut xu);
                    ordered_from_unconstrained(support, &dn, &mut xd);
                    det *= (xu[k] - xd[k]) / (2.0 * h);
                }
                assert!(
                    (ln_j - det.ln()).abs() < 1e-6,
                    "{support:?}: ln|J| {ln_j} vs {}",
                    det.ln()
                );
                assert_gradient_matches_central_differences(&post, &u, 1e-5);
            }
        }
        // Different supports cannot be ordered.
        let like = ImportanceLikelihood::new(&cat, mix).unwrap();
        let mut priors = vec![Hyperprior::Normal { mu: 0.0, sd: 3.0 }; 3];
        priors[1] = Hyperprior::Uniform {
            lower: -3.0,
            upper: 4.0,
        };
        priors.extend([Hyperprior::HalfNormal { sd: 2.0 }; 3]);
        priors.extend(
            [Hyperprior::Uniform {
                lower: 0.0,
                upper: 1.0,
            }; 2],
        );
        let err = Hyperposterior::new(like, priors)
            .unwrap()
            .with_ordered(Some(0..3))
            .err()
            .unwrap();
        assert!(err.to_string().contains("same prior"), "{err}");
    }

    #[test]
    fn gradient_in_unconstrained_space_matches_finite_differences() {
        let cat =
            SampleCatalog::from_objects(&[vec![-0.5, 0.3, 1.2], vec![2.0, 2.2], vec![-1.0]], None).unwrap();
        let like = ImportanceLikelihood::new(&cat, Gaussian).unwrap();
        let post = Hyperposterior::new(
            like,
            vec![
                Hyperprior::Normal { mu: 0.0, sd: 3.0 },
                Hyperprior::Uniform {
                    lower: 0.0,
                    upper: 2.0,
                },
            ],
        )
        .unwrap();
        for u in [[0.1, -0.4], [1.5, 0.9]] {
            assert_gradient_matches_central_differences(&post, &u, 1e-6);
        }
        assert!(
            post.to_unconstrained(&[0.0, 2.5])
                .unwrap_err()
                .to_string()
                .contains("theta_sigma = 2.5")
        );
    }
}
