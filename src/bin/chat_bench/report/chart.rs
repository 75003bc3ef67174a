//! Line charts in SVG, the one way the report and the soak run draw their panels.

use plotters::prelude::*;
use std::path::Path;

/// A part of an SVG page to draw a panel on.
pub type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
pub type ChartError = Box<dyn std::error::Error>;

/// A white page of `size` pixels at `path` (its folder made if need be), titled `title`.
/// Call `present` on it once its panels are drawn.
pub fn svg_page<'a>(path: &'a Path, size: (u32, u32), title: &str) -> Result<Area<'a>, ChartError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    Ok(root.titled(title, ("sans-serif", 22))?)
}

/// One line of a panel: its legend entry (none: left out of the legend), points and style.
pub struct Line {
    pub label: Option<String>,
    pub points: Vec<(f64, f64)>,
    pub color: RGBAColor,
    pub width: u32,
}

impl Line {
    /// The `k`-th line of a panel, labelled, in the palette's `k`-th colour.
    pub fn nth(k: usize, label: impl Into<String>, points: Vec<(f64, f64)>) -> Line {
        Line {
            label: Some(label.into()),
            points,
            color: Palette99::pick(k).to_rgba(),
            width: 2,
        }
    }
}

/// A panel's caption and axes; both axes start at 0.
pub struct Panel<'a> {
    pub caption: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub x_max: f64,
    pub y_max: f64,
    /// Room for the y labels, in pixels.
    pub y_label_width: u32,
    pub y_format: Option<&'a dyn Fn(&f64) -> String>,
    /// Where the legend goes, if any line has a label.
    pub legend: SeriesLabelPosition,
}

/// Draws `lines` on linear axes in `area`.
pub fn line_panel(area: &Area, panel: &Panel, lines: Vec<Line>) -> Result<(), ChartError> {
    let mut chart = ChartBuilder::on(area)
        .caption(panel.caption, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(panel.y_label_width)
        .build_cartesian_2d(0.0f64..panel.x_max, 0.0f64..panel.y_max)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(panel.x_desc).y_desc(panel.y_desc);
    if let Some(format) = panel.y_format {
        mesh.y_label_formatter(format);
    }
    mesh.draw()?;
    let labelled = lines.iter().any(|l| l.label.is_some());
    for line in lines {
        let style = line.color.stroke_width(line.width);
        let series = chart.draw_series(LineSeries::new(line.points, style))?;
        if let Some(label) = line.label {
            series
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], style));
        }
    }
    if labelled {
        chart
            .configure_series_labels()
            .position(panel.legend.clone())
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}
