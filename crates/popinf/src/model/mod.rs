//! The population: the model traits and the model library (one family per
//! file), the hyperpriors, selection effects and counts. Nothing here knows
//! how a likelihood is estimated or sampled, nor what a catalog is.

pub mod beta;
pub mod binned;
pub mod gaussian;
pub mod library;
pub mod mixture;
pub mod population;
pub mod power_law;
pub mod prior;
pub mod schechter;
pub mod selection;
