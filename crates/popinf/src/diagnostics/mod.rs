//! Diagnostics of draws: rank-normalised split R-hat, bulk and tail ESS,
//! MCSE, HDI, E-BFMI (ArviZ's definitions), autocorrelation, and the
//! per-parameter summaries. Pure functions of arrays.

pub mod autocorr;
pub mod convergence;
pub mod summary;
