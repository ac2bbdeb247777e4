//! The one statistic the side-by-side comparisons report: the median of some runs (robust
//! to the odd run a noisy machine spoils, where a mean is not).

/// The median of `values` (the upper one of the middle two for an even count); `values`
/// must not be empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    assert!(!values.is_empty(), "the median of no runs");
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
