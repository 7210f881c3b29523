//! One benchmark chart (a `plots` entry of a bench's JSON) drawn as a PNG: named lines of
//! (x, y) points over labelled linear axes, y from zero.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, anyhow, bail};
use plotters::prelude::*;
use serde_json::Value;

/// Where Debian's fonts-dejavu-core puts the font the charts are lettered in (plotters draws
/// text with ab_glyph from a font file; no fontconfig is needed).
const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

const SIZE: (u32, u32) = (960, 540);

fn register_font() -> anyhow::Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let bytes = FONT_PATHS
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .ok_or_else(|| {
                format!("no font at {FONT_PATHS:?}: apt-get install fonts-dejavu-core")
            })?;
        // plotters keeps fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| "the font file does not parse".to_string())
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

type Series = (String, Vec<(f64, f64)>);

fn series(plot: &Value) -> anyhow::Result<Vec<Series>> {
    let mut out = Vec::new();
    for line in plot["lines"].as_array().into_iter().flatten() {
        let label = line["label"].as_str().unwrap_or("").to_string();
        let mut points = Vec::new();
        for p in line["points"].as_array().into_iter().flatten() {
            // A figure that could not be measured is written as null (NaN): a gap.
            match (p[0].as_f64(), p[1].as_f64()) {
                (Some(x), Some(y)) => points.push((x, y)),
                _ if p[0].is_null() || p[1].is_null() => {}
                _ => bail!("line `{label}`: a point is not two numbers: {p}"),
            }
        }
        out.push((label, points));
    }
    if out.iter().all(|(_, p)| p.is_empty()) {
        bail!("the chart has no points");
    }
    Ok(out)
}

/// The axis range over `values`, padded so no point sits on the frame.
fn range(values: impl Iterator<Item = f64>, from_zero: bool) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if from_zero {
        lo = lo.min(0.0);
    }
    if (hi - lo).abs() < f64::EPSILON {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.05;
    (if from_zero && lo >= 0.0 { lo } else { lo - pad })..hi + pad
}

/// Draws `plot` into `path` (PNG).
pub fn draw(plot: &Value, path: &Path) -> anyhow::Result<()> {
    register_font()?;
    let lines = series(plot)?;
    let xs = range(lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)), false);
    let ys = range(lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)), true);
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing: {e}");
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let title = plot["title"].as_str().unwrap_or("");
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(xs, ys)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(plot["x_label"].as_str().unwrap_or(""))
        .y_desc(plot["y_label"].as_str().unwrap_or(""))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (label, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let style = ShapeStyle::from(&color).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))
            .map_err(|e| err(&e))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, 3, ShapeStyle::from(&color).filled())),
            )
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present()
        .map_err(|e| err(&e))
        .with_context(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draws_a_png_and_refuses_an_empty_chart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let plot = json!({"id": "x", "title": "t", "x_label": "load", "y_label": "tx/s",
            "lines": [{"label": "ours", "points": [[1.0, 2.0], [2.0, 4.0]]},
                      {"label": "peer", "points": [[1.0, 1.0], [2.0, f64::NAN]]}]});
        // The font is a system package (fonts-dejavu-core), which scripts/test.sh installs.
        draw(&plot, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let empty = json!({"id": "e", "title": "t", "lines": [{"label": "a", "points": []}]});
        assert!(draw(&empty, &dir.path().join("e.png")).is_err());
    }
}
