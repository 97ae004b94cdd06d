//! Samplers: they see only a [`LogDensity`](crate::inference::posterior::LogDensity)
//! (or a [`SampleableModel`](crate::inference::posterior::SampleableModel)), and report
//! progress to a [`SamplerObserver`].

pub mod ensemble;
pub mod nuts;

pub use ensemble::{EnsembleRun, EnsembleSettings, EnsembleState, sample_ensemble, sample_ensemble_resuming};
pub use nuts::{
    ChainLog, ChainRecord, MassMatrix, NutsDrawStats, NutsResume, NutsRun, NutsSettings, sample_nuts,
    sample_nuts_resuming,
};

/// Watches a sampler run (a progress bar, a log); called from the chains'
/// threads, so it must be `Sync`. The numerical code never knows who listens.
pub trait SamplerObserver: Sync {
    /// A new stage of a longer job begins (e.g. "importance (NUTS)").
    fn on_stage(&self, _label: &str) {}
    /// `chains` chains of `iterations` iterations each (tuning included).
    fn on_start(&self, _chains: usize, _iterations: u64) {}
    /// One iteration of `chain` finished; `tuning` while it adapts (its
    /// divergences are expected then and not a verdict on the run).
    fn on_draw(&self, _chain: usize, _tuning: bool, _diverging: bool) {}
    fn on_finish(&self) {}
    /// A NUTS chain finished all its draws (a checkpoint can keep it).
    fn on_chain_done(&self, _record: &ChainRecord) {}
    /// Asked after every ensemble step: is a checkpoint of the state due?
    fn checkpoint_due(&self) -> bool {
        false
    }
    /// The ensemble's state, when a checkpoint was due.
    fn on_ensemble_state(&self, _state: &EnsembleState) {}
    /// Whether NUTS chains should log their density evaluations, so that
    /// a checkpoint can keep chains that have not finished (see
    /// [`ChainLog`]).
    fn wants_chain_logs(&self) -> bool {
        false
    }
    /// Asked after every draw of a logging chain: is a checkpoint of it due?
    fn chain_log_due(&self, _chain: usize) -> bool {
        false
    }
    /// A logging chain's evaluations so far, when a checkpoint was due.
    fn on_chain_log(&self, _chain: usize, _log: &[f64]) {}
    /// Asked before every iteration: true stops the run cleanly, keeping
    /// the draws made so far (e.g. after Ctrl-C).
    fn should_stop(&self) -> bool {
        false
    }
}

/// Reports nothing.
pub struct Silent;

impl SamplerObserver for Silent {}
