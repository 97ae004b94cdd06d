//! Small descriptive statistics shared by the summaries.

/// Linear-interpolation quantile of sorted data (numpy's default, "type 7").
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "quantile of no data");
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Where, in a cell of width h whose density runs linearly from f0 to f1,
/// the cumulative mass reaches `need`: the root t in [0, h] of
/// f0 t + (f1 - f0) t^2 / (2h) = need (the form that avoids cancellation
/// when the slope is small). Inverts a piecewise-linear density's CDF.
pub fn invert_linear_cell(f0: f64, f1: f64, h: f64, need: f64) -> f64 {
    let a = 0.5 * (f1 - f0) / h;
    let t = if need <= 0.0 {
        0.0
    } else if a.abs() < 1e-300 {
        if f0 > 0.0 { need / f0 } else { 0.0 }
    } else {
        2.0 * need / (f0 + (f0 * f0 + 4.0 * a * need).max(0.0).sqrt())
    };
    t.clamp(0.0, h)
}

/// Median; reorders `data`.
pub fn median_in_place(data: &mut [f64]) -> f64 {
    data.sort_unstable_by(f64::total_cmp);
    quantile_sorted(data, 0.5)
}

/// Mean and sample standard deviation (n - 1 denominator).
pub fn mean_sd(data: &[f64]) -> (f64, f64) {
    let n = data.len() as f64;
    let mean = data.iter().sum::<f64>() / n;
    let var = data.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy() {
        // numpy.quantile([3, 1, 4, 1, 5], [0.05, 0.5, 0.95]) = [1.0, 3.0, 4.8]
        let mut v = vec![3.0, 1.0, 4.0, 1.0, 5.0];
        v.sort_by(f64::total_cmp);
        assert_eq!(quantile_sorted(&v, 0.05), 1.0);
        assert_eq!(quantile_sorted(&v, 0.5), 3.0);
        assert!((quantile_sorted(&v, 0.95) - 4.8).abs() < 1e-12);
    }
}
