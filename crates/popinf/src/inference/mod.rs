//! From a likelihood to posterior draws: the hyperposterior in
//! unconstrained space, the latent-variable (full hierarchical) model, the
//! exact posterior of the Gaussian toy by quadrature, the samplers, the trace, and the per-method summaries.

pub mod exact;
pub mod latent;
pub mod method;
pub mod posterior;
pub mod sampler;
pub mod trace;
