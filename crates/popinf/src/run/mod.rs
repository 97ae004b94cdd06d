//! The workflows, built from everything below: `popinf fit` (run file,
//! checkpoints, outputs), the demo, simulation-based calibration, the
//! stellar-mass-function mock survey, and the benchmarks.

pub mod bench;
pub mod demo;
pub mod fit;
pub mod report;
pub mod sbc;
pub mod smf;
