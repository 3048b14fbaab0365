//! Charts drawn on the server as SVG: bars a reviewer reads at a glance, with the numbers in
//! each bar's title (shown on hover, read by screen readers) and no script.

use maud::{Markup, html};

/// One bar: its label and value.
pub struct Bar {
    pub label: String,
    pub value: u64,
}

/// Horizontal bars, one per row, longest first as given.
pub fn bars(title: &str, rows: &[Bar]) -> Markup {
    let max = rows.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let (row_h, label_w, bar_w) = (22u64, 220u64, 360u64);
    let height = row_h * rows.len() as u64 + 4;
    html! {
        figure.chart {
            figcaption { (title) }
            svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
                width=(label_w + bar_w + 60) height=(height) {
                @for (i, b) in rows.iter().enumerate() {
                    @let y = i as u64 * row_h;
                    @let w = (b.value * bar_w).div_ceil(max);
                    text x="0" y=(y + 15) font-size="12" { (b.label) }
                    rect x=(label_w) y=(y + 3) width=(w) height=(row_h - 6) fill="#2f6f9f" {
                        title { (b.label) ": " (b.value) }
                    }
                    text x=(label_w + w + 4) y=(y + 15) font-size="12" { (b.value) }
                }
            }
        }
    }
}

/// Series of 24 hourly values (hour of day, Vietnam time) side by side in small charts.
pub fn hours(title: &str, series: &[(String, [f64; 24])]) -> Markup {
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let (w, h, col) = (24.0 * 12.0, 60.0, 12.0);
    html! {
        figure.chart {
            figcaption { (title) }
            @for (name, values) in series {
                div.hours {
                    span.series { (name) }
                    svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(name)
                        width=(w + 2.0) height=(h + 14.0) {
                        @for (hour, v) in values.iter().enumerate() {
                            @let bar = (v / max * h).max(if *v > 0.0 { 1.0 } else { 0.0 });
                            rect x=(hour as f64 * col + 1.0) y=(h - bar) width=(col - 2.0)
                                height=(bar) fill="#2f6f9f" {
                                title { (format!("{hour:02}:00 — {}", trim(*v))) }
                            }
                        }
                        @for hour in (0..24).step_by(6) {
                            text x=(hour as f64 * col) y=(h + 12.0) font-size="10" {
                                (format!("{hour:02}h"))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A count as an integer, a mean with one decimal.
fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
