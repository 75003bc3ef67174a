//! The run's SVG plots: latency by percentile, and deliveries per second or idle memory.

use plotters::prelude::*;
use std::path::Path;

use super::chart::{line_panel, svg_page, Area, ChartError, Line, Panel};
use super::{ms, PhaseReport, Report};

/// Two panels: latency by percentile (log-log, one line per phase), and deliveries per
/// second over time (one line per phase). An idle run gets server RSS over time instead.
pub fn write_svg(r: &Report, path: &Path) -> Result<(), ChartError> {
    let title = format!("{} (peer: {})", r.label, r.peer.name());
    let root = svg_page(path, (1000, 900), &title)?;
    let (top, bottom) = root.split_vertically(430);
    latency_panel(r, &top)?;
    if r.phases.is_empty() {
        idle_panel(r, &bottom)?;
    } else {
        throughput_panel(r, &bottom)?;
    }
    root.present()?;
    Ok(())
}

fn phase_name(p: &PhaseReport) -> String {
    if p.rate > 0.0 {
        format!("{} msg/s", p.rate)
    } else {
        "window-limited".into()
    }
}

fn latency_panel(r: &Report, area: &Area) -> Result<(), ChartError> {
    // x: 1/(1 − percentile), so that 90, 99, 99.9 … are evenly spaced.
    let to_x = |pct: f64| 1.0 / (1.0 - (pct / 100.0).min(0.99999));
    let max_ms = r
        .phases
        .iter()
        .map(|p| ms(p.latency_us.max))
        .chain(std::iter::once(ms(r.setup.setup_latency_us.max)))
        .fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "latency by percentile (publish → receipt)",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (1.0f64..100_000.0).log_scale(),
            (0.01f64..max_ms * 1.5).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("ms")
        .x_label_formatter(&|x| {
            let pct = 100.0 * (1.0 - 1.0 / x);
            format!("{pct:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        })
        .draw()?;
    let series: Vec<(String, Vec<(f64, u64)>)> = if r.phases.is_empty() {
        Vec::new()
    } else {
        r.phases
            .iter()
            .map(|p| (phase_name(p), p.latency_curve.clone()))
            .collect()
    };
    for (k, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points
                    .iter()
                    .map(|(pct, us)| (to_x(*pct), ms(*us).max(0.01))),
                color.stroke_width(2),
            ))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    // With several nodes: the cross-node deliveries alone, thin, in their phase's colour.
    for (k, p) in r.phases.iter().enumerate() {
        let Some(x) = &p.cross_node else { continue };
        let color = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(
                x.latency_curve
                    .iter()
                    .map(|(pct, us)| (to_x(*pct), ms(*us).max(0.01))),
                color.stroke_width(1),
            ))?
            .label(format!("{}, cross-node", phase_name(p)))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(1)));
    }
    if series.is_empty() {
        // Idle runs: the set-up latency percentiles stand in.
        let s = &r.setup.setup_latency_us;
        let pts = [(50.0, s.p50), (90.0, s.p90), (99.0, s.p99), (99.9, s.p999)];
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|(pct, us)| (to_x(*pct), ms(*us).max(0.01))),
                BLUE.stroke_width(2),
            ))?
            .label("connection set-up")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn throughput_panel(r: &Report, area: &Area) -> Result<(), ChartError> {
    let max_t = r
        .phases
        .iter()
        .map(|p| p.timeline.len())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let max_d = r
        .phases
        .iter()
        .flat_map(|p| p.timeline.iter().map(|s| s.deliveries))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let lines = r.phases.iter().enumerate().map(|(k, p)| {
        let points = p.timeline.iter();
        let points = points.map(|s| (s.t as f64 + 0.5, s.deliveries as f64));
        Line::nth(k, phase_name(p), points.collect())
    });
    let panel = Panel {
        caption: "deliveries per second",
        x_desc: "seconds since the phase began",
        y_desc: "deliveries/s",
        x_max: max_t,
        y_max: max_d * 1.1,
        y_label_width: 80,
        y_format: Some(&|v| format!("{v:.0}")),
        legend: SeriesLabelPosition::UpperRight,
    };
    line_panel(area, &panel, lines.collect())
}

fn idle_panel(r: &Report, area: &Area) -> Result<(), ChartError> {
    let samples: Vec<(f64, f64)> = r
        .idle
        .iter()
        .flat_map(|i| i.samples.iter())
        .filter_map(|s| Some((s.t, s.server_rss_kib? as f64 / 1024.0)))
        .collect();
    let max_t = samples.iter().map(|s| s.0).fold(1.0, f64::max);
    let max_mib = samples.iter().map(|s| s.1).fold(1.0, f64::max);
    let panel = Panel {
        caption: "server RSS while idle",
        x_desc: "seconds held",
        y_desc: "MiB",
        x_max: max_t,
        y_max: max_mib * 1.1,
        y_label_width: 80,
        y_format: None,
        legend: SeriesLabelPosition::UpperRight,
    };
    let line = Line {
        label: None,
        points: samples,
        color: BLUE.to_rgba(),
        width: 2,
    };
    line_panel(area, &panel, vec![line])
}
