//! The hyper-likelihood ln L(theta) and its gradient from a catalog and a
//! population model: importance sampling (general and fused kernels),
//! the point-estimate (naive) form, the deterministic Gaussian-mixture
//! (gmm) form, and the selected and counted forms.

pub mod fused;
pub mod gmm;
pub mod importance;
pub mod log_sum;
pub mod population;
pub mod reliability;
