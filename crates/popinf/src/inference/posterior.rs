//! The hyperposterior in unconstrained space: what samplers see.

use crate::error::Result;
use crate::invalid;
use crate::likelihood::importance::HyperLikelihood;
use crate::model::population::MAX_PARAMS;
use crate::model::prior::Hyperprior;

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
}

/// ln p(theta | data) up to a constant, as a density over the unconstrained
/// u = (log or logit) theta, including the log-Jacobian.
pub struct Hyperposterior<L> {
    priors: Vec<Hyperprior>,
    likelihood: L,
    /// Where samplers start (unconstrained); the origin unless set.
    initial: Option<Vec<f64>>,
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
        })
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
        theta
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
            .collect()
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
    }

    /// The centre of each prior in unconstrained space (u = 0), like PyMC's
    /// default initial point.
    fn initial_point(&self) -> Vec<f64> {
        self.initial
            .clone()
            .unwrap_or_else(|| vec![0.0; self.priors.len()])
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
        for ((t, &ui), p) in theta.iter_mut().zip(u).zip(&self.priors) {
            let tr = p.support().from_unconstrained(ui);
            *t = tr.value;
            ln_p += p.ln_pdf_grad(tr.value).0 + tr.ln_jacobian;
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
        for i in 0..n {
            let tr = self.priors[i].support().from_unconstrained(u[i]);
            let (lp, dlp) = self.priors[i].ln_pdf_grad(tr.value);
            theta[i] = tr.value;
            jac[i] = tr.jacobian;
            ln_p += lp + tr.ln_jacobian;
            d_prior_jac[i] = dlp * tr.jacobian + tr.d_ln_jacobian;
        }
        let ln_l = self.likelihood.ln_likelihood_grad(&theta[..n], grad);
        // Chain rule: d/du = (d ln L / d theta) d theta/du, plus the prior
        // and Jacobian terms already in u.
        for i in 0..n {
            grad[i] = grad[i] * jac[i] + d_prior_jac[i];
        }
        ln_p + ln_l
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::catalog::SampleCatalog;
    use crate::likelihood::importance::ImportanceLikelihood;
    use crate::model::gaussian::Gaussian;

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
            let mut g = [0.0; 2];
            let v = post.ln_density_grad(&u, &mut g);
            assert!((v - post.ln_density(&u)).abs() < 1e-12);
            for k in 0..2 {
                let h = 1e-6;
                let (mut a, mut b) = (u, u);
                a[k] += h;
                b[k] -= h;
                let fd = (post.ln_density(&a) - post.ln_density(&b)) / (2.0 * h);
                assert!((g[k] - fd).abs() < 1e-6, "k={k}: {} vs {fd}", g[k]);
            }
        }
        assert!(
            post.to_unconstrained(&[0.0, 2.5])
                .unwrap_err()
                .to_string()
                .contains("theta_sigma = 2.5")
        );
    }
}
