//! The sum of many objects' ln L_i, with one `ln` per many objects.

/// sum_i (m_i + ln s_i) with one `ln` per many objects: the s_i (sums of
/// weights scaled so the largest is at most 1) are multiplied until the
/// product leaves [1e-200, 1e200], then its log is taken.
#[derive(Default)]
pub(crate) struct LnSum {
    shifts: f64,
    log_of_products: f64,
    product: f64,
}

impl LnSum {
    #[inline(always)]
    pub(crate) fn add(&mut self, shift: f64, s: f64) {
        self.shifts += shift;
        // Every s is at least 1e-100 (the fused kernel's TINY_SUM; 1 for
        // the general kernel), so the product, kept in [1e-200, 1e200],
        // times s never underflows.
        self.product = if self.product == 0.0 { s } else { self.product * s };
        if !(1e-200..=1e200).contains(&self.product) {
            self.log_of_products += self.product.ln();
            self.product = 0.0;
        }
    }

    #[inline(always)]
    pub(crate) fn finish(self) -> f64 {
        let tail = if self.product == 0.0 {
            0.0
        } else {
            self.product.ln()
        };
        self.shifts + self.log_of_products + tail
    }
}
