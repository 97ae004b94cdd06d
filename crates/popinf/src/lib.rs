//! popinf: hierarchical Bayesian population inference.
//!
//! Data flows one way, and so do the folders: each uses only those above
//! it in this list.
//!
//! - [`math`]: special functions, quadrature, statistics, the vector exp;
//! - [`data`]: catalogs of per-object posterior samples (or measurements)
//!   and their file formats;
//! - [`model`]: population models p(mu | theta), hyperpriors, selection;
//! - [`likelihood`]: the hyper-likelihood ln L(theta) from a catalog and a
//!   model (importance sampling, point estimates, exact);
//! - [`diagnostics`]: R-hat, ESS, MCSE, autocorrelation of draws;
//! - [`inference`]: the posterior in unconstrained space, the samplers and
//!   their trace;
//! - [`report`]: figures and the HTML report;
//! - [`run`]: the workflows (fit, demo, SBC, mock surveys, benchmarks).
//!
//! `ARCHITECTURE.md` at the repository's root is the map.

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
