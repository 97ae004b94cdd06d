//! The population likelihood: the per-object likelihood with the
//! normalisation, the selection term and the counts (the mathematics is in
//! [`crate::model::selection`]), and the catalog it runs on, with P_det
//! folded into the interim prior.

use crate::data::catalog::SampleCatalog;
use crate::error::Result;
use crate::invalid;
use crate::likelihood::gmm::{GmmAdaptive, GmmClosedForm};
use crate::likelihood::importance::{HyperLikelihood, ImportanceLikelihood};
use crate::model::library::Population;
use crate::model::population::MAX_PARAMS;
use crate::model::selection::{Counts, InjectionEstimate, Selection};

/// A catalog prepared for the population likelihood: which input objects
/// it holds, and which were left out.
pub struct Selected<'a> {
    pub catalog: std::borrow::Cow<'a, SampleCatalog>,
    /// Input index of each object kept, in order.
    pub ids: Vec<usize>,
    /// Input indices of the objects left out.
    pub left_out: Vec<usize>,
}

impl Selected<'_> {
    /// `catalog` without the objects in `left_out` (sorted indices).
    fn leaving_out(catalog: SampleCatalog, left_out: Vec<usize>) -> Result<Selected<'static>> {
        let n = catalog.n_obj();
        let mut out = vec![false; n];
        for &i in &left_out {
            out[i] = true;
        }
        let ids: Vec<usize> = (0..n).filter(|&i| !out[i]).collect();
        let catalog = if left_out.is_empty() {
            catalog
        } else {
            catalog.subset(&ids)?
        };
        Ok(Selected {
            catalog: std::borrow::Cow::Owned(catalog),
            ids,
            left_out,
        })
    }
}

impl Selection {
    /// Samples re-weighted by P_det (a limit or table on the true values;
    /// injections and no selection leave the catalog as it is). A detected
    /// object none of whose samples could have been detected has an
    /// estimated likelihood of 0 -- too few samples, not impossible data --
    /// and is left out.
    pub fn select_samples<'a>(&self, catalog: &'a SampleCatalog) -> Result<Selected<'a>> {
        if !matches!(self, Selection::Limit(_) | Selection::Table { .. }) {
            return Ok(Selected {
                catalog: std::borrow::Cow::Borrowed(catalog),
                ids: (0..catalog.n_obj()).collect(),
                left_out: Vec::new(),
            });
        }
        let (weighted, hopeless) = catalog.with_detection(|mu| self.completeness(mu[0]))?;
        if hopeless.len() == catalog.n_obj() {
            return invalid!("no object has a sample the survey could have detected; check the selection");
        }
        Selected::leaving_out(weighted, hopeless)
    }

    /// The naive method's catalog: each object's median as its true value,
    /// keeping the objects whose median the survey could have detected.
    pub fn select_medians(&self, catalog: &SampleCatalog) -> Result<Selected<'static>> {
        let all = catalog.medians();
        let undetectable: Vec<usize> = (0..all.n_obj())
            .filter(|&i| self.completeness(all.object(i).values[0]) <= 0.0)
            .collect();
        if undetectable.len() == all.n_obj() {
            return invalid!("no object's median passes the selection");
        }
        Selected::leaving_out(all, undetectable)
    }
}

/// sum_i ln L_i of the unnormalised population density f: importance
/// sums over samples (or point estimates, or a gmm's fixed quadrature
/// nodes), or the gmm likelihood in closed form.
// One per fit, never in a collection: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum ObjectTerms<'c> {
    Samples(ImportanceLikelihood<'c, Population>),
    ClosedForm(GmmClosedForm),
    Adaptive(GmmAdaptive),
}

impl<'c> From<ImportanceLikelihood<'c, Population>> for ObjectTerms<'c> {
    fn from(like: ImportanceLikelihood<'c, Population>) -> Self {
        ObjectTerms::Samples(like.without_normalisation())
    }
}

impl From<GmmAdaptive> for ObjectTerms<'_> {
    fn from(like: GmmAdaptive) -> Self {
        ObjectTerms::Adaptive(like)
    }
}

impl From<GmmClosedForm> for ObjectTerms<'_> {
    fn from(like: GmmClosedForm) -> Self {
        ObjectTerms::ClosedForm(like)
    }
}

impl ObjectTerms<'_> {
    fn like(&self) -> &dyn HyperLikelihood {
        match self {
            ObjectTerms::Samples(l) => l,
            ObjectTerms::ClosedForm(l) => l,
            ObjectTerms::Adaptive(l) => l,
        }
    }
}

/// The full population likelihood: the per-object terms `inner`
/// (importance-sampled or on point estimates with P_det folded into the
/// interim prior, or the gmm likelihood), the normalisation, the selection
/// term and the counts. ln Z is computed here once per evaluation and
/// shared by all three; the inner likelihood runs unnormalised.
pub struct PopulationLikelihood<'c> {
    pub inner: ObjectTerms<'c>,
    pub model: Population,
    pub selection: Selection,
    pub counts: Counts,
    pub n_obj: usize,
    /// Input index of each object, for messages (None: the same).
    pub object_ids: Option<Vec<usize>>,
}

impl<'c> PopulationLikelihood<'c> {
    pub fn new(
        inner: impl Into<ObjectTerms<'c>>,
        model: Population,
        selection: Selection,
        counts: Counts,
        n_obj: usize,
    ) -> Result<Self> {
        model.validate()?;
        model.check_size()?;
        selection.validate()?;
        if !matches!(selection, Selection::None)
            && crate::model::population::PopulationModel::dim(&model) != 1
        {
            return invalid!("selection effects are supported for 1-D population models only");
        }
        match counts {
            Counts::Volume(v) if !(v > 0.0 && v.is_finite()) => {
                return invalid!("counts: volume must be positive and finite, got {v}");
            }
            Counts::Volume(_) if !model.has_amplitude() => {
                return invalid!(
                    "counts with a volume need a model with an amplitude (schechter with amplitude, \
                     double_schechter); use the rate form for this model"
                );
            }
            Counts::Shape | Counts::Rate if model.has_amplitude() => {
                return invalid!(
                    "this model's amplitude (phi*) is only measured with counts over a volume: set the \
                     counts volume, or use the shape-only schechter"
                );
            }
            _ => {}
        }
        Ok(Self {
            inner: inner.into(),
            model,
            selection,
            counts,
            n_obj,
            object_ids: None,
        })
    }

    /// Names objects by their input index `ids[i]` in messages.
    pub fn with_object_ids(mut self, ids: Vec<usize>) -> Self {
        self.object_ids = Some(ids);
        self
    }

    /// The importance-sampled likelihood inside, if that is what runs.
    pub fn importance(&self) -> Option<&ImportanceLikelihood<'c, Population>> {
        match &self.inner {
            ObjectTerms::Samples(l) => Some(l),
            ObjectTerms::ClosedForm(_) | ObjectTerms::Adaptive(_) => None,
        }
    }

    /// The injection estimate's quality at theta (None without injections).
    pub fn injection_estimate(&self, theta: &[f64]) -> Option<InjectionEstimate> {
        let mut g = [0.0f64; MAX_PARAMS];
        let p = self.model.n_params();
        self.selection.ln_xi_grad(&self.model, &theta[..p], &mut g[..p]).1
    }

    fn evaluate(&self, theta_all: &[f64], grad: Option<&mut [f64]>) -> f64 {
        let p = self.model.n_params();
        let theta = &theta_all[..p];
        let fail = |grad: Option<&mut [f64]>| {
            if let Some(g) = grad {
                g.fill(0.0);
            }
            f64::NEG_INFINITY
        };
        if !self.model.valid(theta) {
            return fail(grad);
        }
        let mut g = [0.0f64; MAX_PARAMS];
        // sum_i ln L_i of the unnormalised f (the inner likelihood).
        let mut value = if grad.is_some() {
            self.inner.like().ln_likelihood_grad(theta, &mut g[..p])
        } else {
            self.inner.like().ln_likelihood(theta)
        };
        value += self.model.ln_prior_extra(theta, &mut g[..p]);
        // ln Z once, for the normalisation, xi and the counts.
        let mut g_z = [0.0f64; MAX_PARAMS];
        let ln_z = self.model.ln_norm_grad(theta, &mut g_z[..p]);
        let mut g_det = [0.0f64; MAX_PARAMS];
        let (ln_det, sums) = match self.selection {
            Selection::None => (ln_z, None),
            _ => self
                .selection
                .ln_detectable_grad(&self.model, theta, &mut g_det[..p]),
        };
        if matches!(self.selection, Selection::None) {
            g_det[..p].copy_from_slice(&g_z[..p]);
        }
        if let (
            Some(s),
            Selection::Injections {
                min_neff_per_object,
                reject: true,
                ..
            },
        ) = (sums, &self.selection)
            && s.n_eff() < min_neff_per_object * self.n_obj as f64
        {
            return fail(grad);
        }
        // Per object: ln L_i(p) = ln L_i(f) - ln Z; xi = exp(ln_det - ln Z).
        let n = self.n_obj as f64;
        let mut g_rate = 0.0;
        match self.counts {
            Counts::Shape => {
                // sum ln L_i(p) - N ln xi = sum ln L_i(f) - N ln_det.
                value -= n * ln_det;
                for k in 0..p {
                    g[k] -= n * g_det[k];
                }
            }
            Counts::Rate => {
                let rate = theta_all[p];
                if rate.is_nan() || rate <= 0.0 {
                    return fail(grad);
                }
                let xi = (ln_det - ln_z).exp();
                value += -n * ln_z - rate * xi + n * rate.ln();
                for k in 0..p {
                    g[k] -= n * g_z[k] + rate * xi * (g_det[k] - g_z[k]);
                }
                g_rate = -xi + n / rate;
            }
            Counts::Volume(volume) => {
                // sum ln L_i(f) - V * integral of P_det f + N ln V.
                let expected = volume * ln_det.exp();
                value += -expected + n * volume.ln();
                for k in 0..p {
                    g[k] -= expected * g_det[k];
                }
            }
        }
        if let Some(out) = grad {
            out[..p].copy_from_slice(&g[..p]);
            if self.counts == Counts::Rate {
                out[p] = g_rate;
            }
        }
        if value.is_nan() { f64::NEG_INFINITY } else { value }
    }
}

impl HyperLikelihood for PopulationLikelihood<'_> {
    fn param_names(&self) -> Vec<String> {
        let mut names = self.inner.like().param_names();
        if self.counts == Counts::Rate {
            names.push("rate".into());
        }
        names
    }

    fn ln_likelihood(&self, theta: &[f64]) -> f64 {
        self.evaluate(theta, None)
    }

    fn ln_likelihood_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        self.evaluate(theta, Some(grad))
    }

    fn explain_non_finite(&self, theta_all: &[f64]) -> Option<String> {
        let p = self.model.n_params();
        let theta = &theta_all[..p];
        let names = crate::model::population::PopulationModel::param_names(&self.model);
        let at = || {
            names
                .iter()
                .zip(theta)
                .map(|(n, v)| format!("{n} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.model.valid(theta) {
            return Some(format!("the population model is undefined at {}", at()));
        }
        let bad = match &self.inner {
            ObjectTerms::Samples(l) => l.explain_first_bad_object(theta),
            ObjectTerms::ClosedForm(l) => l.explain_first_bad_object(theta),
            ObjectTerms::Adaptive(l) => l.explain_first_bad_object(theta),
        };
        if let Some((i, why)) = bad {
            let id = self.object_ids.as_ref().map_or(i, |ids| ids[i]);
            return Some(format!("the likelihood of object {id}: {why}, at {}", at()));
        }
        let mut g = [0.0f64; MAX_PARAMS];
        let ln_z = self.model.ln_norm_grad(theta, &mut g[..p]);
        if !ln_z.is_finite() {
            return Some(format!(
                "the population's normalisation ln Z is {ln_z} at {}",
                at()
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// With 200 injections (~70 found) and 100 objects Neff < 4N: the
    /// theta is rejected; with 20 000 it is not.
    #[test]
    fn too_few_injections_reject_theta() {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(3);
        let make = |n_draw: usize, rng: &mut rand::rngs::ChaCha8Rng| {
            let found: Vec<f64> = (0..n_draw)
                .map(|_| -5.0 + 10.0 * rng.random::<f64>())
                .filter(|&x| x > 0.5)
                .collect();
            Selection::Injections {
                ln_p_draw: vec![-(10.0f64.ln()); found.len()],
                values: found,
                n_draw: n_draw as f64,
                min_neff_per_object: 4.0,
                reject: true,
            }
        };
        let theta = [0.2, 0.8];
        let samples: Vec<f64> = (0..100).map(|i| 0.6 + 0.01 * i as f64).collect();
        let catalog = SampleCatalog::with_flat_prior(1, samples, 0.0, (0..=100).collect()).unwrap();
        let inner =
            ImportanceLikelihood::new(&catalog, Population::Gaussian(crate::model::gaussian::Gaussian))
                .unwrap();
        let few = make(200, &mut rng);
        let like = PopulationLikelihood::new(
            inner,
            Population::Gaussian(crate::model::gaussian::Gaussian),
            few,
            Counts::Shape,
            100,
        )
        .unwrap();
        let e = like.injection_estimate(&theta).unwrap();
        assert!(e.n_eff < 400.0, "{e:?}");
        assert_eq!(like.ln_likelihood(&theta), f64::NEG_INFINITY);
        let inner =
            ImportanceLikelihood::new(&catalog, Population::Gaussian(crate::model::gaussian::Gaussian))
                .unwrap();
        let many = make(20_000, &mut rng);
        let like = PopulationLikelihood::new(
            inner,
            Population::Gaussian(crate::model::gaussian::Gaussian),
            many,
            Counts::Shape,
            100,
        )
        .unwrap();
        assert!(like.injection_estimate(&theta).unwrap().n_eff > 400.0);
        assert!(like.ln_likelihood(&theta).is_finite());
    }

    #[test]
    fn counts_gradients_match_finite_differences() {
        let samples: Vec<f64> = (0..40).map(|i| 9.6 + 0.05 * i as f64).collect();
        let catalog =
            SampleCatalog::with_flat_prior(1, samples, 0.0, (0..=20).map(|i| 2 * i).collect()).unwrap();
        let cases = [
            (
                Population::Gaussian(crate::model::gaussian::Gaussian),
                Selection::Limit(9.5),
                Counts::Rate,
                vec![10.3, 0.6, 25.0],
            ),
            (
                Population::Schechter(crate::model::schechter::Schechter {
                    lo: 8.0,
                    hi: 12.5,
                    amplitude: true,
                }),
                Selection::Limit(9.5),
                Counts::Volume(2e4),
                vec![10.7, -1.2, -2.8],
            ),
            (
                Population::Schechter(crate::model::schechter::Schechter {
                    lo: 8.0,
                    hi: 12.5,
                    amplitude: false,
                }),
                Selection::Table {
                    x: vec![9.0, 10.0],
                    c: vec![0.0, 1.0],
                },
                Counts::Shape,
                vec![10.7, -1.2],
            ),
        ];
        for (model, sel, counts, theta) in cases {
            let inner = ImportanceLikelihood::new(&catalog, model.clone()).unwrap();
            let like = PopulationLikelihood::new(inner, model, sel, counts, 20).unwrap();
            let mut g = vec![0.0; theta.len()];
            let v = like.ln_likelihood_grad(&theta, &mut g);
            assert!(
                (v - like.ln_likelihood(&theta)).abs() < 1e-9 * v.abs().max(1.0),
                "{counts:?}: {v} vs {}",
                like.ln_likelihood(&theta)
            );
            for k in 0..theta.len() {
                let h = 1e-5 * theta[k].abs().max(0.1);
                let (mut a, mut b) = (theta.clone(), theta.clone());
                a[k] += h;
                b[k] -= h;
                let fd = (like.ln_likelihood(&a) - like.ln_likelihood(&b)) / (2.0 * h);
                assert!(
                    (g[k] - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                    "{counts:?} k={k}: {} vs {fd}",
                    g[k]
                );
            }
        }
    }
}
