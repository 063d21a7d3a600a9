//! The scaling curves as a PNG: cost against data size (left) and against the share of
//! the data a test changes (right), log-log.

use std::path::Path;

use plotters::prelude::*;

use crate::report::{Chart, Report, Series};

/// A TrueType font from a Debian package, if one is installed (`fonts-dejavu-core`).
/// Without one, the chart is drawn without text; docs/benchmarks.md has the legend.
fn load_font() -> bool {
    // For checking the text-less chart on a machine that has fonts.
    if std::env::var_os("VENOMQA_BENCH_NO_FONT").is_some() {
        return false;
    }
    const CANDIDATES: &[&str] = &[
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    ];
    for path in CANDIDATES {
        if let Ok(bytes) = std::fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// One color per backend, the same in both panels; the users' methods in a paler shade.
fn color_of(label: &str) -> RGBColor {
    let base = match label.split(' ').next().unwrap_or("") {
        "sqlite" => RGBColor(0x1f, 0x77, 0xb4),
        "mysql" => RGBColor(0xd6, 0x27, 0x28),
        "postgres" => RGBColor(0x2c, 0xa0, 0x2c),
        "redis" => RGBColor(0xff, 0x7f, 0x0e),
        "mongodb" => RGBColor(0x94, 0x67, 0xbd),
        _ => RGBColor(0x55, 0x55, 0x55),
    };
    if is_baseline(label) {
        RGBColor(base.0 / 2 + 0x70, base.1 / 2 + 0x70, base.2 / 2 + 0x70)
    } else {
        base
    }
}

fn is_baseline(label: &str) -> bool {
    label.contains("method")
}

pub fn draw(report: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    if report.series.is_empty() {
        return Err("no scaling curve was measured".into());
    }
    let text = load_font();
    if !text {
        eprintln!("no TrueType font found (apt-get install fonts-dejavu-core): drawing the chart without text");
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = BitMapBackend::new(path, (1400, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(700);
    panel(&left, report, Chart::Size, text)?;
    panel(&right, report, Chart::Share, text)?;
    root.present()?;
    Ok(())
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    report: &Report,
    chart: Chart,
    text: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let series: Vec<&Series> = report.series.iter().filter(|s| s.chart == chart).collect();
    if series.is_empty() {
        return Ok(());
    }
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (xmin, xmax) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (ymin, ymax) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    let (x_range_start, x_range_end) = (xmin / 1.5, xmax * 1.5);
    // Head room above the curves for the legend.
    let (y_range_start, y_range_end) = ((ymin / 2.0).max(0.1), ymax * 60.0);
    let (x_range, y_range) = (x_range_start..x_range_end, y_range_start..y_range_end);
    let (title, x_desc) = match chart {
        Chart::Size => (
            "checkpoint + rollback vs data size (1 row / key / document changed)",
            "rows / keys / documents",
        ),
        Chart::Share => (
            "checkpoint + rollback vs share changed (of 10,000 rows / keys / docs)",
            "% of the data changed by the test",
        ),
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70);
    if text {
        builder.caption(title, ("sans-serif", 18));
    }
    let mut ctx = builder.build_cartesian_2d(x_range.log_scale(), y_range.log_scale())?;
    if text {
        ctx.configure_mesh()
            .x_desc(x_desc)
            .y_desc("median time (log scale)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| axis_label(*y))
            .draw()?;
    } else {
        // Any mesh text needs a font: draw the plotting area's frame only.
        ctx.plotting_area().draw(&Rectangle::new(
            [(x_range_start, y_range_start), (x_range_end, y_range_end)],
            BLACK.stroke_width(1),
        ))?;
    }
    for s in series {
        let color = color_of(&s.label);
        let width = if is_baseline(&s.label) { 1 } else { 2 };
        let drawn =
            ctx.draw_series(LineSeries::new(s.points.clone(), color.stroke_width(width)))?;
        if text {
            drawn.label(s.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
            });
        }
        ctx.draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    if text {
        ctx.configure_series_labels()
            .position(match chart {
                // The size curves rise to the right: the upper left is free.
                Chart::Size => SeriesLabelPosition::UpperLeft,
                Chart::Share => SeriesLabelPosition::UpperRight,
            })
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    Ok(())
}

/// "10 us", "1.5 ms", "100 s": an axis label in the unit that reads best.
fn axis_label(us: f64) -> String {
    let (value, unit) = if us >= 1e6 {
        (us / 1e6, "s")
    } else if us >= 1e3 {
        (us / 1e3, "ms")
    } else {
        (us, "us")
    };
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {unit}")
}
