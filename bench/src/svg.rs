//! A small hand-written SVG plot: side-by-side panels with logarithmic axes, one polyline per series.

use std::fmt::Write as _;

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Stroke colour (any SVG colour).
    pub color: String,
    /// Dashed line (solid otherwise).
    pub dashed: bool,
    /// `(x, y)` points; points with x or y not above zero are left out (log axes).
    pub points: Vec<(f64, f64)>,
}

/// One panel: logarithmic x and y.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title above the panel.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// `(x, text)` ticks on the x axis; they also set its range.
    pub x_ticks: Vec<(f64, String)>,
    /// The lines.
    pub series: Vec<Series>,
    /// Horizontal guide lines `(y, text)`, e.g. a target.
    pub guides: Vec<(f64, String)>,
}

const PANEL_W: f64 = 470.0;
const PLOT_LEFT: f64 = 70.0;
const PLOT_RIGHT: f64 = 20.0;
const PLOT_TOP: f64 = 56.0;
const PLOT_H: f64 = 280.0;
const LEGEND_LINE: f64 = 15.0;

/// Escapes text for SVG.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A latency in milliseconds as a short label: `5 ms`, `250 ms`, `1 s`, `20 s`.
pub fn ms_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", trim(ms / 1000.0))
    } else {
        format!("{} ms", trim(ms))
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn positive(points: &[(f64, f64)]) -> impl Iterator<Item = (f64, f64)> + '_ {
    points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite() && *x > 0.0 && *y > 0.0)
}

/// Decade range `[10^a, 10^b]` covering every y of the panel (points and guides); `(0, 3)` when there is none.
fn y_decades(panel: &Panel) -> (i32, i32) {
    let ys = panel
        .series
        .iter()
        .flat_map(|s| positive(&s.points).map(|(_, y)| y))
        .chain(panel.guides.iter().map(|(y, _)| *y).filter(|y| *y > 0.0));
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for y in ys {
        lo = lo.min(y);
        hi = hi.max(y);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0, 3);
    }
    let a = lo.log10().floor() as i32;
    let b = (hi.log10().ceil() as i32).max(a + 1);
    (a, b)
}

/// Renders the panels side by side under `title`.
pub fn render(title: &str, panels: &[Panel]) -> String {
    let legend_rows = panels.iter().map(|p| p.series.len()).max().unwrap_or(0);
    let width = PANEL_W * panels.len().max(1) as f64;
    let height = PLOT_TOP + PLOT_H + 50.0 + LEGEND_LINE * legend_rows as f64 + 10.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{:.0}" y="18" text-anchor="middle" font-size="14">{}</text>"#,
        width / 2.0,
        escape(title)
    );
    for (i, p) in panels.iter().enumerate() {
        panel(&mut out, p, PANEL_W * i as f64);
    }
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, p: &Panel, x0: f64) {
    let (left, right) = (x0 + PLOT_LEFT, x0 + PANEL_W - PLOT_RIGHT);
    let (top, bottom) = (PLOT_TOP, PLOT_TOP + PLOT_H);
    let xs: Vec<f64> = p
        .x_ticks
        .iter()
        .map(|(x, _)| *x)
        .filter(|x| *x > 0.0)
        .collect();
    let (xmin, xmax) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(*x), b.max(*x))
        });
    let (lx0, lx1) = if xmin.is_finite() && xmax > xmin {
        let pad = (xmax.log10() - xmin.log10()) * 0.08;
        (xmin.log10() - pad, xmax.log10() + pad)
    } else if xmin.is_finite() {
        // One tick (a run with a single station count): in the middle.
        (xmin.log10() - 0.5, xmin.log10() + 0.5)
    } else {
        (0.0, 1.0)
    };
    let (ya, yb) = y_decades(p);
    let sx = |x: f64| left + (x.log10() - lx0) / (lx1 - lx0) * (right - left);
    let sy = |y: f64| bottom - (y.log10() - f64::from(ya)) / f64::from(yb - ya) * (bottom - top);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="40" text-anchor="middle" font-size="12">{}</text>"#,
        (left + right) / 2.0,
        escape(&p.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        right - left,
        bottom - top
    );
    for d in ya..=yb {
        for m in [1.0, 2.0, 5.0] {
            let y = m * 10f64.powi(d);
            if d == yb && m > 1.0 {
                continue;
            }
            let py = sy(y);
            let (stroke, label) = if m == 1.0 {
                ("#ccc", true)
            } else {
                ("#eee", false)
            };
            let _ = writeln!(
                out,
                r#"<line x1="{left:.1}" x2="{right:.1}" y1="{py:.1}" y2="{py:.1}" stroke="{stroke}"/>"#
            );
            if label {
                let _ = writeln!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                    left - 4.0,
                    py + 4.0,
                    escape(&ms_label(y))
                );
            }
        }
    }
    for (x, text) in &p.x_ticks {
        if *x <= 0.0 {
            continue;
        }
        let px = sx(*x);
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{top:.1}" y2="{bottom:.1}" stroke="#eee"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            bottom + 14.0,
            escape(text)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (left + right) / 2.0,
        bottom + 30.0,
        escape(&p.x_label)
    );
    for (y, text) in &p.guides {
        if *y <= 0.0 {
            continue;
        }
        let py = sy(*y);
        let _ = writeln!(
            out,
            r##"<line x1="{left:.1}" x2="{right:.1}" y1="{py:.1}" y2="{py:.1}" stroke="#c00" stroke-dasharray="2,3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#c00">{}</text>"##,
            right - 3.0,
            py - 3.0,
            escape(text)
        );
    }
    for (i, s) in p.series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = positive(&s.points).map(|(x, y)| (sx(x), sy(y))).collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6,4""#
        } else {
            ""
        };
        if pts.len() > 1 {
            let list: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.8"{dash} points="{}"/>"#,
                escape(&s.color),
                list.join(" ")
            );
        }
        for (x, y) in &pts {
            let _ = writeln!(
                out,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{}"/>"#,
                escape(&s.color)
            );
        }
        let ly = bottom + 48.0 + LEGEND_LINE * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{left:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{}" stroke-width="1.8"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            left + 26.0,
            ly - 4.0,
            ly - 4.0,
            escape(&s.color),
            left + 32.0,
            ly,
            escape(&s.label)
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Panel {
        Panel {
            title: "latency <vs> stations".into(),
            x_label: "stations".into(),
            x_ticks: vec![(10.0, "10".into()), (100.0, "100".into())],
            series: vec![
                Series {
                    label: "p50 & p99".into(),
                    color: "#1f77b4".into(),
                    dashed: false,
                    points: vec![(10.0, 12.0), (100.0, 0.0), (100.0, 340.0)],
                },
                Series {
                    label: "empty".into(),
                    color: "red".into(),
                    dashed: true,
                    points: vec![],
                },
            ],
            guides: vec![(300.0, "target 300 ms".into())],
        }
    }

    #[test]
    fn renders_points_and_escapes_text() {
        let svg = render("a & b", &[sample(), sample()]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &amp; b"));
        assert!(svg.contains("latency &lt;vs&gt; stations"));
        assert!(svg.contains("p50 &amp; p99"));
        // The zero point is left out: two points per panel, in one polyline each.
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn larger_latencies_are_drawn_higher() {
        let svg = render("t", &[sample()]);
        let line = svg.lines().find(|l| l.contains("<polyline")).unwrap();
        let pts: Vec<(f64, f64)> = line
            .split("points=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches("\"/>")
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(pts.len(), 2);
        assert!(pts[1].0 > pts[0].0, "x grows to the right");
        assert!(pts[1].1 < pts[0].1, "340 ms is above 12 ms");
    }

    #[test]
    fn a_single_x_value_is_drawn_inside_its_panel() {
        let one = Panel {
            x_ticks: vec![(100.0, "100".into())],
            series: vec![Series {
                points: vec![(100.0, 120.0)],
                ..sample().series[0].clone()
            }],
            ..sample()
        };
        let svg = render("t", &[one]);
        let circle = svg.lines().find(|l| l.starts_with("<circle")).unwrap();
        let cx: f64 = circle
            .split("cx=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            cx > PLOT_LEFT && cx < PANEL_W - PLOT_RIGHT,
            "{cx} outside the panel: {svg}"
        );
    }

    #[test]
    fn decades_cover_points_and_guides() {
        assert_eq!(y_decades(&sample()), (1, 3));
        let empty = Panel {
            series: vec![],
            guides: vec![],
            ..sample()
        };
        assert_eq!(y_decades(&empty), (0, 3));
        assert_eq!(ms_label(250.0), "250 ms");
        assert_eq!(ms_label(1000.0), "1 s");
        assert_eq!(ms_label(1500.0), "1.5 s");
        assert_eq!(ms_label(2.0), "2 ms");
    }
}
