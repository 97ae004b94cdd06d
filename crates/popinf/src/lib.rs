//! popinf: hierarchical Bayesian population inference.
//!
//! Data flows one way, and so do the folders: each uses only those above
//! it in this list.
//!
//! - [`math`]: special functions, quadrature, statistics, the vector exp;
//! - [`model`]: population models p(mu | theta), hyperpriors, selection;
//! - [`data`]: catalogs of per-object posterior samples (or measurements)
//!   and their file formats;
//! - [`likelihood`]: the hyper-likelihood ln L(theta) from a catalog and a
//!   model (importance sampling, point estimates, selection and counts);
//! - [`diagnostics`]: R-hat, ESS, MCSE, autocorrelation of draws;
//! - [`inference`]: the posterior in unconstrained space, the latent and
//!   exact models, the samplers and their trace;
//! - [`report`]: figures and the HTML report;
//! - [`run`]: the workflows (fit, demo, SBC, mock surveys, benchmarks).
//!
//! `ARCHITECTURE.md` at the repository's root is the map.
//!
//! # A fit with the library alone
//!
//! The notebook's toy: 300 objects with true values mu_i ~ N(0, 1), each
//! measured with unit noise, 60 posterior samples per object under a flat
//! interim prior; the importance-sampled hyper-likelihood, the notebook's
//! priors, NUTS. The median-based estimate of theta_sigma would be near
//! sqrt(2); the hierarchical answer is near the true 1.
//!
//! ```
//! use popinf::data::simulate::{ToySettings, simulate_gaussian_toy};
//! use popinf::inference::posterior::Hyperposterior;
//! use popinf::inference::sampler::Silent;
//! use popinf::inference::sampler::nuts::{NutsSettings, sample_nuts};
//! use popinf::likelihood::importance::ImportanceLikelihood;
//! use popinf::model::gaussian::Gaussian;
//! use popinf::model::prior::NOTEBOOK_PRIORS;
//!
//! let toy = simulate_gaussian_toy(&ToySettings { n_obj: 300, n_samp: 60, seed: 3, ..Default::default() })?;
//! let likelihood = ImportanceLikelihood::new(&toy.catalog, Gaussian)?.with_bias_correction(true);
//! let hyperposterior = Hyperposterior::new(likelihood, NOTEBOOK_PRIORS.to_vec())?;
//! let settings = NutsSettings { chains: 2, tune: 300, draws: 300, seed: 1, ..Default::default() };
//! let run = sample_nuts(&hyperposterior, &settings, &Silent)?;
//! let summary = run.trace.summaries();
//! let (theta_mu, theta_sigma) = (&summary[0], &summary[1]);
//! assert!(theta_mu.mean.abs() < 0.3, "theta_mu = {}", theta_mu.mean);
//! assert!((theta_sigma.mean - 1.0).abs() < 0.3, "theta_sigma = {}", theta_sigma.mean);
//! assert!(theta_sigma.convergence.unwrap().r_hat < 1.05);
//! # Ok::<(), popinf::Error>(())
//! ```

pub mod data;
pub mod diagnostics;
pub mod error;
pub mod inference;
pub mod likelihood;
pub mod math;
pub mod model;
pub mod report;
pub mod run;

pub use error::{Error, Result};
