//! Numerical building blocks with no knowledge of populations: special
//! functions, quadrature, descriptive statistics, the vectorised exp and
//! the instruction-set dispatch, and the Pareto fit of PSIS.

pub mod fastmath;
pub mod gmm;
pub mod psis;
pub mod quadrature;
pub mod special;
pub mod stats;
