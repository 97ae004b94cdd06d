//! One module per subcommand: its arguments, and `run`, which parses them
//! into the library's settings, calls the library and prints.

pub mod bench;
pub mod demo;
pub mod diagnose;
pub mod fit;
pub mod graph;
pub mod report;
pub mod sbc;
pub mod simulate;
