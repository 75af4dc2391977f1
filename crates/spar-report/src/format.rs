//! How numbers read in reports: one format for every table cell, legend and tooltip.
//!
//! Axis ticks are the exception: they share one number of decimals per axis
//! ([`crate::svg`]).

/// A number for people: integers in full (up to 10^15, where `f64` still holds every
/// integer), other values to 4 significant digits with trailing zeros dropped, and values
/// below 10^-4 or from 10^6 up in exponent form (`1.5e-7`, `2.346e6`). Zero is `0`,
/// whatever its sign; NaN and infinities print as Rust does (`NaN`, `inf`, `-inf`).
///
/// So `0.42274013317385933` reads `0.4227`, `0.20000000000000004` reads `0.2`, `12345.6`
/// reads `12346` (a value of 10^3 to 10^6 keeps its integer digits) and `64.0` reads `64`.
pub fn fmt_number(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&magnitude) {
        // `{:.3e}` prints `1.500e-7`: drop the mantissa's trailing zeros.
        let s = format!("{v:.3e}");
        let (mantissa, exponent) = s.split_once('e').expect("`{:e}` writes an `e`");
        return format!("{}e{exponent}", trim_zeros(mantissa));
    }
    let decimals = (3 - magnitude).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}")).to_string()
}

/// `mean ± std` at the precision the spread allows: the std to two significant digits and the
/// mean to the same decimal place (`0.09766 ± 0.0203` reads `0.098 ± 0.020`); a zero or
/// non-finite std leaves both as [`fmt_number`] writes them, and so does a spread of 10^6 or
/// more or below 10^-6 (exponent form).
pub(crate) fn fmt_mean_std(mean: f64, std: f64) -> String {
    if !(std.is_finite() && mean.is_finite()) || std <= 0.0 || !(1e-6..1e6).contains(&std) {
        return format!("{} ± {}", fmt_number(mean), fmt_number(std));
    }
    // Two significant digits of the std: its leading digit's place, plus one.
    let decimals = (1 - std.log10().floor() as i32).max(0) as usize;
    format!("{mean:.decimals$} ± {std:.decimals$}")
}

/// `s` without trailing zeros after a decimal point (and without the point if nothing
/// follows it).
fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A duration for people: `42s`, `3m 07s`, `2h 05m 09s` (rounded to seconds; negative is
/// `0s`).
pub(crate) fn fmt_duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_spread_read_at_the_spreads_precision() {
        assert_eq!(fmt_mean_std(0.09766, 0.0203), "0.098 ± 0.020");
        assert_eq!(fmt_mean_std(0.2, 0.1), "0.20 ± 0.10");
        assert_eq!(fmt_mean_std(0.36667, 0.033333), "0.367 ± 0.033");
        assert_eq!(fmt_mean_std(1234.4, 56.7), "1234 ± 57");
        assert_eq!(fmt_mean_std(0.5, 0.0), "0.5 ± 0");
        assert_eq!(fmt_mean_std(0.5, f64::NAN), "0.5 ± NaN");
    }

    #[test]
    fn numbers_read_at_four_significant_digits() {
        // The cell a review found unreadable.
        assert_eq!(fmt_number(0.42274013317385933), "0.4227");
        // Floating-point noise disappears.
        assert_eq!(fmt_number(0.20000000000000004), "0.2");
        assert_eq!(fmt_number(0.09999999999999998), "0.1");
        assert_eq!(fmt_number(1.0 / 3.0), "0.3333");
        assert_eq!(fmt_number(-1.23456), "-1.235");
        assert_eq!(fmt_number(0.0625), "0.0625");
        // 1e-4 is the smallest in positional form: 0.0001234 rounds to 4 digits.
        assert_eq!(fmt_number(0.00012344), "0.0001234");
        assert_eq!(fmt_number(12345.6), "12346");
        assert_eq!(fmt_number(999.96), "1000");
        // Integers in full, however many digits.
        assert_eq!(fmt_number(64.0), "64");
        assert_eq!(fmt_number(-3.0), "-3");
        assert_eq!(fmt_number(1234567.0), "1234567");
        // Exponent form: tiny, and large non-integers; trailing zeros dropped.
        assert_eq!(fmt_number(1.5e-7), "1.5e-7");
        assert_eq!(fmt_number(-2.0e-5), "-2e-5");
        assert_eq!(fmt_number(0.000099996), "1e-4");
        assert_eq!(fmt_number(2345678.9), "2.346e6");
        assert_eq!(fmt_number(1e20), "1e20");
        assert_eq!(fmt_number(0.0), "0");
        assert_eq!(fmt_number(-0.0), "0");
        assert_eq!(fmt_number(f64::NAN), "NaN");
        assert_eq!(fmt_number(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(52.0), "52s");
        assert_eq!(fmt_duration(187.4), "3m 07s");
        assert_eq!(fmt_duration(7509.0), "2h 05m 09s");
        assert_eq!(fmt_duration(-5.0), "0s");
    }
}
