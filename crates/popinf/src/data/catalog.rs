//! Per-object data: posterior samples with their interim prior, or Gaussian
//! measurements.
//!
//! Samples are stored contiguously (one flat buffer plus offsets) because the
//! importance-sampled likelihood streams through every sample at every
//! evaluation; ragged `Vec<Vec<f64>>` would scatter them over the heap.

use crate::error::Result;
use crate::invalid;

/// Posterior samples of every object, drawn under an interim prior.
///
/// Object `i` owns samples `offsets[i]..offsets[i + 1]`; sample `j` has the
/// `dim` values `values[j * dim..(j + 1) * dim]` and the log interim prior
/// density `ln_interim_prior[j]` — or one value for all samples when the
/// interim prior is flat, which saves a column as large as the samples.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleCatalog {
    dim: usize,
    values: Vec<f64>,
    /// Per-sample ln pi; empty when `flat_ln_prior` is set.
    ln_interim_prior: Vec<f64>,
    flat_ln_prior: Option<f64>,
    offsets: Vec<usize>,
    /// Per object, the interim prior's value when it is the same at every
    /// sample (a flat interim prior, the usual case): the likelihood then
    /// skips reading the per-sample column, halving its memory traffic.
    constant_ln_prior: Vec<Option<f64>>,
}

/// How ln pi is given.
enum InterimPrior {
    PerSample(Vec<f64>),
    Flat(f64),
}

/// One object's samples, borrowed from a [`SampleCatalog`].
#[derive(Debug, Clone, Copy)]
pub struct ObjectSamples<'a> {
    /// `n_samples * dim` values, sample-major.
    pub values: &'a [f64],
    /// ln of the interim prior at each sample; empty when the catalog's
    /// interim prior is flat (then `constant_ln_interim_prior` holds it).
    pub ln_interim_prior: &'a [f64],
    /// `Some(c)` when ln pi is c at every sample of this object.
    pub constant_ln_interim_prior: Option<f64>,
    n_samples: usize,
}

impl ObjectSamples<'_> {
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    /// ln pi at sample `j`.
    pub fn ln_prior(&self, j: usize) -> f64 {
        self.constant_ln_interim_prior
            .unwrap_or_else(|| self.ln_interim_prior[j])
    }
}

impl SampleCatalog {
    /// Builds and validates a catalog from its flat storage.
    ///
    /// `offsets` has one entry per object plus one, starting at 0 and ending
    /// at the number of samples. Every object needs at least one sample and
    /// every value and interim-prior density must be finite.
    pub fn new(
        dim: usize,
        values: Vec<f64>,
        ln_interim_prior: Vec<f64>,
        offsets: Vec<usize>,
    ) -> Result<Self> {
        Self::build(dim, values, InterimPrior::PerSample(ln_interim_prior), offsets)
    }

    /// As [`new`](Self::new) for a flat interim prior: ln pi = `ln_prior` at
    /// every sample, stored once.
    pub fn with_flat_prior(dim: usize, values: Vec<f64>, ln_prior: f64, offsets: Vec<usize>) -> Result<Self> {
        Self::build(dim, values, InterimPrior::Flat(ln_prior), offsets)
    }

    fn build(dim: usize, values: Vec<f64>, prior: InterimPrior, offsets: Vec<usize>) -> Result<Self> {
        if dim == 0 {
            return invalid!("sample catalog: dimension must be at least 1, got 0");
        }
        if offsets.len() < 2 {
            return invalid!("sample catalog: no objects (need at least one)");
        }
        if offsets[0] != 0 {
            return invalid!("sample catalog: offsets must start at 0, got {}", offsets[0]);
        }
        let n_total = *offsets.last().expect("checked non-empty");
        let (ln_interim_prior, flat_ln_prior) = match prior {
            InterimPrior::PerSample(lp) => {
                if lp.len() != n_total {
                    return invalid!(
                        "sample catalog: {} interim-prior values for {} samples (they must match)",
                        lp.len(),
                        n_total
                    );
                }
                (lp, None)
            }
            InterimPrior::Flat(c) => {
                if !c.is_finite() {
                    return invalid!("sample catalog: flat ln interim prior {c} is not finite");
                }
                (Vec::new(), Some(c))
            }
        };
        if values.len() != n_total * dim {
            return invalid!(
                "sample catalog: {} values for {} samples of dimension {} (expected {})",
                values.len(),
                n_total,
                dim,
                n_total * dim
            );
        }
        for (i, w) in offsets.windows(2).enumerate() {
            if w[1] < w[0] {
                return invalid!("sample catalog: offsets decrease at object {i}");
            }
            if w[1] == w[0] {
                return invalid!("sample catalog: object {i} has no samples");
            }
            for j in w[0]..w[1] {
                for k in 0..dim {
                    let v = values[j * dim + k];
                    if !v.is_finite() {
                        return invalid!(
                            "sample catalog: object {i}, sample {}, component {k}: value {v} is not finite",
                            j - w[0]
                        );
                    }
                }
                let lp = flat_ln_prior.unwrap_or_else(|| ln_interim_prior[j]);
                if !lp.is_finite() {
                    return invalid!(
                        "sample catalog: object {i}, sample {}: ln interim prior {lp} is not finite \
                         (a sample outside the interim prior's support cannot come from that posterior)",
                        j - w[0]
                    );
                }
            }
        }
        let constant_ln_prior = offsets
            .windows(2)
            .map(|w| match flat_ln_prior {
                Some(c) => Some(c),
                None => {
                    let lp = &ln_interim_prior[w[0]..w[1]];
                    lp.iter().all(|&v| v == lp[0]).then_some(lp[0])
                }
            })
            .collect();
        Ok(Self {
            dim,
            values,
            ln_interim_prior,
            flat_ln_prior,
            offsets,
            constant_ln_prior,
        })
    }

    /// Builds a one-dimensional catalog from one vector of samples per object.
    /// `ln_interim_prior` gives ln pi for every sample; `None` means a flat
    /// interim prior (ln pi = 0, which only shifts ln L by a constant).
    pub fn from_objects(samples: &[Vec<f64>], ln_interim_prior: Option<&[Vec<f64>]>) -> Result<Self> {
        if let Some(lp) = ln_interim_prior {
            if lp.len() != samples.len() {
                return invalid!(
                    "sample catalog: {} objects have samples but {} have interim-prior values",
                    samples.len(),
                    lp.len()
                );
            }
            for (i, (s, p)) in samples.iter().zip(lp).enumerate() {
                if s.len() != p.len() {
                    return invalid!(
                        "sample catalog: object {i} has {} samples but {} interim-prior values",
                        s.len(),
                        p.len()
                    );
                }
            }
        }
        let mut offsets = Vec::with_capacity(samples.len() + 1);
        offsets.push(0);
        let mut values = Vec::new();
        for s in samples {
            values.extend_from_slice(s);
            offsets.push(values.len());
        }
        match ln_interim_prior {
            Some(lp) => Self::new(1, values, lp.iter().flatten().copied().collect(), offsets),
            None => Self::with_flat_prior(1, values, 0.0, offsets),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn n_obj(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn total_samples(&self) -> usize {
        self.values.len() / self.dim
    }

    pub fn n_samples(&self, i: usize) -> usize {
        self.offsets[i + 1] - self.offsets[i]
    }

    /// All samples' values, sample-major (`dim` per sample).
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// ln interim prior of samples `a..b`, or `None` when it is flat (see
    /// [`flat_ln_prior`](Self::flat_ln_prior)).
    pub fn ln_interim_prior_range(&self, a: usize, b: usize) -> Option<&[f64]> {
        match self.flat_ln_prior {
            Some(_) => None,
            None => Some(&self.ln_interim_prior[a..b]),
        }
    }

    /// The single ln pi of a flat interim prior.
    pub fn flat_ln_prior(&self) -> Option<f64> {
        self.flat_ln_prior
    }

    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    pub fn object(&self, i: usize) -> ObjectSamples<'_> {
        let (a, b) = (self.offsets[i], self.offsets[i + 1]);
        ObjectSamples {
            values: &self.values[a * self.dim..b * self.dim],
            ln_interim_prior: if self.flat_ln_prior.is_some() {
                &[]
            } else {
                &self.ln_interim_prior[a..b]
            },
            constant_ln_interim_prior: self.constant_ln_prior[i],
            n_samples: b - a,
        }
    }

    /// The catalog with each sample's weight multiplied by the detection
    /// probability P_det(mu) (a completeness limit or table on the true
    /// values): ln pi becomes ln pi - ln P_det. A sample the survey could
    /// not have detected gets ln pi + 1e10, i.e. weight exp(-1e10) = 0.
    /// Returns the objects none of whose samples is detectable.
    pub fn with_detection(&self, p_det: impl Fn(&[f64]) -> f64) -> Result<(Self, Vec<usize>)> {
        const UNDETECTABLE: f64 = 1e10;
        let n_total = self.total_samples();
        let mut ln_prior = Vec::with_capacity(n_total);
        let mut hopeless = Vec::new();
        for i in 0..self.n_obj() {
            let obj = self.object(i);
            let mut any = false;
            for j in 0..obj.n_samples() {
                let c = p_det(&obj.values[j * self.dim..(j + 1) * self.dim]);
                if !(0.0..=1.0).contains(&c) {
                    return invalid!("object {i}, sample {j}: detection probability {c} is outside [0, 1]");
                }
                any |= c > 0.0;
                ln_prior.push(obj.ln_prior(j) - if c > 0.0 { c.ln() } else { -UNDETECTABLE });
            }
            if !any {
                hopeless.push(i);
            }
        }
        Ok((
            Self::new(self.dim, self.values.clone(), ln_prior, self.offsets.clone())?,
            hopeless,
        ))
    }

    /// A warning when the catalog looks transposed (samples x objects read
    /// as objects x samples): more samples per object than objects, and
    /// every object's samples spread alike -- the objects' medians no more
    /// spread than sampling noise would spread the medians of identical
    /// objects -- as when each "object" is one draw of every real object.
    pub fn looks_transposed(&self) -> Option<String> {
        let n = self.n_obj();
        let s_min = (0..n).map(|i| self.n_samples(i)).min()?;
        if n < 2 || s_min <= n || self.dim != 1 {
            return None;
        }
        let mut medians = Vec::with_capacity(n);
        let mut widths = Vec::with_capacity(n);
        let mut scratch = Vec::new();
        for i in 0..n {
            scratch.clear();
            scratch.extend_from_slice(self.object(i).values);
            scratch.sort_by(f64::total_cmp);
            medians.push(crate::math::stats::quantile_sorted(&scratch, 0.5));
            widths.push(
                crate::math::stats::quantile_sorted(&scratch, 0.84)
                    - crate::math::stats::quantile_sorted(&scratch, 0.16),
            );
        }
        medians.sort_by(f64::total_cmp);
        let spread = crate::math::stats::quantile_sorted(&medians, 0.84)
            - crate::math::stats::quantile_sorted(&medians, 0.16);
        let width = crate::math::stats::median_in_place(&mut widths);
        // Identical objects' medians spread by ~1.25 / sqrt(S) of their width
        // (68% ranges of a median of S draws): flag up to three times that.
        let tolerance = (3.75 / (s_min as f64).sqrt()).max(0.1);
        (width > 0.0 && spread < tolerance * width).then(|| {
            format!(
                "the catalog has {n} objects with {s_min}+ samples each, and every object's samples look alike \
                 (their medians spread over {spread:.3}, a small part of each object's width {width:.3}): are \
                 objects and samples swapped? An array of shape (samples, objects) must be transposed to \
                 (objects, samples)"
            )
        })
    }

    /// The objects whose index `keep` says, in order.
    pub fn subset(&self, keep: &[usize]) -> Result<Self> {
        let mut values = Vec::new();
        let mut ln_prior = Vec::new();
        let mut offsets = vec![0];
        for &i in keep {
            let obj = self.object(i);
            values.extend_from_slice(obj.values);
            for j in 0..obj.n_samples() {
                ln_prior.push(obj.ln_prior(j));
            }
            offsets.push(offsets.last().unwrap() + obj.n_samples());
        }
        match self.flat_ln_prior {
            Some(c) => Self::with_flat_prior(self.dim, values, c, offsets),
            None => Self::new(self.dim, values, ln_prior, offsets),
        }
    }

    /// Per-object, per-component medians: the point estimates the naive
    /// method treats as truth. Returned as a catalog with one sample per
    /// object and a flat interim prior, so that the importance-sampled
    /// likelihood of it is exactly sum_i ln p(median_i | theta).
    pub fn medians(&self) -> Self {
        let mut values = Vec::with_capacity(self.n_obj() * self.dim);
        let mut scratch = Vec::new();
        for i in 0..self.n_obj() {
            let obj = self.object(i);
            for k in 0..self.dim {
                scratch.clear();
                scratch.extend(obj.values.iter().skip(k).step_by(self.dim));
                values.push(crate::math::stats::median_in_place(&mut scratch));
            }
        }
        let n = self.n_obj();
        Self {
            dim: self.dim,
            values,
            ln_interim_prior: Vec::new(),
            flat_ln_prior: Some(0.0),
            offsets: (0..=n).collect(),
            constant_ln_prior: vec![Some(0.0); n],
        }
    }
}

/// Gaussian measurements x_i ~ N(mu_i, sigma_i) of each object's true value.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurements {
    x: Vec<f64>,
    sigma: Vec<f64>,
}

impl Measurements {
    /// Validates that every x is finite and every sigma finite and positive.
    pub fn new(x: Vec<f64>, sigma: Vec<f64>) -> Result<Self> {
        if x.len() != sigma.len() {
            return invalid!(
                "measurements: {} values of x but {} of sigma (they must match)",
                x.len(),
                sigma.len()
            );
        }
        if x.is_empty() {
            return invalid!("measurements: no objects (need at least one)");
        }
        for (i, (&xi, &si)) in x.iter().zip(&sigma).enumerate() {
            if !xi.is_finite() {
                return invalid!("measurements: object {i}: x = {xi} is not finite");
            }
            if !(si.is_finite() && si > 0.0) {
                return invalid!("measurements: object {i}: sigma = {si} must be finite and positive");
            }
        }
        Ok(Self { x, sigma })
    }

    pub fn n_obj(&self) -> usize {
        self.x.len()
    }

    pub fn x(&self) -> &[f64] {
        &self.x
    }

    pub fn sigma(&self) -> &[f64] {
        &self.sigma
    }
}

#[cfg(test)]
mod tests {

    /// 80 objects x 50 samples of N(mu_i, 1), mu_i ~ N(0, 1): as given,
    /// no warning; transposed (50 "objects" of one draw of every object),
    /// the warning that asks whether the axes are swapped.
    #[test]
    fn a_transposed_catalog_is_flagged() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(4);
        let (n, s) = (80, 50);
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                let mu: f64 = StandardNormal.sample(&mut rng);
                (0..s)
                    .map(|_| {
                        let e: f64 = StandardNormal.sample(&mut rng);
                        mu + e
                    })
                    .collect()
            })
            .collect();
        let fine = SampleCatalog::from_objects(&rows, None).unwrap();
        assert!(fine.looks_transposed().is_none());
        let columns: Vec<Vec<f64>> = (0..s).map(|j| rows.iter().map(|r| r[j]).collect()).collect();
        let swapped = SampleCatalog::from_objects(&columns, None).unwrap();
        assert!(swapped.looks_transposed().unwrap().contains("swapped"));
    }

    use super::*;

    #[test]
    fn ragged_catalog_round_trips() {
        let cat = SampleCatalog::from_objects(&[vec![1.0, 2.0, 3.0], vec![5.0]], None).unwrap();
        assert_eq!(cat.n_obj(), 2);
        assert_eq!(cat.total_samples(), 4);
        assert_eq!(cat.object(0).values, &[1.0, 2.0, 3.0]);
        assert_eq!(cat.object(1).values, &[5.0]);
        assert_eq!(cat.n_samples(1), 1);
    }

    #[test]
    fn errors_name_object_and_sample() {
        let err = SampleCatalog::from_objects(&[vec![1.0], vec![0.0, f64::NAN]], None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("object 1") && msg.contains("sample 1") && msg.contains("NaN"),
            "{msg}"
        );

        let err = SampleCatalog::from_objects(&[vec![1.0], vec![]], None).unwrap_err();
        assert!(err.to_string().contains("object 1 has no samples"), "{err}");

        let err = SampleCatalog::from_objects(&[vec![1.0, 2.0]], Some(&[vec![0.0]])).unwrap_err();
        assert!(err.to_string().contains("object 0 has 2 samples but 1"), "{err}");

        let err =
            SampleCatalog::new(1, vec![1.0, 2.0], vec![0.0, f64::NEG_INFINITY], vec![0, 2]).unwrap_err();
        assert!(
            err.to_string()
                .contains("object 0, sample 1: ln interim prior -inf"),
            "{err}"
        );

        let err = SampleCatalog::new(2, vec![1.0, 2.0, 3.0], vec![0.0, 0.0], vec![0, 2]).unwrap_err();
        assert!(err.to_string().contains("expected 4"), "{err}");
    }

    #[test]
    fn medians_per_object_and_component() {
        // Two objects in 2-D: medians taken component-wise.
        let cat = SampleCatalog::new(
            2,
            vec![1.0, 10.0, 3.0, 30.0, 2.0, 20.0, 7.0, -1.0, 9.0, -3.0],
            vec![0.0; 5],
            vec![0, 3, 5],
        )
        .unwrap();
        let med = cat.medians();
        assert_eq!(med.n_obj(), 2);
        assert_eq!(med.object(0).values, &[2.0, 20.0]);
        assert_eq!(med.object(1).values, &[8.0, -2.0]);
    }

    #[test]
    fn measurements_validate_sigma() {
        let err = Measurements::new(vec![0.0, 1.0], vec![1.0, -1.0]).unwrap_err();
        assert!(err.to_string().contains("object 1: sigma = -1"), "{err}");
        assert!(Measurements::new(vec![0.0], vec![1.0, 2.0]).is_err());
    }
}
