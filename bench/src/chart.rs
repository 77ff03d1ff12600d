//! The SVG chart: throughput at the highest concurrency, and resident memory, against N.
//!
//! plotters draws it with its SVG backend only, so text is written as SVG `<text>` elements and
//! laid out with plotters' built-in estimates: no font files or fontconfig are needed.

use crate::report::Report;
use plotters::prelude::*;

/// One colour per request kind, in the order of the legend.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn y_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (mut min, mut max) = (f64::MAX, 0.0f64);
    for v in values.filter(|v| *v > 0.0) {
        min = min.min(v);
        max = max.max(v);
    }
    if max == 0.0 {
        return 0.1..10.0;
    }
    (min / 2.0)..(max * 2.0)
}

/// Draws the chart of `report` as an SVG document.
pub fn svg(report: &Report) -> Result<String, String> {
    let mut out = String::new();
    draw(report, &mut out).map_err(|e| format!("drawing the chart: {e}"))?;
    Ok(out)
}

fn draw(report: &Report, out: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let concurrency = report.settings.concurrency.iter().copied().max().unwrap_or(1);
    let mut sizes: Vec<usize> = report.runs.iter().map(|r| r.objects).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let backends: Vec<&str> = {
        let mut b: Vec<&str> = report.runs.iter().map(|r| r.backend.as_str()).collect();
        b.dedup();
        b
    };
    let mut kinds: Vec<(String, String)> = vec![("ceiling".into(), "ceiling".into())];
    for op in report.runs.iter().flat_map(|r| &r.operations) {
        if !kinds.iter().any(|(id, _)| *id == op.operation) {
            kinds.push((op.operation.clone(), op.title.clone()));
        }
    }
    // N is a category on the x axis (the sizes are usually decades, so this is a log scale).
    let at = |objects: usize| SegmentValue::CenterOf(sizes.iter().position(|n| *n == objects).unwrap_or(0) as i32);
    // Integer ranges are inclusive as discrete coordinates: 0..len-1 is one slot per size.
    let x_axis = || (0..(sizes.len() as i32 - 1).max(0)).into_segmented();
    let x_label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) => sizes.get(*i as usize).map(|n| crate::progress::thousands(*n as f64)).unwrap_or_default(),
        _ => String::new(),
    };
    let y_label = |v: &f64| crate::progress::thousands(*v);
    let series = |backend: &str, kind: &str| -> Vec<(SegmentValue<i32>, f64)> {
        report
            .runs
            .iter()
            .filter(|r| r.backend == backend)
            .filter_map(|r| {
                let found = r.ceiling.iter().chain(&r.operations).find(|o| o.operation == kind && o.concurrency == concurrency)?;
                (found.per_second > 0.0).then_some((at(r.objects), found.per_second))
            })
            .collect()
    };

    let root = SVGBackend::with_string(out, (1280, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(760);

    let all_rates = report
        .runs
        .iter()
        .flat_map(|r| r.ceiling.iter().chain(&r.operations))
        .filter(|o| o.concurrency == concurrency)
        .map(|o| o.per_second);
    let mut chart = ChartBuilder::on(&left)
        .caption(format!("Throughput at concurrency {concurrency} (solid: memory, dashed: embedded)"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x_axis(), y_range(all_rates).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .max_light_lines(1)
        .x_desc("objects stored (N)")
        .y_desc("requests per second")
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .draw()?;
    for (k, (id, title)) in kinds.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        for (b, backend) in backends.iter().enumerate() {
            let points = series(backend, id);
            if points.is_empty() {
                continue;
            }
            let style = color.stroke_width(2);
            if b == 0 {
                chart
                    .draw_series(LineSeries::new(points.clone(), style))?
                    .label(title.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
                chart.draw_series(points.iter().map(|p| Circle::new(p.clone(), 4, color.filled())))?;
            } else {
                chart.draw_series(DashedLineSeries::new(points.clone(), 6, 4, style))?;
                chart.draw_series(points.iter().map(|p| TriangleMarker::new(p.clone(), 5, color.filled())))?;
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerLeft)
        .draw()?;

    // Memory: resident set after loading, and the objects' own JSON for scale.
    let mib = |b: f64| b / (1024.0 * 1024.0);
    let json_line: Vec<(SegmentValue<i32>, f64)> = sizes.iter().map(|n| (at(*n), mib((*n * report.object_json_bytes) as f64))).collect();
    let memory_values = report.runs.iter().map(|r| mib(r.memory.rss_loaded_bytes as f64)).chain(json_line.iter().map(|p| p.1));
    let mut chart = ChartBuilder::on(&right)
        .caption("Server resident memory after loading N", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x_axis(), y_range(memory_values).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .max_light_lines(1)
        .x_desc("objects stored (N)")
        .y_desc("MiB")
        .x_label_formatter(&x_label)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .draw()?;
    for (b, backend) in backends.iter().enumerate() {
        let color = COLORS[b % COLORS.len()];
        let points: Vec<(SegmentValue<i32>, f64)> =
            report.runs.iter().filter(|r| r.backend == *backend).map(|r| (at(r.objects), mib(r.memory.rss_loaded_bytes as f64))).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(format!("{backend}: RSS"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|p| Circle::new(p.clone(), 4, color.filled())))?;
    }
    let gray = COLORS[7];
    chart
        .draw_series(DashedLineSeries::new(json_line.clone(), 6, 4, gray.stroke_width(2)))?
        .label("N × object JSON")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], gray.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
