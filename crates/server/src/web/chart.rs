//! Charts drawn by honeytrail itself: inline SVG written on the server, so
//! the page policy keeps allowing no script and no outside origin. Templates
//! call [`time_chart`] and [`bar_chart`] with plain data; every label may be
//! text an intruder wrote (an API name, a user agent, a source address), so
//! each is shown with its hidden characters made visible and escaped here,
//! and nothing of it reaches an attribute other than as escaped text.

use chrono::{DateTime, Utc};

use honeytrail_app::ops::charts::{Counts, TimeSeries};

/// The width charts are drawn at: half a page, so text stays readable when
/// two sit side by side; a wide chart spans the page.
const WIDTH: f64 = 480.0;
const WIDE: f64 = 960.0;
const BLUE: &str = "#2563eb";

/// The fill of a tone; the fixed palette means no caller text reaches an attribute.
fn fill(tone: &str) -> &'static str {
    match tone {
        "critical" | "tampered" | "first" | "failed" => "#b91c1c",
        "high" | "read" | "stale" => "#ea580c",
        "medium" | "unconfirmed" | "pending" => "#ca8a04",
        "low" | "retired" | "removed" => "#6b7280",
        "ok" | "active" | "done" | "resolved" => "#15803d",
        _ => BLUE,
    }
}

/// Text for SVG: hidden characters shown, markup escaped, at most `max` characters.
fn text(s: &str, max: usize) -> String {
    let shown = honeytrail_core::encoding::visible(s);
    let mut cut: String = shown.chars().take(max).collect();
    if shown.chars().count() > max {
        cut.pop();
        cut.push('…');
    }
    minijinja::HtmlEscape(&cut.replace(['\n', '\t'], " ")).to_string()
}

/// A round number at or above `n` for the top of a scale.
fn scale_top(n: u64) -> u64 {
    if n <= 5 {
        return n.max(1);
    }
    let mut step = 1u64;
    while step * 10 < n {
        step *= 10;
    }
    for m in [1, 2, 3, 4, 5, 6, 8, 10] {
        if step * m >= n {
            return step * m;
        }
    }
    n
}

/// How a moment is written on an axis whose buckets are `width` seconds wide.
fn axis_time(t: DateTime<Utc>, span_seconds: i64) -> String {
    if span_seconds <= 2 * 86_400 {
        t.format("%b %-d %H:%M").to_string()
    } else {
        t.format("%b %-d").to_string()
    }
}

fn open_svg(out: &mut String, title: &str, width: f64, height: f64, summary: &str) {
    out.push_str(&format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\" \
         font-family=\"system-ui, sans-serif\" font-size=\"12\"><title>{}</title><desc>{}</desc>",
        text(title, 120),
        text(summary, 300)
    ));
}

/// A bar (or area) chart of counts over time with marked moments.
pub fn time_chart(c: &TimeSeries) -> String {
    let (left, right, top, bottom) = (44.0, 12.0, 22.0, 26.0);
    let height = 190.0;
    let width = if c.wide { WIDE } else { WIDTH };
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let n = c.values.len().max(1);
    let total: u64 = c.values.iter().sum();
    let peak = c.values.iter().copied().max().unwrap_or(0);
    let top_value = scale_top(peak);
    let span = (c.to - c.from).num_seconds().max(1);
    let bucket = span as f64 / n as f64;
    let mut out = String::new();
    open_svg(
        &mut out,
        &c.title,
        width,
        height,
        &format!("{total} {} from {} to {}; at most {peak} in one interval", c.unit, c.from, c.to),
    );
    out.push_str(&format!("<text x=\"{left}\" y=\"14\" font-weight=\"600\">{}</text>", text(&c.title, 80)));
    // Axes and the scale.
    let base = top + plot_h;
    out.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#9ca3af\"/>\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{}\" y2=\"{top}\" stroke=\"#e5e7eb\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#4b5563\">{top_value}</text>\
         <text x=\"{}\" y=\"{base}\" text-anchor=\"end\" fill=\"#4b5563\">0</text>",
        left + plot_w,
        left + plot_w,
        left - 4.0,
        top + 4.0,
        left - 4.0
    ));
    let x_of = |i: f64| left + plot_w * i / n as f64;
    let y_of = |v: u64| base - plot_h * v as f64 / top_value as f64;
    let bucket_start = |i: usize| c.from + chrono::Duration::milliseconds((bucket * 1000.0 * i as f64) as i64);
    if c.area {
        let mut points = format!("{left},{base} ");
        for (i, v) in c.values.iter().enumerate() {
            points.push_str(&format!(
                "{:.1},{:.1} {:.1},{:.1} ",
                x_of(i as f64),
                y_of(*v),
                x_of(i as f64 + 1.0),
                y_of(*v)
            ));
        }
        points.push_str(&format!("{},{base}", left + plot_w));
        out.push_str(&format!(
            "<polygon points=\"{points}\" fill=\"{BLUE}\" fill-opacity=\"0.35\" stroke=\"{BLUE}\"/>"
        ));
    }
    for (i, v) in c.values.iter().enumerate() {
        let (x, w) = (x_of(i as f64), (plot_w / n as f64 - 1.0).max(0.5));
        let when = axis_time(bucket_start(i), span);
        if c.area {
            // An invisible column per bucket, so the value shows on hover.
            out.push_str(&format!("<rect x=\"{x:.1}\" y=\"{top}\" width=\"{w:.1}\" height=\"{plot_h}\" fill=\"transparent\"><title>{when}: {v} {}</title></rect>",
                text(&c.unit, 40)
            ));
        } else if *v > 0 {
            let y = y_of(*v);
            out.push_str(&format!("<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{BLUE}\"><title>{when}: {v} {}</title></rect>",
                (base - y).max(1.0),
                text(&c.unit, 40)
            ));
        }
    }
    for m in &c.marks {
        let at = (m.at - c.from).num_milliseconds() as f64 / 1000.0;
        if at < 0.0 || at > span as f64 {
            continue;
        }
        let x = left + plot_w * at / span as f64;
        let color = fill(&m.tone);
        out.push_str(&format!("<g class=\"mark mark-{}\"><line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{base}\" stroke=\"{color}\" stroke-width=\"2\" stroke-dasharray=\"4 2\"/>\
             <text x=\"{:.1}\" y=\"{}\" fill=\"{color}\" text-anchor=\"{}\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{}</text><title>{}: {}</title></g>",
            if m.tone == "first" || m.tone == "read" { m.tone.as_str() } else { "other" },
            x + if x > left + plot_w * 0.8 { -3.0 } else { 3.0 },
            top + 11.0,
            if x > left + plot_w * 0.8 { "end" } else { "start" },
            text(&m.label, 40),
            text(&m.label, 120),
            m.at.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    out.push_str(&format!("<text x=\"{left}\" y=\"{}\" fill=\"#4b5563\">{}</text><text x=\"{}\" y=\"{}\" fill=\"#4b5563\" text-anchor=\"end\">{}</text></svg>",
        height - 8.0,
        axis_time(c.from, span),
        left + plot_w,
        height - 8.0,
        axis_time(c.to, span)
    ));
    out
}

/// Horizontal bars, one row per item, largest scale first given.
pub fn bar_chart(c: &Counts) -> String {
    let (label_w, count_w, row, top) = (170.0, 50.0, 22.0, 24.0);
    let rows = c.items.len() + usize::from(c.more > 0);
    let height = top + row * rows.max(1) as f64 + 6.0;
    let bar_w = WIDTH - label_w - count_w;
    let peak = c.items.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let total: u64 = c.items.iter().map(|b| b.count).sum();
    let mut out = String::new();
    open_svg(&mut out, &c.title, WIDTH, height, &format!("{} values, {total} in all", c.items.len() as u64 + c.more));
    out.push_str(&format!("<text x=\"0\" y=\"14\" font-weight=\"600\">{}</text>", text(&c.title, 80)));
    if c.items.is_empty() {
        out.push_str(&format!("<text x=\"0\" y=\"{}\" fill=\"#6b7280\">Nothing yet.</text>", top + 14.0));
    }
    for (i, b) in c.items.iter().enumerate() {
        let y = top + row * i as f64;
        let w = (bar_w * b.count as f64 / peak as f64).max(if b.count > 0 { 2.0 } else { 0.0 });
        out.push_str(&format!(
            "<g class=\"bar-row\"><title>{}: {}</title><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#374151\">{}</text></g>",
            text(&b.label, 200),
            b.count,
            label_w - 6.0,
            y + 14.0,
            text(&b.label, 26),
            y + 3.0,
            row - 6.0,
            fill(&b.tone),
            label_w + w + 4.0,
            y + 14.0,
            b.count
        ));
    }
    if c.more > 0 {
        let y = top + row * c.items.len() as f64;
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#6b7280\">and {} more</text>",
            label_w - 6.0,
            y + 14.0,
            c.more
        ));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use honeytrail_app::ops::charts::{Count, Marker};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn intruder_text_in_a_chart_is_escaped_and_shown() {
        let svg = bar_chart(&Counts {
            title: "Calls by user agent".into(),
            items: vec![
                Count { label: "</svg><script>alert(1)</script>".into(), count: 3, tone: "\" onload=\"x".into() },
                Count { label: "aws-cli\u{202e}exe.".into(), count: 1, tone: String::new() },
            ],
            more: 4,
        });
        assert!(!svg.contains("<script>") && !svg.contains("onload"), "{svg}");
        assert!(svg.contains("&lt;&#x2f;svg&gt;&lt;script&gt;"), "{svg}");
        assert!(svg.contains("aws-cli\\u{202e}exe.") && !svg.contains('\u{202e}'), "{svg}");
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.ends_with("</svg>") && svg.contains("and 4 more"));
    }

    #[test]
    fn a_time_chart_has_a_bar_per_busy_bucket_and_marks_inside_its_span() {
        let svg = time_chart(&TimeSeries {
            title: "Events".into(),
            unit: "events".into(),
            from: at("2026-12-01T00:00:00Z"),
            to: at("2026-12-01T04:00:00Z"),
            values: vec![0, 7, 0, 2],
            area: false,
            wide: false,
            marks: vec![
                Marker { at: at("2026-12-01T01:10:00Z"), label: "first call".into(), tone: "first".into() },
                Marker { at: at("2026-11-30T00:00:00Z"), label: "outside".into(), tone: "read".into() },
            ],
        });
        assert_eq!(svg.matches("class=\"bar\"").count(), 2, "{svg}");
        assert!(svg.contains("mark-first") && !svg.contains("outside"), "{svg}");
        assert!(svg.contains("Dec 1 01:00: 7 events"), "{svg}");
    }

    #[test]
    fn scales_end_on_round_numbers() {
        assert_eq!([0, 3, 7, 12, 99, 101, 2097].map(scale_top), [1, 3, 8, 20, 100, 200, 3000]);
    }
}
