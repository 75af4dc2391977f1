//! SVG line plots, written by hand.
//!
//! [`render_svg`] draws named [`Series`] of `(step, value)` points over steps: "nice" axis
//! ticks (1, 2 or 5 times a power of ten), a grid, a line per series in the Tableau 10
//! colours (a series keeps its colour by its index, so callers that pass series in a fixed
//! order, as [`crate::compare`] does with arms, get one colour per arm in every plot),
//! translucent bands (a range across seeds) under every line, dashed reference lines
//! ([`RefLine`]), point markers where a series is sparse, and a legend when there is more
//! than one entry. Every name is escaped for XML; a point's tooltip gives its step and value.

use std::fmt::Write as _;

use crate::format::fmt_number;

/// A named sequence of `(step, value)` points, with an optional shaded band.
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) points: Vec<(f64, f64)>,
    /// `(step, low, high)`: a translucent area in the series' colour, drawn under every
    /// line (e.g. the spread across seeds); empty for none.
    pub(crate) band: Vec<(f64, f64, f64)>,
}

/// A horizontal dashed line (a target or a baseline: Nash's 0, the uniform policy), in the
/// legend as `label`; a non-finite `y` is not drawn.
pub(crate) struct RefLine {
    pub(crate) label: String,
    pub(crate) y: f64,
}

/// Plot colours (Tableau 10).
const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// Axis ticks: the rounded range `[lo, hi]`, the tick values, and how many decimals to
/// print them with (`None`: use scientific notation).
struct Ticks {
    lo: f64,
    hi: f64,
    values: Vec<f64>,
    decimals: Option<usize>,
}

/// "Nice" ticks (steps of 1, 2 or 5 times a power of ten) covering `[lo, hi]`.
fn nice_ticks(mut lo: f64, mut hi: f64, target: usize, integer: bool) -> Ticks {
    if !(lo.is_finite() && hi.is_finite()) {
        lo = 0.0;
        hi = 1.0;
    }
    if hi < lo {
        std::mem::swap(&mut lo, &mut hi);
    }
    if hi - lo <= f64::EPSILON * lo.abs().max(hi.abs()).max(1e-300) {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= pad;
        hi += pad;
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mut exp = raw.log10().floor();
    let base = 10f64.powf(exp);
    let frac = raw / base;
    let mult = if frac <= 1.0 {
        1.0
    } else if frac <= 2.0 {
        2.0
    } else if frac <= 5.0 {
        5.0
    } else {
        exp += 1.0;
        1.0
    };
    let mut step = mult * 10f64.powf(exp);
    if integer && step < 1.0 {
        step = 1.0;
        exp = 0.0;
    }
    let first = (lo / step).floor();
    let last = (hi / step).ceil();
    let count = ((last - first) as usize).min(1000);
    let values: Vec<f64> = (0..=count).map(|k| (first + k as f64) * step).collect();
    let lo = first * step;
    let hi = lo + count as f64 * step;
    let magnitude = lo.abs().max(hi.abs());
    let decimals = if magnitude >= 1e6 || (exp < -4.0) {
        None
    } else {
        Some((-exp).max(0.0) as usize)
    };
    Ticks {
        lo,
        hi,
        values,
        decimals,
    }
}

/// A tick label: `decimals` fixed decimals (one count per axis, so labels line up), or
/// `{:.2e}` for `None`; never `-0`.
fn fmt_tick(v: f64, decimals: Option<usize>) -> String {
    let s = match decimals {
        Some(d) => format!("{v:.d$}"),
        None => {
            if v == 0.0 {
                "0".into()
            } else {
                format!("{v:.2e}")
            }
        }
    };
    // No "-0" or "-0.00".
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// `s` as XML text or attribute value.
fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Mean advance of a DejaVu Sans character (the font the PNGs render with, `png.rs`), in
/// ems: about 0.55 for lower case, 0.64 for digits, 0.70 for capitals; the estimates take the
/// wide end so that a fitted line is never wider than its room.
const REGULAR_EM: f64 = 0.64;
/// The same for DejaVu Sans Bold.
const BOLD_EM: f64 = 0.72;

/// The font size (from `max` down to `min`) at which `text` fits `room` units, and the text,
/// shortened with an ellipsis in the middle when it does not fit even at `min`.
fn fit_line(text: &str, room: f64, max: f64, min: f64, em: f64) -> (f64, String) {
    let chars = text.chars().count().max(1) as f64;
    let size = (room / (chars * em)).min(max);
    if size >= min {
        return (size, text.to_string());
    }
    let keep = ((room / (min * em)).floor() as usize)
        .saturating_sub(1)
        .max(2);
    let head: String = text.chars().take(keep / 2).collect();
    let tail: String = text
        .chars()
        .skip(chars as usize - (keep - keep / 2))
        .collect();
    (min, format!("{head}\u{2026}{tail}"))
}

/// The title's lines as `(baseline y, font size, text)`: one line at up to 16 units when it
/// fits `room` at 11 or more, else two lines split at the space nearest the middle.
pub(crate) fn fit_title(title: &str, room: f64) -> Vec<(f64, f64, String)> {
    let (size, line) = fit_line(title, room, 16.0, 11.0, BOLD_EM);
    if line == title {
        return vec![(24.0, size, line)];
    }
    let middle = title.len() / 2;
    let split = title
        .char_indices()
        .filter(|&(_, c)| c == ' ')
        .map(|(i, _)| i)
        .min_by_key(|&i| i.abs_diff(middle));
    let Some(split) = split else {
        return vec![(24.0, size, line)];
    };
    let (a, b) = (title[..split].trim(), title[split..].trim());
    let longer = if a.chars().count() >= b.chars().count() {
        a
    } else {
        b
    };
    let (size, _) = fit_line(longer, room, 13.0, 8.0, BOLD_EM);
    [(17.0, a), (33.0, b)]
        .into_iter()
        .map(|(y, t)| (y, size, fit_line(t, room, size, 8.0, BOLD_EM).1))
        .collect()
}

/// An SVG line plot of `series` over steps, with dashed horizontal `refs`. Points are
/// marked on a series that is missing on some of the `n_records` steps (or is short). A
/// series' band is a translucent polygon in its colour, drawn before every line.
pub(crate) fn render_svg(
    title: &str,
    y_label: &str,
    series: &[Series],
    refs: &[RefLine],
    n_records: usize,
) -> String {
    const W: f64 = 760.0;
    const H: f64 = 440.0;
    const LEFT: f64 = 80.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 56.0;
    let legend_entries: Vec<(&str, &str, bool)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), COLORS[i % COLORS.len()], false))
        .chain(refs.iter().map(|r| (r.label.as_str(), "#555555", true)))
        .collect();
    let legend = legend_entries.len() > 1;
    let legend_width = if legend {
        let chars = legend_entries
            .iter()
            .map(|(l, _, _)| l.chars().count())
            .max()
            .unwrap_or(0);
        (chars as f64 * 7.0 + 44.0).min(280.0)
    } else {
        0.0
    };
    let right = 24.0 + legend_width;
    let (x0, x1, y0, y1) = (LEFT, W - right, TOP, H - BOTTOM);

    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    let band_points = series
        .iter()
        .flat_map(|s| s.band.iter())
        .flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]);
    let mut integer_steps = true;
    for (x, y) in points.copied().chain(band_points) {
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
        integer_steps &= x.fract() == 0.0;
    }
    for r in refs {
        if r.y.is_finite() {
            ymin = ymin.min(r.y);
            ymax = ymax.max(r.y);
        }
    }
    let xt = nice_ticks(xmin, xmax, 8, integer_steps);
    let yt = nice_ticks(ymin, ymax, 6, false);
    let px = |x: f64| x0 + (x - xt.lo) / (xt.hi - xt.lo) * (x1 - x0);
    let py = |y: f64| y1 - (y - yt.lo) / (yt.hi - yt.lo) * (y1 - y0);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>"#
    );
    // The title, centred on the canvas, shrunk (and split in two lines) to fit its width.
    for (y, size, line) in fit_title(title, W - 24.0) {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{y:.1}" text-anchor="middle" font-size="{size:.1}" font-weight="bold">{}</text>"#,
            W / 2.0,
            escape_xml(&line)
        );
    }
    // Grid and tick labels.
    for &v in &yt.values {
        let y = py(v);
        let _ = writeln!(
            svg,
            "<line x1=\"{x0:.1}\" y1=\"{y:.1}\" x2=\"{x1:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/>"
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            x0 - 6.0,
            y + 4.0,
            fmt_tick(v, yt.decimals)
        );
    }
    for &v in &xt.values {
        let x = px(v);
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{y0:.1}\" x2=\"{x:.1}\" y2=\"{y1:.1}\" stroke=\"#e5e5e5\"/>"
        );
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            y1 + 18.0,
            fmt_tick(v, xt.decimals)
        );
    }
    // Axes and their labels.
    let _ = writeln!(
        svg,
        r#"<line x1="{x0:.1}" y1="{y1:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="black"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<line x1="{x0:.1}" y1="{y0:.1}" x2="{x0:.1}" y2="{y1:.1}" stroke="black"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">step</text>"#,
        (x0 + x1) / 2.0,
        H - 14.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{ym:.1}" text-anchor="middle" transform="rotate(-90 18 {ym:.1})">{}</text>"#,
        escape_xml(y_label),
        ym = (y0 + y1) / 2.0
    );
    // Reference lines.
    for r in refs.iter().filter(|r| r.y.is_finite()) {
        let y = py(r.y);
        let _ = writeln!(
            svg,
            "<line x1=\"{x0:.1}\" y1=\"{y:.1}\" x2=\"{x1:.1}\" y2=\"{y:.1}\" stroke=\"#555555\" stroke-width=\"1.2\" stroke-dasharray=\"6 4\"><title>{}</title></line>",
            escape_xml(&r.label)
        );
    }
    // Bands, under every line: the upper edge left to right, the lower edge back.
    for (i, s) in series
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.band.is_empty())
    {
        let color = COLORS[i % COLORS.len()];
        let upper = s.band.iter().map(|&(x, _, hi)| (x, hi));
        let lower = s.band.iter().rev().map(|&(x, lo, _)| (x, lo));
        let coords: Vec<String> = upper
            .chain(lower)
            .map(|(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polygon fill="{color}" fill-opacity="0.18" stroke="none" points="{}"><title>{} (range)</title></polygon>"#,
            coords.join(" "),
            escape_xml(&s.name)
        );
    }
    // Series.
    for (i, s) in series
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.points.is_empty())
    {
        let color = COLORS[i % COLORS.len()];
        let coords: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.8" stroke-linejoin="round" points="{}"><title>{}</title></polyline>"#,
            coords.join(" "),
            escape_xml(&s.name)
        );
        if s.points.len() < n_records || s.points.len() <= 25 {
            for &(x, y) in &s.points {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>step {}: {}</title></circle>"#,
                    px(x),
                    py(y),
                    fmt_number(x),
                    fmt_number(y)
                );
            }
        }
    }
    // Legend.
    if legend {
        let lx = x1 + 16.0;
        for (k, (label, color, dashed)) in legend_entries.iter().enumerate() {
            let ly = y0 + 10.0 + k as f64 * 18.0;
            let dash = if *dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = writeln!(
                svg,
                r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"{dash}/>"#,
                lx + 22.0
            );
            let (size, label) = fit_line(label, W - (lx + 28.0) - 6.0, 12.0, 7.0, REGULAR_EM);
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="{size:.1}">{}</text>"#,
                lx + 28.0,
                ly + 4.0,
                escape_xml(&label)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_are_polygons_under_the_lines_inside_the_y_range() {
        let series = [Series {
            name: "arm".into(),
            points: vec![(0.0, 0.5), (1.0, 0.5)],
            band: vec![(0.0, 0.25, 0.75), (1.0, -3.0, 9.0)],
        }];
        let svg = render_svg("t", "y", &series, &[], 2);
        assert_eq!(svg.matches("<polygon").count(), 1);
        assert!(svg.contains(r#"fill-opacity="0.18""#));
        assert!(svg.find("<polygon").unwrap() < svg.find("<polyline").unwrap());
        // The y axis reaches the band's extremes, not only the line's 0.5.
        assert!(svg.contains(">-4<") || svg.contains(">-3<"), "{svg}");
        assert!(svg.contains(">9<") || svg.contains(">10<"), "{svg}");
        // 4 corners: two upper then two lower.
        let start = svg.find("<polygon").unwrap();
        let rest = &svg[start..];
        let p = rest.find("points=\"").unwrap() + 8;
        let end = p + rest[p..].find('"').unwrap();
        assert_eq!(rest[p..end].split_whitespace().count(), 4);
        // A series without a band draws none.
        let plain = [Series {
            name: "x".into(),
            points: vec![(0.0, 1.0)],
            band: Vec::new(),
        }];
        assert!(!render_svg("t", "y", &plain, &[], 1).contains("<polygon"));
    }

    #[test]
    fn names_are_escaped_and_a_legend_needs_two_entries() {
        let series = [Series {
            name: "a<b & \"c\"".into(),
            points: vec![(0.0, 0.123456), (1.0, 2.0)],
            band: Vec::new(),
        }];
        let svg = render_svg("x < y", "y's", &series, &[], 2);
        assert!(svg.contains(">x &lt; y</text>"), "{svg}");
        assert!(svg.contains(">y&apos;s</text>"), "{svg}");
        assert!(
            svg.contains("<title>a&lt;b &amp; &quot;c&quot;</title>"),
            "{svg}"
        );
        assert!(svg.contains("<title>step 0: 0.1235</title>"), "{svg}");
        // One series, no reference line: no legend (its name is in the tooltip only).
        assert!(!svg.contains(r#"stroke-width="2""#), "{svg}");
        let refs = [RefLine {
            label: "target".into(),
            y: 1.0,
        }];
        let svg = render_svg("t", "y", &series, &refs, 2);
        assert!(svg.contains(">target</text>"), "{svg}");
        assert_eq!(svg.matches("stroke-dasharray").count(), 2, "{svg}");
        // A reference line that is not finite is in the legend but not drawn.
        let nan = [RefLine {
            label: "nan".into(),
            y: f64::NAN,
        }];
        let svg = render_svg("t", "y", &series, &nan, 2);
        assert_eq!(svg.matches("stroke-dasharray").count(), 1, "{svg}");
    }

    #[test]
    fn ticks_are_round() {
        let t = nice_ticks(0.0, 0.45, 6, false);
        assert_eq!(t.decimals, Some(1));
        assert!(t.lo <= 0.0 && t.hi >= 0.45);
        let labels: Vec<String> = t.values.iter().map(|&v| fmt_tick(v, t.decimals)).collect();
        assert_eq!(labels, ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5"]);
        let t = nice_ticks(0.0, 2.0, 8, true);
        assert!(t.values.iter().all(|v| v.fract() == 0.0));
        let t = nice_ticks(-0.3, 0.55, 6, false);
        assert!(t.values.iter().any(|&v| fmt_tick(v, t.decimals) == "0.0"));
        let t = nice_ticks(5.0, 5.0, 6, false);
        assert!(t.lo < 5.0 && t.hi > 5.0);
        let t = nice_ticks(1e-7, 3e-7, 6, false);
        assert_eq!(t.decimals, None);
        assert_eq!(fmt_tick(-0.0001, Some(2)), "0.00");
    }
}
