//! Hyperpriors p(theta) and the maps to unconstrained space.
//!
//! Samplers move in unconstrained space u (log for positive parameters,
//! logit for intervals) so that no proposal ever lands outside the support;
//! the log-Jacobian |d theta / d u| is added to the density there. Results
//! are mapped back and reported in natural units.

use std::f64::consts::{LN_2, PI};
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::invalid;

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

/// A prior on one hyperparameter.
/// The notebook's PyMC priors, theta_mu ~ U(-5, 5) and theta_sigma ~
/// U(0, 2), used by the importance, hierarchical and exact fits.
pub const NOTEBOOK_PRIORS: [Hyperprior; 2] = [
    Hyperprior::Uniform {
        lower: -5.0,
        upper: 5.0,
    },
    Hyperprior::Uniform {
        lower: 0.0,
        upper: 2.0,
    },
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hyperprior {
    /// Flat on (lower, upper).
    Uniform { lower: f64, upper: f64 },
    /// N(mu, sd) on the real line.
    Normal { mu: f64, sd: f64 },
    /// |N(0, sd)| on (0, inf).
    HalfNormal { sd: f64 },
    /// |Cauchy(0, scale)| on (0, inf).
    HalfCauchy { scale: f64 },
    /// p(x) proportional to 1/x on (lower, upper), lower > 0.
    LogUniform { lower: f64, upper: f64 },
    /// rate * exp(-rate x) on (0, inf).
    Exponential { rate: f64 },
}

/// Where a parameter lives, which fixes its unconstraining map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Support {
    Real,
    Positive,
    Interval(f64, f64),
}

impl Hyperprior {
    /// Checks the prior's own parameters.
    pub fn validate(&self) -> Result<()> {
        let ok = match *self {
            Hyperprior::Uniform { lower, upper } => lower.is_finite() && upper.is_finite() && upper > lower,
            Hyperprior::Normal { mu, sd } => mu.is_finite() && sd.is_finite() && sd > 0.0,
            Hyperprior::HalfNormal { sd } => sd.is_finite() && sd > 0.0,
            Hyperprior::HalfCauchy { scale } => scale.is_finite() && scale > 0.0,
            Hyperprior::LogUniform { lower, upper } => {
                lower.is_finite() && upper.is_finite() && lower > 0.0 && upper > lower
            }
            Hyperprior::Exponential { rate } => rate.is_finite() && rate > 0.0,
        };
        if ok {
            Ok(())
        } else {
            invalid!(
                "prior {self}: invalid parameters (need finite bounds with lower < upper, \
                 lower > 0 for loguniform, and positive scales)"
            )
        }
    }

    pub fn support(&self) -> Support {
        match *self {
            Hyperprior::Uniform { lower, upper } | Hyperprior::LogUniform { lower, upper } => {
                Support::Interval(lower, upper)
            }
            Hyperprior::Normal { .. } => Support::Real,
            Hyperprior::HalfNormal { .. }
            | Hyperprior::HalfCauchy { .. }
            | Hyperprior::Exponential { .. } => Support::Positive,
        }
    }

    /// ln p(x) and d ln p / dx, for x inside the support.
    pub fn ln_pdf_grad(&self, x: f64) -> (f64, f64) {
        match *self {
            Hyperprior::Uniform { lower, upper } => (-(upper - lower).ln(), 0.0),
            Hyperprior::Normal { mu, sd } => {
                let z = (x - mu) / sd;
                (-0.5 * z * z - sd.ln() - HALF_LN_2PI, -z / sd)
            }
            Hyperprior::HalfNormal { sd } => {
                let z = x / sd;
                (LN_2 - 0.5 * z * z - sd.ln() - HALF_LN_2PI, -z / sd)
            }
            Hyperprior::HalfCauchy { scale } => {
                let z = x / scale;
                (
                    (2.0 / (PI * scale)).ln() - (z * z).ln_1p(),
                    -2.0 * x / (scale * scale + x * x),
                )
            }
            Hyperprior::LogUniform { lower, upper } => (-x.ln() - (upper.ln() - lower.ln()).ln(), -1.0 / x),
            Hyperprior::Exponential { rate } => (rate.ln() - rate * x, -rate),
        }
    }

    /// ln p(x), or -inf outside the support.
    pub fn ln_pdf(&self, x: f64) -> f64 {
        if self.contains(x) {
            self.ln_pdf_grad(x).0
        } else {
            f64::NEG_INFINITY
        }
    }

    pub fn contains(&self, x: f64) -> bool {
        match self.support() {
            Support::Real => x.is_finite(),
            Support::Positive => x > 0.0 && x.is_finite(),
            Support::Interval(a, b) => x > a && x < b,
        }
    }
}

impl Support {
    /// theta(u), d theta / du, ln |d theta / du| and d ln|d theta/du| / du.
    #[inline]
    pub fn from_unconstrained(&self, u: f64) -> Transformed {
        match *self {
            Support::Real => Transformed {
                value: u,
                jacobian: 1.0,
                ln_jacobian: 0.0,
                d_ln_jacobian: 0.0,
            },
            Support::Positive => {
                let x = u.exp();
                Transformed {
                    value: x,
                    jacobian: x,
                    ln_jacobian: u,
                    d_ln_jacobian: 1.0,
                }
            }
            Support::Interval(a, b) => {
                // Stable logistic and its log for large |u|.
                let s = 1.0 / (1.0 + (-u).exp());
                let ln_s = -(-u).exp().ln_1p();
                let ln_1ms = -u.exp().ln_1p();
                let width = b - a;
                // Keep the value strictly inside (a, b) even where s rounds to 0 or 1.
                let value = (a + width * s).clamp(a.next_up(), b.next_down());
                Transformed {
                    value,
                    jacobian: width * s * (1.0 - s),
                    ln_jacobian: width.ln() + ln_s + ln_1ms,
                    d_ln_jacobian: 1.0 - 2.0 * s,
                }
            }
        }
    }

    /// u(theta), the inverse of [`from_unconstrained`](Self::from_unconstrained).
    pub fn to_unconstrained(&self, x: f64) -> f64 {
        match *self {
            Support::Real => x,
            Support::Positive => x.ln(),
            Support::Interval(a, b) => {
                let p = (x - a) / (b - a);
                (p / (1.0 - p)).ln()
            }
        }
    }
}

/// A point mapped from unconstrained space, with what the chain rule needs.
#[derive(Debug, Clone, Copy)]
pub struct Transformed {
    pub value: f64,
    pub jacobian: f64,
    pub ln_jacobian: f64,
    pub d_ln_jacobian: f64,
}

impl fmt::Display for Hyperprior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Hyperprior::Uniform { lower, upper } => write!(f, "uniform({lower}, {upper})"),
            Hyperprior::Normal { mu, sd } => write!(f, "normal({mu}, {sd})"),
            Hyperprior::HalfNormal { sd } => write!(f, "halfnormal({sd})"),
            Hyperprior::HalfCauchy { scale } => write!(f, "halfcauchy({scale})"),
            Hyperprior::LogUniform { lower, upper } => write!(f, "loguniform({lower}, {upper})"),
            Hyperprior::Exponential { rate } => write!(f, "exponential({rate})"),
        }
    }
}

impl FromStr for Hyperprior {
    type Err = Error;

    /// Parses `uniform(a,b)`, `normal(mu,sd)`, `halfnormal(sd)`,
    /// `halfcauchy(scale)`, `loguniform(a,b)`, `exponential(rate)`.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let (name, rest) = s.split_once('(').ok_or_else(|| {
            Error::Invalid(format!(
                "prior '{s}': expected name(arguments), e.g. uniform(0, 2)"
            ))
        })?;
        let args_text = rest
            .strip_suffix(')')
            .ok_or_else(|| Error::Invalid(format!("prior '{s}': missing closing parenthesis")))?;
        let args: Vec<f64> = args_text
            .split(',')
            .map(|a| {
                a.trim()
                    .parse::<f64>()
                    .map_err(|_| Error::Invalid(format!("prior '{s}': '{}' is not a number", a.trim())))
            })
            .collect::<Result<_>>()?;
        let name = name.trim().to_ascii_lowercase();
        let want = match name.as_str() {
            "uniform" | "normal" | "loguniform" => 2,
            "halfnormal" | "halfcauchy" | "exponential" => 1,
            _ => {
                return invalid!(
                    "prior '{s}': unknown distribution '{name}' (use uniform, normal, halfnormal, \
                     halfcauchy, loguniform or exponential)"
                );
            }
        };
        if args.len() != want {
            return invalid!("prior '{s}': {name} takes {want} argument(s), got {}", args.len());
        }
        let prior = match name.as_str() {
            "uniform" => Hyperprior::Uniform {
                lower: args[0],
                upper: args[1],
            },
            "normal" => Hyperprior::Normal {
                mu: args[0],
                sd: args[1],
            },
            "loguniform" => Hyperprior::LogUniform {
                lower: args[0],
                upper: args[1],
            },
            "halfnormal" => Hyperprior::HalfNormal { sd: args[0] },
            "halfcauchy" => Hyperprior::HalfCauchy { scale: args[0] },
            _ => Hyperprior::Exponential { rate: args[0] },
        };
        prior.validate()?;
        Ok(prior)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_priors() -> Vec<Hyperprior> {
        vec![
            Hyperprior::Uniform {
                lower: -1.0,
                upper: 3.0,
            },
            Hyperprior::Normal { mu: 0.5, sd: 2.0 },
            Hyperprior::HalfNormal { sd: 1.5 },
            Hyperprior::HalfCauchy { scale: 0.7 },
            Hyperprior::LogUniform {
                lower: 0.1,
                upper: 10.0,
            },
            Hyperprior::Exponential { rate: 2.0 },
        ]
    }

    /// The density pushed to unconstrained space, p(theta(u)) |theta'(u)|,
    /// must integrate to one over u: checks the densities' normalisation and
    /// the log-Jacobians together (trapezoid rule on a wide, fine grid; the
    /// integrand decays at least exponentially in u except for the Cauchy's
    /// e^{-|u|} tail, so +-60 leaves < 1e-12).
    #[test]
    fn pushed_forward_densities_integrate_to_one() {
        for prior in all_priors() {
            let support = prior.support();
            let (lo, hi, n) = (-60.0, 60.0, 1_200_001);
            let h = (hi - lo) / (n - 1) as f64;
            let mut total = 0.0;
            for i in 0..n {
                let u = lo + h * i as f64;
                let t = support.from_unconstrained(u);
                let f = (prior.ln_pdf_grad(t.value).0 + t.ln_jacobian).exp();
                total += if i == 0 || i == n - 1 { 0.5 * f } else { f };
            }
            total *= h;
            assert!((total - 1.0).abs() < 1e-8, "{prior}: integral {total}");
        }
    }

    #[test]
    fn gradients_and_jacobians_match_finite_differences() {
        for prior in all_priors() {
            let support = prior.support();
            for &u in &[-2.0, -0.3, 0.0, 0.8, 2.5] {
                let h = 1e-6;
                let f = |u: f64| {
                    let t = support.from_unconstrained(u);
                    prior.ln_pdf_grad(t.value).0 + t.ln_jacobian
                };
                let t = support.from_unconstrained(u);
                let analytic = prior.ln_pdf_grad(t.value).1 * t.jacobian + t.d_ln_jacobian;
                let fd = (f(u + h) - f(u - h)) / (2.0 * h);
                assert!(
                    (analytic - fd).abs() < 1e-6,
                    "{prior} at u={u}: {analytic} vs {fd}"
                );
                let back = support.to_unconstrained(t.value);
                assert!((back - u).abs() < 1e-9, "{prior}: round trip {u} -> {back}");
            }
        }
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            "uniform(-5, 5)".parse::<Hyperprior>().unwrap(),
            Hyperprior::Uniform {
                lower: -5.0,
                upper: 5.0
            }
        );
        assert_eq!(
            "halfcauchy(2.5)".parse::<Hyperprior>().unwrap(),
            Hyperprior::HalfCauchy { scale: 2.5 }
        );
        for bad in [
            "uniform(5, -5)",
            "normal(0)",
            "gamma(1,1)",
            "uniform(0, x)",
            "loguniform(0, 1)",
            "exponential",
        ] {
            assert!(bad.parse::<Hyperprior>().is_err(), "{bad} should be rejected");
        }
    }
}
