//! Posterior draws in natural units: chains x draws x parameters.

use crate::diagnostics::Convergence;
use crate::stats::ParamSummary;

#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub param_names: Vec<String>,
    pub n_chains: usize,
    pub n_draws: usize,
    /// `draws[(chain * n_draws + draw) * n_params + k]`.
    pub draws: Vec<f64>,
}

impl Trace {
    pub fn n_params(&self) -> usize {
        self.param_names.len()
    }

    /// One parameter's draws of one chain, in draw order.
    pub fn chain_param(&self, chain: usize, k: usize) -> Vec<f64> {
        let p = self.n_params();
        (0..self.n_draws)
            .map(|d| self.draws[(chain * self.n_draws + d) * p + k])
            .collect()
    }

    /// One parameter's draws of all chains, chain after chain.
    pub fn param(&self, k: usize) -> Vec<f64> {
        self.draws
            .iter()
            .skip(k)
            .step_by(self.n_params())
            .copied()
            .collect()
    }

    /// A trace of the named parameters only, in the order given.
    pub fn select(&self, names: &[&str]) -> crate::Result<Trace> {
        let idx: Vec<usize> = names
            .iter()
            .map(|name| {
                self.param_names
                    .iter()
                    .position(|p| p == name)
                    .ok_or_else(|| crate::Error::Invalid(format!("trace has no parameter named '{name}'")))
            })
            .collect::<crate::Result<_>>()?;
        let p = self.n_params();
        Ok(Trace {
            param_names: names.iter().map(|n| n.to_string()).collect(),
            n_chains: self.n_chains,
            n_draws: self.n_draws,
            draws: self
                .draws
                .chunks(p)
                .flat_map(|row| idx.iter().map(move |&k| row[k]))
                .collect(),
        })
    }

    /// Summaries of the named parameters, in the order given.
    pub fn summaries_of(&self, names: &[&str]) -> crate::Result<Vec<ParamSummary>> {
        names
            .iter()
            .map(|name| {
                let k =
                    self.param_names.iter().position(|p| p == name).ok_or_else(|| {
                        crate::Error::Invalid(format!("trace has no parameter named '{name}'"))
                    })?;
                Ok(self.summary(k))
            })
            .collect()
    }

    /// Every parameter's summary, with ArviZ's convergence diagnostics.
    pub fn summaries(&self) -> Vec<ParamSummary> {
        (0..self.n_params()).map(|k| self.summary(k)).collect()
    }

    /// One parameter's summary, with ArviZ's convergence diagnostics.
    pub fn summary(&self, k: usize) -> ParamSummary {
        let chains: Vec<Vec<f64>> = (0..self.n_chains).map(|c| self.chain_param(c, k)).collect();
        let refs: Vec<&[f64]> = chains.iter().map(|c| c.as_slice()).collect();
        ParamSummary {
            convergence: Some(Convergence::from_chains(&refs)),
            ..ParamSummary::from_draws(&self.param(k))
        }
    }
}
