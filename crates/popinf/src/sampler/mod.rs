//! Samplers: they see only a [`LogDensity`](crate::posterior::LogDensity).

pub mod ensemble;

pub use ensemble::{EnsembleRun, EnsembleSettings, sample_ensemble};
