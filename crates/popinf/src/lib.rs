//! popinf: hierarchical Bayesian population inference.
//!
//! Data flows one way: a [`catalog`] of per-object posterior samples (or
//! measurements) and a [`population`] model with [`prior`]s give a
//! [`likelihood`]; [`posterior`] maps it to unconstrained space for a
//! [`sampler`], whose [`trace`] the summaries read. [`demo`] runs the
//! notebook this project grew from, end to end.

pub mod autocorr;
pub mod bench;
pub mod catalog;
pub mod demo;
pub mod diagnostics;
pub mod error;
pub mod exact;
pub mod fastmath;
pub mod fit;
pub mod fused;
pub mod input;
pub mod io;
pub mod latent;
pub mod likelihood;
pub mod method;
pub mod models;
pub mod plot;
pub mod population;
pub mod posterior;
pub mod prior;
pub mod psis;
pub mod quadrature;
pub mod report;
pub mod sampler;
pub mod sbc;
pub mod selection;
pub mod simulate;
pub mod smf;
pub mod special;
pub mod stats;
pub mod trace;

pub use error::{Error, Result};
