//! The Gaussian-mixture (gmm) likelihood: a deterministic alternative to
//! importance sampling from the same per-object samples (cf. Wysocki,
//! Lange & O'Shaughnessy 2019).
//!
//! Each object's likelihood l_i(mu) ∝ q_i(mu) / pi(mu) is approximated once,
//! at load, by a mixture l~_i = sum_k w_k N(m_k, s_k) fitted by EM to the
//! samples weighted by 1 / pi (the first of the design notes' two ways to
//! handle a non-flat interim prior; the second, fitting q_i and dividing by
//! pi inside the integral, needs pi at points that are not samples, which a
//! per-sample ln pi column does not give). Then
//!
//! ```text
//! L_i(theta) = integral f(mu|theta) P_det(mu) l~_i(mu) dmu
//! ```
//!
//! (f unnormalised; the population likelihood subtracts ln Z) with no Monte
//! Carlo noise in theta:
//! - in closed form for a model whose ln f is a sum of quadratics in mu
//!   (the Gaussian, the two-component mixture) without selection on mu or a
//!   bounded support ([`GmmClosedForm`]);
//! - otherwise by Gauss–Legendre quadrature on each component's +-7 sd,
//!   cut to the model's support and the completeness limit (split at a
//!   completeness table's knots). The nodes do not depend on theta, so
//!   L_i = sum_n W_n f(x_n|theta) is an importance-sampling sum over fixed
//!   points with weights W_n: [`ObjectMixtures::node_catalog`] writes them
//!   as a catalog (ln pi_n = -ln W_n - ln n_i), and the importance kernel,
//!   fused where the model allows, evaluates it.

use rayon::prelude::*;
use serde::Serialize;

use crate::data::catalog::SampleCatalog;
use crate::error::Result;
use crate::invalid;
use crate::likelihood::importance::HyperLikelihood;
use crate::math::gmm::{GmmSettings, MAX_COMPONENTS, MixtureFit, fit_mixture, gauss_legendre};
use crate::model::library::Population;
use crate::model::population::{Feature, KernelForm, MAX_PARAMS, PopulationModel};
use crate::model::selection::Selection;

/// Quadrature nodes per component (and per piece between a completeness
/// table's knots). 32 Gauss–Legendre nodes on +-7 sd integrate a Gaussian
/// to 1e-14 (24 nodes: 3e-9); see the tests for a Schechter function.
pub const DEFAULT_NODES: usize = 32;
/// Each component is integrated over its mean +- this many sds (the mass
/// outside, 2.6e-12, is negligible next to the mixture's misfit).
pub const HALF_WIDTH_SD: f64 = 7.0;
/// A mixture whose Kolmogorov–Smirnov p-value is below this describes its
/// samples poorly.
pub const POOR_FIT_P: f64 = 0.01;

/// Every object's fitted mixture.
#[derive(Debug, Clone)]
pub struct ObjectMixtures {
    pub fits: Vec<MixtureFit>,
}

impl ObjectMixtures {
    /// Fits each object's mixture to its samples weighted by 1 / pi, in
    /// parallel (each fit is deterministic, so the result does not depend
    /// on the thread count). One-dimensional catalogs only.
    pub fn fit(catalog: &SampleCatalog, settings: &GmmSettings) -> Result<Self> {
        if catalog.dim() != 1 {
            return invalid!(
                "the gmm likelihood fits one-dimensional catalogs; these samples have dimension {} \
                 (use likelihood importance)",
                catalog.dim()
            );
        }
        let fits = (0..catalog.n_obj())
            .into_par_iter()
            .map(|i| {
                let obj = catalog.object(i);
                let ln_w: Vec<f64> = (0..obj.n_samples()).map(|j| -obj.ln_prior(j)).collect();
                fit_mixture(obj.values, &ln_w, settings)
                    .map_err(|e| crate::error::Error::Invalid(format!("object {i}: {e}")))
            })
            .collect::<Vec<Result<MixtureFit>>>();
        // The first bad object in input order, whatever the thread count.
        let fits = fits.into_iter().collect::<Result<Vec<_>>>()?;
        Ok(Self { fits })
    }

    pub fn n_obj(&self) -> usize {
        self.fits.len()
    }

    /// The quadrature nodes of every object as a catalog whose
    /// importance-sampled likelihood is exactly
    /// ln sum_n W_n f(x_n|theta) = ln of the quadrature of
    /// f P_det l~_i: per node ln pi = -ln W_n - ln n_i (the importance
    /// likelihood subtracts ln n_i again). Returns the catalog and the
    /// objects whose every component lies outside the support or below the
    /// completeness limit (left out, as the importance likelihood leaves
    /// out objects with no detectable sample).
    pub fn node_catalog(
        &self,
        support: Option<(f64, f64)>,
        selection: &Selection,
        nodes: usize,
    ) -> Result<(SampleCatalog, Vec<usize>, Vec<usize>)> {
        if nodes < 2 {
            return invalid!("gmm: need at least 2 quadrature nodes per component, got {nodes}");
        }
        let (lo, hi) = support.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
        let (lo, breaks) = match selection {
            Selection::Limit(l) => (lo.max(*l), Vec::new()),
            Selection::Table { x, .. } => (lo, x.clone()),
            _ => (lo, Vec::new()),
        };
        let (t, tw) = gauss_legendre(nodes);
        let mut values = Vec::new();
        let mut ln_prior = Vec::new();
        let mut offsets = vec![0usize];
        let mut kept = Vec::new();
        let mut left_out = Vec::new();
        let mut x_obj = Vec::new();
        let mut ln_w_obj = Vec::new();
        for (i, fit) in self.fits.iter().enumerate() {
            x_obj.clear();
            ln_w_obj.clear();
            let mix = &fit.mixture;
            for k in 0..mix.n_components() {
                let (m, s) = (mix.means[k], mix.sds[k]);
                let a = (m - HALF_WIDTH_SD * s).max(lo);
                let b = (m + HALF_WIDTH_SD * s).min(hi);
                if a >= b || a.is_nan() || b.is_nan() {
                    continue;
                }
                // Pieces between the completeness table's knots: P_det has
                // kinks there, which a single Gauss rule would smear.
                let mut cuts = vec![a];
                cuts.extend(breaks.iter().copied().filter(|&v| v > a && v < b));
                cuts.push(b);
                for piece in cuts.windows(2) {
                    let (pa, pb) = (piece[0], piece[1]);
                    let half = 0.5 * (pb - pa);
                    let mid = 0.5 * (pa + pb);
                    for (tn, wn) in t.iter().zip(&tw) {
                        let x = mid + half * tn;
                        let p_det = selection.completeness(x);
                        if p_det <= 0.0 {
                            continue;
                        }
                        let ln_w = mix.weights[k].ln()
                            + crate::math::gmm::ln_normal(x, m, s)
                            + (half * wn).ln()
                            + p_det.ln();
                        if ln_w.is_finite() {
                            x_obj.push(x);
                            ln_w_obj.push(ln_w);
                        }
                    }
                }
            }
            if x_obj.is_empty() {
                left_out.push(i);
                continue;
            }
            let ln_n = (x_obj.len() as f64).ln();
            values.extend_from_slice(&x_obj);
            ln_prior.extend(ln_w_obj.iter().map(|w| -w - ln_n));
            offsets.push(values.len());
            kept.push(i);
        }
        if kept.is_empty() {
            return invalid!(
                "gmm: no object's likelihood overlaps the model's support and the selection; check \
                 model.support and the completeness limit"
            );
        }
        Ok((SampleCatalog::new(1, values, ln_prior, offsets)?, kept, left_out))
    }

    /// The fit-quality report: per object, how well its mixture describes
    /// its samples (`ids` maps to input indices).
    pub fn report(&self, ids: &[usize], form: &str, nodes: Option<usize>) -> GmmReport {
        let mut components = [0usize; MAX_COMPONENTS];
        for f in &self.fits {
            components[f.mixture.n_components() - 1] += 1;
        }
        let mut order: Vec<usize> = (0..self.fits.len()).collect();
        order.sort_by(|&a, &b| self.fits[a].ks_p_value.total_cmp(&self.fits[b].ks_p_value));
        let n_poor = self.fits.iter().filter(|f| f.ks_p_value < POOR_FIT_P).count();
        let worst = order
            .iter()
            .take(n_poor.clamp(3, 10).min(self.fits.len()))
            .map(|&i| {
                let f = &self.fits[i];
                GmmObjectFit {
                    object: ids[i],
                    components: f.mixture.n_components(),
                    n_eff: f.n_eff,
                    ks_distance: f.ks_distance,
                    ks_p_value: f.ks_p_value,
                }
            })
            .collect();
        GmmReport {
            form: form.to_string(),
            nodes_per_component: nodes,
            n_obj: self.fits.len(),
            objects_with_k_components: components,
            n_eff_min: self.fits.iter().map(|f| f.n_eff).fold(f64::INFINITY, f64::min),
            n_eff_below_20: self.fits.iter().filter(|f| f.n_eff < 20.0).count(),
            n_poor_fit: n_poor,
            worst_objects: worst,
        }
    }

    /// The mixtures as CSV rows: object, component, weight, mean, sd, and
    /// the object's n_eff, KS distance and p-value.
    pub fn to_csv(&self, ids: &[usize]) -> String {
        let mut out = String::from("object,component,weight,mean,sd,n_eff,ks_distance,ks_p_value\n");
        for (f, id) in self.fits.iter().zip(ids) {
            let m = &f.mixture;
            for k in 0..m.n_components() {
                out.push_str(&format!(
                    "{id},{k},{},{},{},{},{},{}\n",
                    m.weights[k], m.means[k], m.sds[k], f.n_eff, f.ks_distance, f.ks_p_value
                ));
            }
        }
        out
    }
}

/// How a gmm likelihood is evaluated for a model and selection.
pub enum GmmPlan {
    /// In closed form.
    ClosedForm(GmmClosedForm),
    /// By quadrature on nodes placed at each evaluation where the
    /// population has its mass (models without a fused kernel, and the
    /// Gaussian family with a selection or support): refined where the
    /// population is narrower than a component.
    Adaptive(GmmAdaptive),
    /// By the importance kernel over fixed quadrature nodes: the node
    /// catalog (the caller holds it for the likelihood's lifetime), the
    /// objects it keeps and those it leaves out.
    Nodes {
        catalog: SampleCatalog,
        kept: Vec<usize>,
        left_out: Vec<usize>,
    },
}

impl GmmPlan {
    /// The closed form where it applies, fixed nodes for the Schechter
    /// family, else nodes placed per evaluation.
    pub fn new(
        mixtures: &ObjectMixtures,
        model: &Population,
        selection: &Selection,
        nodes: usize,
        bias_correction: bool,
    ) -> Result<Self> {
        if GmmClosedForm::applies(model, selection) {
            let closed =
                GmmClosedForm::new(mixtures, model.clone(), bias_correction).expect("checked by applies");
            return Ok(GmmPlan::ClosedForm(closed));
        }
        if model.kernel_feature() != Some(Feature::Exp10) {
            return Ok(GmmPlan::Adaptive(GmmAdaptive::new(
                mixtures,
                model.clone(),
                selection.clone(),
                nodes,
            )?));
        }
        // The Schechter family: never narrower than a component (its
        // cut-off spans decades in mass), so fixed nodes, fused kernel.
        let (catalog, kept, left_out) = mixtures.node_catalog(model.support(), selection, nodes)?;
        Ok(GmmPlan::Nodes {
            catalog,
            kept,
            left_out,
        })
    }

    /// The report's name for the plan.
    pub fn form(&self) -> &'static str {
        match self {
            GmmPlan::ClosedForm(_) => "closed form",
            GmmPlan::Nodes { .. } => "quadrature",
            GmmPlan::Adaptive(_) => "adaptive quadrature",
        }
    }
}

/// How well the mixtures describe the samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GmmReport {
    /// "closed form" or "quadrature".
    pub form: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes_per_component: Option<usize>,
    pub n_obj: usize,
    /// How many objects have 1, 2, 3, 4 components.
    pub objects_with_k_components: [usize; MAX_COMPONENTS],
    /// Smallest Kish effective sample size of the 1/pi weights.
    pub n_eff_min: f64,
    pub n_eff_below_20: usize,
    /// Objects whose mixture fails the KS check (p < 0.01).
    pub n_poor_fit: usize,
    /// The worst-described objects (smallest p), worst first.
    pub worst_objects: Vec<GmmObjectFit>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GmmObjectFit {
    pub object: usize,
    pub components: usize,
    pub n_eff: f64,
    pub ks_distance: f64,
    pub ks_p_value: f64,
}

impl GmmReport {
    /// Plain-words warnings, each with what to do.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.n_poor_fit > 0 {
            let shown: Vec<String> = self
                .worst_objects
                .iter()
                .filter(|o| o.ks_p_value < POOR_FIT_P)
                .map(|o| {
                    format!(
                        "object {} (K = {}, KS p = {:.1e})",
                        o.object, o.components, o.ks_p_value
                    )
                })
                .collect();
            w.push(format!(
                "gmm: {} of {} objects' samples are not described well by a mixture of at most {} \
                 Gaussians (Kolmogorov-Smirnov p < {POOR_FIT_P}): {} -- a posterior with a hard edge or \
                 more modes than components. Their likelihood is approximated; compare with \
                 --likelihood importance, and inspect them in gmm.csv",
                self.n_poor_fit,
                self.n_obj,
                MAX_COMPONENTS,
                shown.join(", ")
            ));
        }
        if self.n_eff_below_20 > 0 {
            w.push(format!(
                "gmm: {} object(s) have fewer than 20 effective samples after dividing out the interim prior \
                 (smallest {:.1}): the interim prior varies strongly across their posterior, so their \
                 mixtures rest on few samples",
                self.n_eff_below_20, self.n_eff_min
            ));
        }
        w
    }
}

/// Objects per block of the closed form's fixed-order reduction.
const CLOSED_FORM_BLOCK: usize = 512;

/// L_i(theta) = integral f(mu|theta) l~_i(mu) dmu in closed form, for a
/// model whose ln f is a [`KernelForm`] with f = d^2 (a sum of Gaussians in
/// mu) on the real line. A term exp(c0 + c1 d - a d^2) is A N(mu; mu_f,
/// sigma_f^2) with sigma_f^2 = 1 / (2a), mu_f = x0 + c1 / (2a); against a
/// component w N(m, s) it integrates to
///
/// ```text
/// w A N(m; mu_f, V),  V = sigma_f^2 + s^2,
/// ```
///
/// and the gradient of its log is each term's e0 + e1 d + e2 d^2 averaged
/// over the tilted Gaussian N(d; (c1 s^2 + m') / (1 + u), s^2 / (1 + u)),
/// u = 2 a s^2, m' = m - x0.
///
/// **Bias correction** (on by default, like importance sampling's): s^2 is
/// estimated from n effective samples, with variance 2 s^4 / (n - 1), and
/// ln L_i is concave-convex in it, so noisy widths bias the population's
/// scatter upwards (by ~2 eps^2 of the total variance, eps the relative
/// noise of V: +0.2 posterior sd at 1000 objects x 100 samples). Each
/// term gets the delta-method correction
/// C = -(1/2) d^2 ln N(m; mu_f, V) / dV^2 Var(s^2)
///   = -(s^4 / (n - 1)) (1 / (2 V^2) - r^2 / V^3),  r = m - mu_f,
/// with its gradient through dV/dtheta = 2 e2 sigma_f^4 and
/// dmu_f/dtheta = sigma_f^2 (e1 + 2 e2 (mu_f - x0)).
pub struct GmmClosedForm {
    model: Population,
    /// Per component: ln w, mean, sd, and Var(s^2) / 2 = s^4 / (n - 1)
    /// (0 without the bias correction); object i owns
    /// `offsets[i]..offsets[i+1]`.
    comps: Vec<[f64; 4]>,
    offsets: Vec<usize>,
}

impl GmmClosedForm {
    /// `None` when the model has no such form (use the node catalog).
    pub fn new(mixtures: &ObjectMixtures, model: Population, bias_correction: bool) -> Option<Self> {
        if model.kernel_feature() != Some(Feature::Square) || model.kernel_support().is_some() {
            return None;
        }
        let mut comps = Vec::new();
        let mut offsets = vec![0];
        for f in &mixtures.fits {
            let m = &f.mixture;
            for k in 0..m.n_components() {
                let n = (m.weights[k] * f.n_eff).max(3.0);
                let half_var = if bias_correction {
                    m.sds[k].powi(4) / (n - 1.0)
                } else {
                    0.0
                };
                comps.push([m.weights[k].ln(), m.means[k], m.sds[k], half_var]);
            }
            offsets.push(comps.len());
        }
        Some(Self {
            model,
            comps,
            offsets,
        })
    }

    /// The notebook's case, in one call: every object's mixture fitted to
    /// `catalog` (default settings), and the Gaussian population's closed
    /// form over them.
    pub fn fit_gaussian(catalog: &SampleCatalog, bias_correction: bool) -> Result<(ObjectMixtures, Self)> {
        let mixtures = ObjectMixtures::fit(catalog, &GmmSettings::default())?;
        let closed = Self::new(
            &mixtures,
            Population::Gaussian(crate::model::gaussian::Gaussian),
            bias_correction,
        )
        .expect("the Gaussian has a closed form");
        Ok((mixtures, closed))
    }

    /// Whether the model admits the closed form with this selection (a
    /// limit or table on mu needs the quadrature).
    pub fn applies(model: &Population, selection: &Selection) -> bool {
        model.kernel_feature() == Some(Feature::Square)
            && model.kernel_support().is_none()
            && matches!(selection, Selection::None | Selection::Injections { .. })
    }

    fn n_obj(&self) -> usize {
        self.offsets.len() - 1
    }

    /// sum over objects [start, end) of ln L_i, and the gradient into `grad`.
    fn block(
        &self,
        form: &KernelForm,
        p: usize,
        (start, end): (usize, usize),
        grad: Option<&mut [f64]>,
    ) -> f64 {
        const N: usize = MAX_COMPONENTS * crate::model::population::MAX_TERMS;
        let mut total = 0.0;
        let mut g = [0.0f64; MAX_PARAMS];
        let want_grad = grad.is_some();
        let mut ln_terms = [0.0f64; N];
        // Per (component, term): tilted moments of 1, d, d^2, and the
        // correction's dC/dV and dC/dmu_f.
        let mut moments = [[0.0f64; 3]; N];
        let mut d_corr = [[0.0f64; 2]; N];
        // Per term: sigma_f^2 and mu_f - x0.
        let mut var_f = [0.0f64; crate::model::population::MAX_TERMS];
        let mut mean_f = [0.0f64; crate::model::population::MAX_TERMS];
        for t in 0..form.terms {
            let [_, c1, c2] = form.c[t];
            var_f[t] = -0.5 / c2;
            mean_f[t] = c1 * var_f[t];
        }
        for i in start..end {
            let mut n = 0;
            let mut max = f64::NEG_INFINITY;
            for comp in &self.comps[self.offsets[i]..self.offsets[i + 1]] {
                let [ln_w, m, s, half_var] = *comp;
                let mp = m - form.x0;
                let s2 = s * s;
                for t in 0..form.terms {
                    let [c0, c1, c2] = form.c[t];
                    let a = -c2;
                    let one_u = 1.0 + 2.0 * a * s2;
                    let mut v = ln_w + c0 - 0.5 * one_u.ln()
                        + (c1 * c1 * s2 + 2.0 * c1 * mp - 2.0 * a * mp * mp) / (2.0 * one_u);
                    if half_var > 0.0 {
                        let big_v = var_f[t] + s2;
                        let r = mp - mean_f[t];
                        let (inv_v, r2) = (1.0 / big_v, r * r);
                        let inv_v2 = inv_v * inv_v;
                        v -= half_var * (0.5 * inv_v2 - r2 * inv_v2 * inv_v);
                        // dC/dV and dC/dr (r = m - mu_f: dC/dmu_f = -dC/dr).
                        let dv = -half_var * (-inv_v2 * inv_v + 3.0 * r2 * inv_v2 * inv_v2);
                        let dr = -half_var * (-2.0 * r * inv_v2 * inv_v);
                        d_corr[n] = [dv, -dr];
                    } else {
                        d_corr[n] = [0.0, 0.0];
                    }
                    let mean = (c1 * s2 + mp) / one_u;
                    moments[n] = [1.0, mean, mean * mean + s2 / one_u];
                    ln_terms[n] = v;
                    max = max.max(v);
                    n += 1;
                }
            }
            if max == f64::NEG_INFINITY || max.is_nan() {
                return f64::NEG_INFINITY;
            }
            let mut sum = 0.0;
            for v in &mut ln_terms[..n] {
                *v = (*v - max).exp();
                sum += *v;
            }
            total += max + sum.ln();
            if want_grad {
                let terms = form.terms;
                for j in 0..n {
                    let t = j % terms;
                    let r = ln_terms[j] / sum;
                    let mo = moments[j];
                    let [dc_dv, dc_dmu] = d_corr[j];
                    let vf = var_f[t];
                    for (k, gk) in g.iter_mut().enumerate().take(p) {
                        let e = form.e[k][t];
                        let mut d = e[0] * mo[0] + e[1] * mo[1] + e[2] * mo[2];
                        if dc_dv != 0.0 || dc_dmu != 0.0 {
                            d += dc_dv * 2.0 * e[2] * vf * vf + dc_dmu * vf * (e[1] + 2.0 * e[2] * mean_f[t]);
                        }
                        *gk += r * d;
                    }
                }
            }
        }
        if let Some(out) = grad {
            out[..p].copy_from_slice(&g[..p]);
        }
        total
    }

    /// The first object whose ln L_i is not finite at theta, explained.
    pub fn explain_first_bad_object(&self, theta: &[f64]) -> Option<(usize, String)> {
        let p = self.model.n_params();
        let mut form = KernelForm::default();
        if !self.model.kernel_form(theta, &mut form) {
            return None;
        }
        (0..self.n_obj()).find_map(|i| {
            let v = self.block(&form, p, (i, i + 1), None);
            (!v.is_finite()).then(|| {
                let comps = &self.comps[self.offsets[i]..self.offsets[i + 1]];
                let means: Vec<String> = comps
                    .iter()
                    .map(|c| crate::likelihood::importance::short(c[1]))
                    .collect();
                let why = format!(
                    "ln L_i = {v} (its mixture's means: {}){}",
                    means.join(", "),
                    if comps.iter().any(|c| c[1].abs() > 1e150) {
                        ": values this large overflow the density's arithmetic; rescale the data, e.g. to \
                         log10 units"
                    } else {
                        ""
                    }
                );
                (i, why)
            })
        })
    }

    fn evaluate(&self, theta: &[f64], grad: Option<&mut [f64]>) -> f64 {
        let p = self.model.n_params();
        let mut form = KernelForm::default();
        let fail = |grad: Option<&mut [f64]>| {
            if let Some(g) = grad {
                g.fill(0.0);
            }
            f64::NEG_INFINITY
        };
        if !self.model.kernel_form(theta, &mut form)
            || !form.c[..form.terms]
                .iter()
                .all(|c| c[2] < 0.0 && c.iter().all(|v| v.is_finite()))
        {
            return fail(grad);
        }
        sum_blocks(
            self.n_obj(),
            CLOSED_FORM_BLOCK,
            self.comps.len() >= 4 * CLOSED_FORM_BLOCK,
            p,
            grad,
            |blk, g| self.block(&form, p, blk, g),
        )
    }
}

/// L_i(theta) by Gauss–Legendre quadrature on nodes placed at each
/// evaluation: per component, its mean +- 7 sd cut to the fixed support and
/// completeness limit *and to the population's own range at theta*
/// (`integration_range`, which holds all but 1e-30 of its mass), split at
/// the population's breaks and a completeness table's knots. A population
/// much narrower than a component then still gets all the nodes (fixed
/// nodes would straddle it). The gradient is the weighted mean of
/// d ln f / d theta over the nodes: the range's ends move with theta, but
/// the integrand is negligible there.
pub struct GmmAdaptive {
    model: Population,
    selection: Selection,
    /// Per component: ln w, mean, sd; object i owns `offsets[i]..offsets[i+1]`.
    comps: Vec<[f64; 3]>,
    offsets: Vec<usize>,
    /// Gauss–Legendre nodes and weights on [-1, 1], and the weights' logs.
    rule: (Vec<f64>, Vec<f64>),
    ln_rule_weights: Vec<f64>,
    /// Fixed bounds: the support, raised to a completeness limit.
    lo: f64,
    hi: f64,
}

impl GmmAdaptive {
    pub fn new(
        mixtures: &ObjectMixtures,
        model: Population,
        selection: Selection,
        nodes: usize,
    ) -> Result<Self> {
        if nodes < 2 {
            return invalid!("gmm: need at least 2 quadrature nodes per component, got {nodes}");
        }
        if model.dim() != 1 {
            return invalid!("the gmm likelihood needs a one-dimensional population model");
        }
        let (mut lo, hi) = model.support().unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
        if let Selection::Limit(l) = selection {
            lo = lo.max(l);
        }
        let mut comps = Vec::new();
        let mut offsets = vec![0];
        for f in &mixtures.fits {
            let m = &f.mixture;
            for k in 0..m.n_components() {
                comps.push([m.weights[k].ln(), m.means[k], m.sds[k]]);
            }
            offsets.push(comps.len());
        }
        Ok(Self {
            model,
            selection,
            comps,
            offsets,
            ln_rule_weights: gauss_legendre(nodes).1.iter().map(|w| w.ln()).collect(),
            rule: gauss_legendre(nodes),
            lo,
            hi,
        })
    }

    fn n_obj(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Object i's nodes at theta: values and ln of their weights (mixture
    /// density x quadrature weight x P_det).
    #[allow(clippy::too_many_arguments)]
    fn nodes(
        &self,
        i: usize,
        range: (f64, f64),
        breaks: &[f64],
        cuts: &mut Vec<f64>,
        x: &mut Vec<f64>,
        ln_w: &mut Vec<f64>,
    ) {
        x.clear();
        ln_w.clear();
        let (t, ln_tw) = (&self.rule.0, &self.ln_rule_weights);
        let table: &[f64] = match &self.selection {
            Selection::Table { x, .. } => x,
            _ => &[],
        };
        for &[lw, m, s] in &self.comps[self.offsets[i]..self.offsets[i + 1]] {
            let a = (m - HALF_WIDTH_SD * s).max(self.lo).max(range.0);
            let b = (m + HALF_WIDTH_SD * s).min(self.hi).min(range.1);
            if a >= b || a.is_nan() || b.is_nan() {
                continue;
            }
            // ln w - ln s - ln sqrt(2 pi), once per component.
            let (c, inv_s) = (lw + crate::math::gmm::ln_normal(m, m, s), 1.0 / s);
            cuts.clear();
            cuts.push(a);
            cuts.extend(breaks.iter().chain(table).copied().filter(|&v| v > a && v < b));
            cuts.sort_by(f64::total_cmp);
            cuts.push(b);
            for k in 1..cuts.len() {
                let half = 0.5 * (cuts[k] - cuts[k - 1]);
                if half <= 0.0 {
                    continue;
                }
                let (mid, ln_half) = (0.5 * (cuts[k] + cuts[k - 1]), half.ln());
                for (tn, lwn) in t.iter().zip(ln_tw) {
                    let xn = mid + half * tn;
                    let p_det = self.selection.completeness(xn);
                    if p_det <= 0.0 {
                        continue;
                    }
                    let z = (xn - m) * inv_s;
                    let ln_det = if p_det == 1.0 { 0.0 } else { p_det.ln() };
                    x.push(xn);
                    ln_w.push(c - 0.5 * z * z + ln_half + lwn + ln_det);
                }
            }
        }
    }

    /// sum of ln L_i over objects [start, end), gradient into `grad`.
    fn block(&self, theta: &[f64], (start, end): (usize, usize), grad: Option<&mut [f64]>) -> f64 {
        let p = self.model.n_params();
        let (r_lo, r_hi, breaks) = self.model.integration_range(theta);
        let (mut x, mut ln_w, mut ln_p, mut g_all) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut cuts = Vec::new();
        let mut total = 0.0;
        let mut g = [0.0f64; MAX_PARAMS];
        let want = grad.is_some();
        for i in start..end {
            self.nodes(i, (r_lo, r_hi), &breaks, &mut cuts, &mut x, &mut ln_w);
            let n = x.len();
            if n == 0 {
                return f64::NEG_INFINITY;
            }
            ln_p.resize(n, 0.0);
            if want {
                g_all.resize(n * p, 0.0);
                self.model.ln_pdf_grad_batch(theta, &x, &mut ln_p, &mut g_all);
            } else {
                self.model.ln_pdf_batch(theta, &x, &mut ln_p);
            }
            let mut max = f64::NEG_INFINITY;
            for (lp, lw) in ln_p.iter_mut().zip(&ln_w) {
                *lp += lw;
                max = max.max(*lp);
            }
            if max == f64::NEG_INFINITY || max.is_nan() {
                return f64::NEG_INFINITY;
            }
            let mut sum = 0.0;
            for lp in ln_p.iter_mut() {
                *lp = (*lp - max).exp();
                sum += *lp;
            }
            total += max + sum.ln();
            if want {
                for (k, gk) in g.iter_mut().enumerate().take(p) {
                    let gs = &g_all[k * n..(k + 1) * n];
                    *gk += gs
                        .iter()
                        .zip(&ln_p)
                        .filter(|(_, w)| **w > 0.0)
                        .map(|(d, w)| d * w)
                        .sum::<f64>()
                        / sum;
                }
            }
        }
        if let Some(out) = grad {
            out[..p].copy_from_slice(&g[..p]);
        }
        total
    }

    fn evaluate(&self, theta: &[f64], grad: Option<&mut [f64]>) -> f64 {
        let p = self.model.n_params();
        let n = self.n_obj();
        sum_blocks(n, CLOSED_FORM_BLOCK / 4, n >= 256, p, grad, |blk, g| {
            self.block(theta, blk, g)
        })
    }

    /// The first object whose ln L_i is not finite at theta, explained.
    pub fn explain_first_bad_object(&self, theta: &[f64]) -> Option<(usize, String)> {
        (0..self.n_obj()).find_map(|i| {
            let v = self.block(theta, (i, i + 1), None);
            (!v.is_finite()).then(|| {
                let means: Vec<String> = self.comps[self.offsets[i]..self.offsets[i + 1]]
                    .iter()
                    .map(|c| crate::likelihood::importance::short(c[1]))
                    .collect();
                (
                    i,
                    format!(
                        "ln L_i = {v}: its mixture (means {}) has no mass where the population has \
                         (its support, the completeness limit and the population's range at theta)",
                        means.join(", ")
                    ),
                )
            })
        })
    }
}

/// sum over fixed blocks of `block_size` objects of `block(range, grad)`,
/// in parallel when `parallel`, added in block order (the same bits on any
/// number of threads); -inf (and a zero gradient) unless finite.
fn sum_blocks(
    n: usize,
    block_size: usize,
    parallel: bool,
    p: usize,
    grad: Option<&mut [f64]>,
    block: impl Fn((usize, usize), Option<&mut [f64]>) -> f64 + Sync,
) -> f64 {
    let blocks: Vec<(usize, usize)> = (0..n.div_ceil(block_size))
        .map(|b| (b * block_size, ((b + 1) * block_size).min(n)))
        .collect();
    let want = grad.is_some();
    let run = |&blk: &(usize, usize)| {
        let mut g = [0.0f64; MAX_PARAMS];
        let v = block(blk, want.then_some(&mut g[..p]));
        (v, g)
    };
    let parts: Vec<(f64, [f64; MAX_PARAMS])> = if parallel {
        blocks.par_iter().map(run).collect()
    } else {
        blocks.iter().map(run).collect()
    };
    let mut value = 0.0;
    let mut g = [0.0f64; MAX_PARAMS];
    for (v, gb) in &parts {
        value += v;
        for k in 0..p {
            g[k] += gb[k];
        }
    }
    let ok = value.is_finite();
    if let Some(out) = grad {
        if ok {
            out[..p].copy_from_slice(&g[..p]);
        } else {
            out[..p].fill(0.0);
        }
    }
    if ok { value } else { f64::NEG_INFINITY }
}

/// The gmm likelihoods' `HyperLikelihood`: their own `evaluate`.
macro_rules! gmm_hyper_likelihood {
    ($t:ty) => {
        impl HyperLikelihood for $t {
            fn param_names(&self) -> Vec<String> {
                self.model.param_names()
            }

            fn ln_likelihood(&self, theta: &[f64]) -> f64 {
                self.evaluate(theta, None)
            }

            fn ln_likelihood_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
                self.evaluate(theta, Some(grad))
            }
        }
    };
}

gmm_hyper_likelihood!(GmmClosedForm);
gmm_hyper_likelihood!(GmmAdaptive);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::likelihood::importance::ImportanceLikelihood;
    use crate::math::gmm::Mixture1;
    use crate::math::quadrature::integrate;
    use crate::model::gaussian::Gaussian;
    use crate::model::mixture::Mixture;
    use crate::model::schechter::{DoubleSchechter, Schechter};

    fn fit(weights: &[f64], means: &[f64], sds: &[f64], n_eff: f64) -> MixtureFit {
        MixtureFit {
            mixture: Mixture1 {
                weights: weights.to_vec(),
                means: means.to_vec(),
                sds: sds.to_vec(),
            },
            n_eff,
            ks_distance: 0.0,
            ks_p_value: 1.0,
        }
    }

    /// Objects with one to three components, narrow and wide, near and far.
    fn mixtures() -> ObjectMixtures {
        ObjectMixtures {
            fits: vec![
                fit(&[1.0], &[0.3], &[0.8], 100.0),
                fit(&[0.3, 0.7], &[-1.5, 0.9], &[0.2, 1.1], 60.0),
                fit(&[0.2, 0.5, 0.3], &[-2.0, 0.0, 3.0], &[0.5, 0.05, 1.5], 200.0),
                fit(&[1.0], &[4.0], &[1e-7], 50.0),
            ],
        }
    }

    /// sum_i ln integral f(x|theta) l~_i(x) dx by adaptive Gauss–Kronrod
    /// quadrature, split at each component's mean (an independent path).
    fn brute_force(model: &Population, mixtures: &ObjectMixtures, theta: &[f64], lo: f64, hi: f64) -> f64 {
        let mut ln_p = [0.0];
        mixtures
            .fits
            .iter()
            .map(|f| {
                let m = &f.mixture;
                let mut breaks: Vec<f64> = m.means.clone();
                breaks.sort_by(f64::total_cmp);
                let mut total = 0.0;
                // The delta-like component integrates to f at its mean.
                for k in 0..m.n_components() {
                    let (a, b) = (
                        (m.means[k] - 12.0 * m.sds[k]).max(lo),
                        (m.means[k] + 12.0 * m.sds[k]).min(hi),
                    );
                    let (v, _) = integrate(
                        &mut |x, out| {
                            model.ln_pdf_batch(theta, &[x], &mut ln_p);
                            out[0] = (ln_p[0] + crate::math::gmm::ln_normal(x, m.means[k], m.sds[k])).exp();
                        },
                        a,
                        b,
                        &[m.means[k]],
                        1,
                        1e-14,
                        0.0,
                    );
                    total += m.weights[k] * v[0];
                }
                total.ln()
            })
            .sum()
    }

    fn central_differences(like: &dyn HyperLikelihood, theta: &[f64]) {
        let mut g = vec![0.0; theta.len()];
        let v = like.ln_likelihood_grad(theta, &mut g);
        assert_eq!(v.to_bits(), like.ln_likelihood(theta).to_bits());
        for k in 0..theta.len() {
            let h = 1e-6 * theta[k].abs().max(0.1);
            let (mut a, mut b) = (theta.to_vec(), theta.to_vec());
            a[k] += h;
            b[k] -= h;
            let fd = (like.ln_likelihood(&a) - like.ln_likelihood(&b)) / (2.0 * h);
            assert!(
                (g[k] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                "theta {theta:?} k={k}: {} vs {fd}",
                g[k]
            );
        }
    }

    #[test]
    fn closed_form_equals_quadrature_and_its_gradient_central_differences() {
        let cases = [
            (Population::Gaussian(Gaussian), vec![0.2, 0.9]),
            (Population::Gaussian(Gaussian), vec![0.5, 0.3]),
            (Population::Gaussian(Gaussian), vec![1.0, 4.0]),
            (
                Population::Mixture(Mixture { k: 2 }),
                vec![-1.0, 1.5, 0.4, 1.2, 0.3],
            ),
        ];
        let mix = mixtures();
        for (model, theta) in &cases {
            let plain = GmmClosedForm::new(&mix, model.clone(), false).unwrap();
            let v = plain.ln_likelihood(theta);
            let reference = brute_force(model, &mix, theta, f64::NEG_INFINITY, f64::INFINITY);
            assert!(
                (v - reference).abs() < 1e-10 * reference.abs().max(1.0),
                "{theta:?}: {v} vs {reference}"
            );
            central_differences(&plain, theta);
            // The bias correction's gradient is its value's.
            let corrected = GmmClosedForm::new(&mix, model.clone(), true).unwrap();
            assert!(corrected.ln_likelihood(theta) != v);
            central_differences(&corrected, theta);
        }
        assert!(
            GmmClosedForm::new(
                &mix,
                Population::Schechter(Schechter {
                    lo: 8.0,
                    hi: 12.0,
                    amplitude: false
                }),
                false
            )
            .is_none()
        );
    }

    /// Nodes placed per evaluation follow a population far narrower than
    /// the components (theta_sigma = 0.01 against sds of 0.05-1.5): against
    /// adaptive quadrature to 1e-9, gradients to central differences, for a
    /// truncated normal, a log-normal and a Gaussian above a completeness
    /// limit; fixed nodes miss the narrow one by orders of magnitude more.
    #[test]
    fn adaptive_nodes_follow_a_narrow_population() {
        use crate::model::gaussian::{LogNormal, TruncatedNormal};
        let mix = ObjectMixtures {
            fits: vec![
                fit(&[1.0], &[1.3], &[0.8], 100.0),
                fit(&[0.3, 0.7], &[0.5, 1.9], &[0.2, 1.1], 60.0),
                fit(&[0.2, 0.5, 0.3], &[0.2, 1.0, 3.0], &[0.5, 0.05, 1.5], 200.0),
            ],
        };
        let cases = [
            (
                Population::TruncatedNormal(TruncatedNormal { lo: 0.0, hi: 5.0 }),
                Selection::None,
                vec![1.2, 0.01],
            ),
            (
                Population::TruncatedNormal(TruncatedNormal { lo: 0.0, hi: 5.0 }),
                Selection::None,
                vec![1.5, 0.7],
            ),
            (Population::LogNormal(LogNormal), Selection::None, vec![0.1, 0.02]),
            (
                Population::Gaussian(Gaussian),
                Selection::Limit(0.9),
                vec![1.0, 0.01],
            ),
            (
                Population::Gaussian(Gaussian),
                Selection::Limit(0.9),
                vec![1.0, 0.8],
            ),
        ];
        for (model, sel, theta) in &cases {
            let like = GmmAdaptive::new(&mix, model.clone(), sel.clone(), DEFAULT_NODES).unwrap();
            let v = like.ln_likelihood(theta);
            let lim = match sel {
                Selection::Limit(l) => *l,
                _ => f64::NEG_INFINITY,
            };
            let (lo, hi) = model.support().unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
            let reference = brute_force(model, &mix, theta, lo.max(lim), hi);
            assert!(
                (v - reference).abs() < 1e-9 * reference.abs().max(1.0),
                "{model:?} {theta:?}: {v} vs {reference}"
            );
            central_differences(&like, theta);
            if theta[1] < 0.05 && matches!(sel, Selection::None) {
                let (nodes, _, _) = mix.node_catalog(model.support(), sel, DEFAULT_NODES).unwrap();
                let fixed = ImportanceLikelihood::new(&nodes, model.clone())
                    .unwrap()
                    .without_normalisation()
                    .ln_likelihood(theta);
                assert!(
                    (fixed - reference).abs() > 1e3 * (v - reference).abs().max(1e-12),
                    "{fixed} vs {reference}"
                );
            }
        }
    }

    /// The node catalog's importance sum is the Gauss–Legendre quadrature of
    /// f P_det l~ over the support: against adaptive quadrature for the
    /// Schechter family with a completeness limit and with a table.
    #[test]
    fn quadrature_nodes_integrate_schechter_functions_with_selection() {
        let mix = ObjectMixtures {
            fits: vec![
                fit(&[1.0], &[10.2], &[0.15], 100.0),
                fit(&[0.6, 0.4], &[9.3, 10.9], &[0.3, 0.1], 100.0),
                // Mostly below the limit: only its upper tail counts.
                fit(&[1.0], &[9.0], &[0.2], 100.0),
                // Near the knee and the upper edge of the support.
                fit(&[1.0], &[11.6], &[0.25], 100.0),
            ],
        };
        let models = [
            (
                Population::Schechter(Schechter {
                    lo: 8.0,
                    hi: 12.0,
                    amplitude: false,
                }),
                vec![10.8, -1.3],
            ),
            (
                Population::DoubleSchechter(DoubleSchechter { lo: 8.0, hi: 12.0 }),
                vec![10.8, -0.3, -1.5, -2.4, -2.9],
            ),
        ];
        let selections = [
            (Selection::None, f64::NEG_INFINITY),
            (Selection::Limit(9.3), 9.3),
            (
                Selection::Table {
                    x: vec![9.0, 9.5, 10.0],
                    c: vec![0.0, 0.6, 1.0],
                },
                9.0,
            ),
        ];
        for (model, theta) in &models {
            for (sel, lim) in &selections {
                let (nodes, kept, left_out) = mix.node_catalog(model.support(), sel, DEFAULT_NODES).unwrap();
                assert_eq!((kept.len(), left_out.len()), (4, 0));
                let like = ImportanceLikelihood::new(&nodes, model.clone())
                    .unwrap()
                    .without_normalisation();
                let v = like.ln_likelihood(theta);
                // Reference: the integrand with P_det, split at the knots.
                let mut ln_p = [0.0];
                let reference: f64 = mix
                    .fits
                    .iter()
                    .map(|f| {
                        let m = &f.mixture;
                        let (v, _) = integrate(
                            &mut |x, out| {
                                model.ln_pdf_batch(theta, &[x], &mut ln_p);
                                out[0] = (ln_p[0] + m.ln_pdf(x)).exp() * sel.completeness(x);
                            },
                            lim.max(8.0),
                            12.0,
                            &[9.0, 9.5, 10.0, 9.3, 10.9],
                            1,
                            1e-14,
                            0.0,
                        );
                        v[0].ln()
                    })
                    .sum();
                assert!(
                    (v - reference).abs() < 1e-9 * reference.abs(),
                    "{sel:?}: {v} vs {reference}"
                );
            }
        }
    }
}
