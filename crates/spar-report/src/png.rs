//! PNG copies of the SVG plots, rendered by `resvg` with the DejaVu Sans fonts bundled in
//! `crates/spar-report/fonts/` (Bitstream Vera licence, `fonts/LICENSE-DejaVu.txt`): no
//! system font is read, so a plot renders to the same pixels on every machine, including one
//! with no fonts installed.

use std::path::Path;
use std::sync::Arc;

use resvg::{tiny_skia, usvg};
use spar_core::atomic::write_atomic;

use crate::error::{Error, Result};

const SANS: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const SANS_BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// The PNG is this many pixels per SVG unit (a 760 x 440 plot becomes 1520 x 880).
pub(crate) const SCALE: f32 = 2.0;

/// The options every plot is parsed with: the bundled fonts, `sans-serif` mapped to them.
fn options() -> usvg::Options<'static> {
    let mut db = usvg::fontdb::Database::new();
    db.load_font_data(SANS.to_vec());
    db.load_font_data(SANS_BOLD.to_vec());
    db.set_sans_serif_family("DejaVu Sans");
    usvg::Options {
        font_family: "DejaVu Sans".into(),
        fontdb: Arc::new(db),
        ..usvg::Options::default()
    }
}

/// `svg` rendered at [`SCALE`] on its own background.
pub(crate) fn render(what: &str, svg: &str) -> Result<tiny_skia::Pixmap> {
    let fail = |reason: String| Error::Render {
        what: what.to_string(),
        reason,
    };
    let tree = usvg::Tree::from_str(svg, &options()).map_err(|e| fail(e.to_string()))?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(SCALE)
        .ok_or_else(|| fail("empty size".into()))?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| fail("empty size".into()))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(SCALE, SCALE),
        &mut pixmap.as_mut(),
    );
    Ok(pixmap)
}

/// Writes `svg` to `path` (`.svg`) and its PNG rendering beside it (`.png`), atomically.
pub(crate) fn write_plot(path: &Path, svg: &str) -> Result<()> {
    write_atomic(path, svg.as_bytes())?;
    let what = path.display().to_string();
    let png = render(&what, svg)?
        .encode_png()
        .map_err(|e| Error::Render {
            what: what.clone(),
            reason: e.to_string(),
        })?;
    write_atomic(&path.with_extension("png"), &png)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svg::{render_svg, Series};

    /// The columns of the pixels darker than `level` in every channel (text is black; the
    /// series colours are lighter), in rows `rows`.
    fn dark_columns(p: &tiny_skia::Pixmap, rows: std::ops::Range<u32>, level: u8) -> Vec<u32> {
        let mut out = Vec::new();
        for y in rows {
            for x in 0..p.width() {
                let c = p.pixel(x, y).unwrap().demultiply();
                if c.alpha() == 255 && c.red() < level && c.green() < level && c.blue() < level {
                    out.push(x);
                }
            }
        }
        out
    }

    #[test]
    fn long_titles_and_legends_render_inside_the_canvas_with_the_bundled_fonts() {
        let series: Vec<Series> = ["a very long arm name that goes on and on (n=3)", "b (n=3)"]
            .iter()
            .enumerate()
            .map(|(i, name)| Series {
                name: name.to_string(),
                points: vec![(0.0, i as f64), (10.0, 1.0 + i as f64)],
                band: Vec::new(),
            })
            .collect();
        let title =
            "Kuhn Poker: SPIRAL self-play against a fixed opponent with the role-conditioned \
                     advantage estimator: eval/kuhn/exploitability (mean of runs; band: min..max)";
        let svg = render_svg(title, "exploitability", &series, &[], 2);
        let p = render("test", &svg).unwrap();
        assert_eq!((p.width(), p.height()), (1520, 880));
        // The title band (above the plot, 40 units): text drawn, none of it at an edge.
        let title_px = dark_columns(&p, 0..(38.0 * SCALE) as u32, 60);
        assert!(title_px.len() > 500, "{} dark title pixels", title_px.len());
        let (lo, hi) = (
            title_px.iter().min().unwrap(),
            title_px.iter().max().unwrap(),
        );
        assert!(*lo > 4 && *hi < p.width() - 5, "title spans {lo}..{hi}");
        // Nothing dark touches the right edge: the legend's long label fits.
        let all = dark_columns(&p, 0..p.height(), 60);
        assert!(*all.iter().max().unwrap() < p.width() - 5);
        // And a short title stays one bold 16-unit line.
        assert_eq!(
            crate::svg::fit_title("Kuhn", 736.0),
            vec![(24.0, 16.0, "Kuhn".to_string())]
        );
    }

    #[test]
    fn write_plot_writes_the_svg_and_a_png_beside_it() {
        let dir = std::env::temp_dir().join(format!("spar-png-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let svg = render_svg("t", "y", &[], &[], 0);
        write_plot(&dir.join("loss.svg"), &svg).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("loss.svg")).unwrap(), svg);
        let png = std::fs::read(dir.join("loss.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
