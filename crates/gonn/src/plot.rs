//! Run plots, as SVG or PNG (a small built-in rasterizer, bitmap font and deflate encoder, so that no plotting
//! dependency is needed): against outer iterations, the objective with the proven lower bound on the optimum
//! (the gap is the space between the two curves), the relative gap bound against the tolerance, the polar's
//! bracket against the optimality threshold 1, and the number of subnetworks.

use std::path::Path;

use crate::error::{GonnError, Result};
use crate::meta::IterationRecord;

const W: usize = 800;
const PANEL_H: usize = 210;
const LEFT: f64 = 100.0;
const RIGHT: f64 = 770.0;
/// Pixels above the plot area of a panel (title and legend) and below it (iteration ticks).
const HEAD: f64 = 46.0;
const FOOT: f64 = 34.0;

type Rgb = (u8, u8, u8);
const BLUE: Rgb = (31, 119, 180);
const RED: Rgb = (214, 39, 40);
const GREEN: Rgb = (44, 160, 44);
const ORANGE: Rgb = (255, 127, 14);
const PURPLE: Rgb = (148, 103, 189);
const GREY: Rgb = (110, 110, 110);

/// One curve of a panel; `None` values break it.
struct Line {
    label: &'static str,
    values: Vec<Option<f64>>,
    color: Rgb,
    dashed: bool,
}

/// A horizontal reference line (the threshold 1 of the polar, the tolerance of the gap).
struct Reference {
    value: f64,
    label: String,
}

struct Panel {
    title: &'static str,
    lines: Vec<Line>,
    log: bool,
    integer: bool,
    reference: Option<Reference>,
    /// Scale the axis to the iterations from this one on; earlier values off the axis are left out, with a note.
    focus: Option<usize>,
}

/// The four quantities of a run: objective and proven lower bound on `F*` (the best so far, clipped at 0, which
/// every loss here is above), relative gap bound against `tol`, polar bracket against 1, subnetworks.
fn panels(history: &[IterationRecord], tol: Option<f64>) -> Vec<Panel> {
    let mut best: Option<f64> = None;
    let lower: Vec<Option<f64>> = history
        .iter()
        .map(|r| {
            if let Some(g) = r.gap_bound {
                let lb = (r.objective - g).max(0.0);
                best = Some(best.map_or(lb, |b| b.max(lb)));
            }
            best
        })
        .collect();
    let focus = lower.iter().position(|v| v.is_some()).filter(|&i| i > 0);
    vec![
        Panel {
            title: "objective and proven lower bound on the optimum",
            lines: vec![
                Line {
                    label: "objective f(W)",
                    values: history.iter().map(|r| Some(r.objective)).collect(),
                    color: BLUE,
                    dashed: false,
                },
                Line { label: "lower bound on F* (best so far)", values: lower, color: RED, dashed: true },
            ],
            log: false,
            integer: false,
            reference: None,
            focus,
        },
        Panel {
            title: "relative gap bound (proven), log scale",
            lines: vec![Line {
                label: "gap bound / f(W)",
                values: history
                    .iter()
                    .map(|r| r.gap_bound.map(|g| g / r.objective.abs().max(f64::MIN_POSITIVE)).filter(|v| *v > 0.0))
                    .collect(),
                color: PURPLE,
                dashed: false,
            }],
            log: true,
            integer: false,
            reference: tol.filter(|t| *t > 0.0).map(|t| Reference { value: t, label: format!("tol {t:.0e}") }),
            focus: None,
        },
        Panel {
            title: "polar (<= 1 proves optimality), log scale",
            lines: vec![
                Line {
                    label: "lower bound",
                    values: history.iter().map(|r| Some(r.polar_lower).filter(|v| *v > 0.0)).collect(),
                    color: ORANGE,
                    dashed: false,
                },
                Line {
                    label: "proven upper bound",
                    values: history.iter().map(|r| r.polar_upper.filter(|v| *v > 0.0)).collect(),
                    color: RED,
                    dashed: true,
                },
            ],
            log: true,
            integer: false,
            reference: Some(Reference { value: 1.0, label: "threshold 1".into() }),
            focus: None,
        },
        Panel {
            title: "subnetworks r",
            lines: vec![Line {
                label: "subnetworks",
                values: history.iter().map(|r| Some(r.subnetworks as f64)).collect(),
                color: GREEN,
                dashed: false,
            }],
            log: false,
            integer: true,
            reference: None,
            focus: None,
        },
    ]
}

/// An axis: its range in plot coordinates (log10 of the value on log axes) and labelled ticks inside it.
#[derive(Clone, Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    /// `0` at `lo`, `1` at `hi`, for a value (not a coordinate).
    fn frac(&self, v: f64) -> Option<f64> {
        let c = if self.log { (v > 0.0).then(|| v.log10())? } else { v };
        c.is_finite().then(|| (c - self.lo) / (self.hi - self.lo))
    }
}

/// 1, 2 or 5 times a power of ten, at least `x`.
fn nice_step(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * p).find(|s| *s >= x * (1.0 - 1e-12)).unwrap_or(10.0 * p)
}

/// Labels for ticks `k * step`, with just enough digits to tell neighbours apart.
fn tick_label(v: f64, step: f64) -> String {
    let v = if v.abs() < 1e-9 * step { 0.0 } else { v };
    let mag = v.abs().max(step);
    if !(1e-3..1e5).contains(&mag) {
        let digits = (mag.log10().floor() - step.log10().floor()).max(0.0) as usize;
        format!("{v:.digits$e}")
    } else {
        let decimals = (-step.log10().floor()).max(0.0) as usize;
        format!("{v:.decimals$}")
    }
}

/// An axis covering `values` (and `extra`, e.g. a reference line). A linear axis spans at least 1e-3 of the
/// values' magnitude (so that a change in the fifth digit stays a small change) and snaps to ticks of a nice
/// step; integer axes tick at integers; a log axis spans whole decades, at least one.
fn axis(values: impl Iterator<Item = f64>, extra: Option<f64>, log: bool, integer: bool) -> Option<Axis> {
    let coords: Vec<f64> = values
        .chain(extra)
        .filter_map(|v| if log { (v > 0.0).then(|| v.log10()) } else { Some(v) })
        .filter(|c| c.is_finite())
        .collect();
    let (lo, hi) = coords.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &c| (a.min(c), b.max(c)));
    if !lo.is_finite() {
        return None;
    }
    if log {
        let (a, mut b) = (lo.floor(), hi.ceil());
        if b <= a {
            b = a + 1.0;
        }
        let k = ((b - a) / 5.0).ceil().max(1.0);
        let (a, b) = ((a / k).floor() * k, (b / k).ceil() * k);
        let ticks =
            (0..=((b - a) / k).round() as i64).map(|i| a + i as f64 * k).map(|c| (c, format!("1e{c}"))).collect();
        return Some(Axis { lo: a, hi: b, log, ticks });
    }
    let magnitude = lo.abs().max(hi.abs());
    let min_span = if integer { 2.0 } else { (1e-3 * magnitude).max(1e-12) };
    let (lo, hi) = if hi - lo < min_span {
        let mid = 0.5 * (lo + hi);
        (mid - 0.5 * min_span, mid + 0.5 * min_span)
    } else {
        (lo, hi)
    };
    let step = nice_step((hi - lo) / 4.0);
    let step = if integer { step.max(1.0).round() } else { step };
    let (a, b) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    let ticks = (0..=((b - a) / step).round() as i64)
        .map(|i| a + i as f64 * step)
        .map(|v| (v, if integer { format!("{}", v.round() as i64) } else { tick_label(v, step) }))
        .collect();
    Some(Axis { lo: a, hi: b, log, ticks })
}

/// The iteration axis `1..=n`, ticked at integers.
fn iteration_axis(n: usize) -> Axis {
    let hi = n.max(2) as f64;
    let step = nice_step((hi - 1.0) / 6.0).max(1.0).round();
    let mut ticks: Vec<(f64, String)> = vec![(1.0, "1".into())];
    let mut t = step;
    while t <= hi {
        if t > 1.5 {
            ticks.push((t, format!("{}", t as i64)));
        }
        t += step;
    }
    Axis { lo: 1.0, hi, log: false, ticks }
}

/// What both renderers draw, in pixels.
enum Mark {
    /// A polyline; `dashed` lines alternate 6-pixel dashes and gaps.
    Path {
        points: Vec<(f64, f64)>,
        color: Rgb,
        width: f64,
        dashed: bool,
    },
    Dot {
        at: (f64, f64),
        color: Rgb,
    },
    Rect {
        x0: f64,
        y0: f64,
        x1: f64,
        y1: f64,
    },
    /// Text with its anchor: `-1` start, `0` middle, `1` end; `y` is the baseline.
    Text {
        x: f64,
        y: f64,
        text: String,
        anchor: i8,
        bold: bool,
        color: Rgb,
    },
}

/// Frame, ticks and labels of a plot area with axes `xa` (horizontal) and `ya`.
fn frame(marks: &mut Vec<Mark>, (x0, y0, x1, y1): (f64, f64, f64, f64), xa: &Axis, ya: &Axis) {
    marks.push(Mark::Rect { x0, y0, x1, y1 });
    for (c, t) in &xa.ticks {
        let x = x0 + (x1 - x0) * (c - xa.lo) / (xa.hi - xa.lo);
        marks.push(Mark::Path { points: vec![(x, y1), (x, y1 + 4.0)], color: GREY, width: 1.0, dashed: false });
        marks.push(Mark::Text { x, y: y1 + 16.0, text: t.clone(), anchor: 0, bold: false, color: GREY });
    }
    for (c, t) in &ya.ticks {
        let y = y1 - (y1 - y0) * (c - ya.lo) / (ya.hi - ya.lo);
        marks.push(Mark::Path { points: vec![(x0 - 4.0, y), (x0, y)], color: GREY, width: 1.0, dashed: false });
        marks.push(Mark::Text { x: x0 - 7.0, y: y + 4.0, text: t.clone(), anchor: 1, bold: false, color: GREY });
    }
}

/// Legend entries left to right from `(x, y)`: a swatch, then the label.
fn legend(marks: &mut Vec<Mark>, (mut x, y): (f64, f64), entries: &[(String, Rgb, bool)]) {
    for (label, color, dashed) in entries {
        marks.push(Mark::Path {
            points: vec![(x, y - 4.0), (x + 18.0, y - 4.0)],
            color: *color,
            width: 2.0,
            dashed: *dashed,
        });
        marks.push(Mark::Text { x: x + 23.0, y, text: label.clone(), anchor: -1, bold: false, color: (40, 40, 40) });
        x += 23.0 + 7.0 * label.len() as f64 + 16.0;
    }
}

/// The marks of a run plot and its height.
fn run_marks(history: &[IterationRecord], tol: Option<f64>) -> (Vec<Mark>, usize) {
    let ps = panels(history, tol);
    let h = ps.len() * PANEL_H + 10;
    let xa = iteration_axis(history.len());
    let mut marks = vec![];
    for (idx, p) in ps.iter().enumerate() {
        let top = 10.0 + (idx * PANEL_H) as f64 + HEAD;
        let bottom = 10.0 + ((idx + 1) * PANEL_H) as f64 - FOOT;
        marks.push(Mark::Text {
            x: LEFT,
            y: top - 26.0,
            text: p.title.into(),
            anchor: -1,
            bold: true,
            color: (0, 0, 0),
        });
        let from = p.focus.unwrap_or(0);
        let values = p.lines.iter().flat_map(|l| l.values[from..].iter().flatten().copied());
        let Some(ya) = axis(values, p.reference.as_ref().map(|r| r.value), p.log, p.integer) else {
            marks.push(Mark::Rect { x0: LEFT, y0: top, x1: RIGHT, y1: bottom });
            let text = "no proven values in this run".to_string();
            marks.push(Mark::Text { x: LEFT + 10.0, y: top + 20.0, text, anchor: -1, bold: false, color: GREY });
            continue;
        };
        frame(&mut marks, (LEFT, top, RIGHT, bottom), &xa, &ya);
        let px = |i: usize| LEFT + (RIGHT - LEFT) * ((i + 1) as f64 - xa.lo) / (xa.hi - xa.lo);
        let py = |v: f64| ya.frac(v).filter(|f| (-1e-9..=1.0 + 1e-9).contains(f)).map(|f| bottom - (bottom - top) * f);
        let mut entries = vec![];
        if let Some(r) = &p.reference {
            if let Some(y) = py(r.value) {
                marks.push(Mark::Path { points: vec![(LEFT, y), (RIGHT, y)], color: GREY, width: 1.0, dashed: true });
                entries.push((r.label.clone(), GREY, true));
            }
        }
        for line in &p.lines {
            let pts: Vec<Option<(f64, f64)>> =
                line.values.iter().enumerate().map(|(i, v)| v.and_then(|v| Some((px(i), py(v)?)))).collect();
            for run in pts.split(|p| p.is_none()) {
                let points: Vec<(f64, f64)> = run.iter().flatten().copied().collect();
                if points.len() > 1 {
                    marks.push(Mark::Path { points, color: line.color, width: 2.0, dashed: line.dashed });
                }
            }
            if pts.len() <= 60 {
                for at in pts.iter().flatten() {
                    marks.push(Mark::Dot { at: *at, color: line.color });
                }
            }
            entries.push((line.label.to_string(), line.color, line.dashed));
        }
        let hidden = p.lines.iter().flat_map(|l| l.values.iter().flatten()).filter(|v| py(**v).is_none()).count();
        if hidden > 0 {
            let text = format!("axis scaled to iterations {} on ({hidden} earlier values lie outside it)", from + 1);
            marks.push(Mark::Text { x: LEFT, y: bottom + 30.0, text, anchor: -1, bold: false, color: GREY });
        }
        legend(&mut marks, (LEFT, top - 8.0), &entries);
        let text = "outer iteration".to_string();
        marks.push(Mark::Text { x: RIGHT, y: bottom + 30.0, text, anchor: 1, bold: false, color: GREY });
    }
    (marks, h)
}

fn svg_of(marks: &[Mark], w: usize, h: usize) -> String {
    let esc = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let rgb = |(r, g, b): Rgb| format!("rgb({r},{g},{b})");
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" \
         font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for m in marks {
        s += &match m {
            Mark::Path { points, color, width, dashed } => {
                let d: String = points
                    .iter()
                    .enumerate()
                    .map(|(j, (x, y))| format!("{}{x:.1},{y:.1} ", if j == 0 { "M" } else { "L" }))
                    .collect();
                let dash = if *dashed { " stroke-dasharray=\"6,4\"" } else { "" };
                format!("<path d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{width}\"{dash}/>\n", rgb(*color))
            }
            Mark::Dot { at: (x, y), color } => {
                format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"{}\"/>\n", rgb(*color))
            }
            Mark::Rect { x0, y0, x1, y1 } => format!(
                "<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n",
                x1 - x0,
                y1 - y0
            ),
            Mark::Text { x, y, text, anchor, bold, color } => format!(
                "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{}\" fill=\"{}\"{}>{}</text>\n",
                ["start", "middle", "end"][(*anchor + 1) as usize],
                rgb(*color),
                if *bold { " font-weight=\"bold\"" } else { "" },
                esc(text)
            ),
        };
    }
    s += "</svg>\n";
    s
}

fn png_of(marks: &[Mark], w: usize, h: usize) -> Vec<u8> {
    let mut cv = Canvas { w, h, px: vec![255; 3 * w * h] };
    for m in marks {
        match m {
            Mark::Path { points, color, width, dashed } => {
                let mut run = 0.0;
                for seg in points.windows(2) {
                    run = cv.line(seg[0], seg[1], *color, *width as i64, dashed.then_some(run));
                }
            }
            Mark::Dot { at: (x, y), color } => {
                cv.line((x - 1.5, *y), (x + 1.5, *y), *color, 4, None);
            }
            Mark::Rect { x0, y0, x1, y1 } => {
                let c = (70, 70, 70);
                for (a, b) in [((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))] {
                    cv.line((*a.0, *a.1), (*b.0, *b.1), c, 1, None);
                }
            }
            Mark::Text { x, y, text, anchor, bold: _, color } => {
                let width = (4 * text.chars().count()) as f64 * 2.0;
                let x0 = x - width * (*anchor as f64 + 1.0) / 2.0;
                cv.text(x0, y - 10.0, text, 2, *color);
            }
        }
    }
    encode_png(w, h, &cv.px)
}

/// SVG document of the run (`tol`: the relative tolerance drawn on the gap panel).
pub fn svg(history: &[IterationRecord], tol: Option<f64>) -> String {
    let (marks, h) = run_marks(history, tol);
    svg_of(&marks, W, h)
}

/// PNG image of the run.
pub fn png(history: &[IterationRecord], tol: Option<f64>) -> Vec<u8> {
    let (marks, h) = run_marks(history, tol);
    png_of(&marks, W, h)
}

/// 3-pixel-wide bitmap glyphs, six rows (the last is the descender of g, j, p, q, y), `#` for ink.
fn glyph(c: char) -> [&'static str; 6] {
    const E: &str = "...";
    match c {
        '0' => ["###", "#.#", "#.#", "#.#", "###", E],
        '1' => [".#.", "##.", ".#.", ".#.", "###", E],
        '2' => ["###", "..#", "###", "#..", "###", E],
        '3' => ["###", "..#", "###", "..#", "###", E],
        '4' => ["#.#", "#.#", "###", "..#", "..#", E],
        '5' => ["###", "#..", "###", "..#", "###", E],
        '6' => ["###", "#..", "###", "#.#", "###", E],
        '7' => ["###", "..#", "..#", "..#", "..#", E],
        '8' => ["###", "#.#", "###", "#.#", "###", E],
        '9' => ["###", "#.#", "###", "..#", "###", E],
        '.' => [E, E, E, E, ".#.", E],
        ',' => [E, E, E, ".#.", ".#.", "#.."],
        '-' => [E, E, "###", E, E, E],
        '+' => [E, ".#.", "###", ".#.", E, E],
        '*' => ["#.#", ".#.", "###", ".#.", "#.#", E],
        '(' => ["..#", ".#.", ".#.", ".#.", "..#", E],
        ')' => ["#..", ".#.", ".#.", ".#.", "#..", E],
        ':' => [E, ".#.", E, ".#.", E, E],
        ';' => [E, ".#.", E, ".#.", ".#.", "#.."],
        '=' => [E, "###", E, "###", E, E],
        '_' => [E, E, E, E, E, "###"],
        '/' => ["..#", "..#", ".#.", "#..", "#..", E],
        '\\' => ["#..", "#..", ".#.", "..#", "..#", E],
        '%' => ["#.#", "..#", ".#.", "#..", "#.#", E],
        '<' => ["..#", ".#.", "#..", ".#.", "..#", E],
        '>' => ["#..", ".#.", "..#", ".#.", "#..", E],
        '^' => [".#.", "#.#", E, E, E, E],
        '[' => ["##.", "#..", "#..", "#..", "##.", E],
        ']' => [".##", "..#", "..#", "..#", ".##", E],
        '|' => [".#.", ".#.", ".#.", ".#.", ".#.", ".#."],
        '!' => [".#.", ".#.", ".#.", E, ".#.", E],
        '?' => ["##.", "..#", ".#.", E, ".#.", E],
        '\'' => [".#.", ".#.", E, E, E, E],
        '"' => ["#.#", "#.#", E, E, E, E],
        '#' => ["#.#", "###", "#.#", "###", "#.#", E],
        '&' => [".#.", "#.#", ".#.", "#.#", ".##", E],
        '~' => [E, ".##", "##.", E, E, E],
        'A' => [".#.", "#.#", "###", "#.#", "#.#", E],
        'B' => ["##.", "#.#", "##.", "#.#", "##.", E],
        'C' => [".##", "#..", "#..", "#..", ".##", E],
        'D' => ["##.", "#.#", "#.#", "#.#", "##.", E],
        'E' => ["###", "#..", "##.", "#..", "###", E],
        'F' => ["###", "#..", "##.", "#..", "#..", E],
        'G' => [".##", "#..", "#.#", "#.#", ".##", E],
        'H' => ["#.#", "#.#", "###", "#.#", "#.#", E],
        'I' => ["###", ".#.", ".#.", ".#.", "###", E],
        'J' => ["..#", "..#", "..#", "#.#", ".#.", E],
        'K' => ["#.#", "#.#", "##.", "#.#", "#.#", E],
        'L' => ["#..", "#..", "#..", "#..", "###", E],
        'M' => ["#.#", "###", "###", "#.#", "#.#", E],
        'N' => ["##.", "#.#", "#.#", "#.#", "#.#", E],
        'O' => [".#.", "#.#", "#.#", "#.#", ".#.", E],
        'P' => ["##.", "#.#", "##.", "#..", "#..", E],
        'Q' => [".#.", "#.#", "#.#", "##.", ".##", E],
        'R' => ["##.", "#.#", "##.", "#.#", "#.#", E],
        'S' => [".##", "#..", ".#.", "..#", "##.", E],
        'T' => ["###", ".#.", ".#.", ".#.", ".#.", E],
        'U' => ["#.#", "#.#", "#.#", "#.#", "###", E],
        'V' => ["#.#", "#.#", "#.#", "#.#", ".#.", E],
        'W' => ["#.#", "#.#", "###", "###", "#.#", E],
        'X' => ["#.#", "#.#", ".#.", "#.#", "#.#", E],
        'Y' => ["#.#", "#.#", ".#.", ".#.", ".#.", E],
        'Z' => ["###", "..#", ".#.", "#..", "###", E],
        'a' => [E, ".##", "#.#", "#.#", ".##", E],
        'b' => ["#..", "##.", "#.#", "#.#", "##.", E],
        'c' => [E, ".##", "#..", "#..", ".##", E],
        'd' => ["..#", ".##", "#.#", "#.#", ".##", E],
        'e' => [E, ".#.", "###", "#..", ".##", E],
        'f' => [".##", "#..", "###", "#..", "#..", E],
        'g' => [E, ".##", "#.#", ".##", "..#", "##."],
        'h' => ["#..", "##.", "#.#", "#.#", "#.#", E],
        'i' => [".#.", E, "##.", ".#.", "###", E],
        'j' => ["..#", E, "..#", "..#", "#.#", ".#."],
        'k' => ["#..", "#.#", "##.", "##.", "#.#", E],
        'l' => ["##.", ".#.", ".#.", ".#.", "###", E],
        'm' => [E, "###", "###", "#.#", "#.#", E],
        'n' => [E, "##.", "#.#", "#.#", "#.#", E],
        'o' => [E, ".#.", "#.#", "#.#", ".#.", E],
        'p' => [E, "##.", "#.#", "#.#", "##.", "#.."],
        'q' => [E, ".##", "#.#", "#.#", ".##", "..#"],
        'r' => [E, "#.#", "##.", "#..", "#..", E],
        's' => [E, ".##", "#..", "..#", "##.", E],
        't' => [".#.", "###", ".#.", ".#.", "..#", E],
        'u' => [E, "#.#", "#.#", "#.#", ".##", E],
        'v' => [E, "#.#", "#.#", "#.#", ".#.", E],
        'w' => [E, "#.#", "#.#", "###", "###", E],
        'x' => [E, "#.#", ".#.", ".#.", "#.#", E],
        'y' => [E, "#.#", "#.#", ".##", "..#", "##."],
        'z' => [E, "###", ".#.", "#..", "###", E],
        _ => [E; 6],
    }
}

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let o = 3 * (y as usize * self.w + x as usize);
            self.px[o..o + 3].copy_from_slice(&[c.0, c.1, c.2]);
        }
    }

    /// A line of `width` pixels; with `dash = Some(run)` (the length already drawn along a polyline), dashes of 6
    /// and gaps of 4 pixels. Returns the length drawn so far.
    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: Rgb, width: i64, dash: Option<f64>) -> f64 {
        let len = (x1 - x0).hypot(y1 - y0);
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            if dash.is_some_and(|run| (run + t * len) % 10.0 >= 6.0) {
                continue;
            }
            let (x, y) = ((x0 + t * (x1 - x0)).round() as i64, (y0 + t * (y1 - y0)).round() as i64);
            for dx in 0..width {
                for dy in 0..width {
                    self.set(x + dx - width / 2, y + dy - width / 2, c);
                }
            }
        }
        dash.unwrap_or(0.0) + len
    }

    /// Text from its top-left corner, each glyph pixel a `scale x scale` block.
    fn text(&mut self, x: f64, y: f64, s: &str, scale: i64, color: Rgb) {
        let mut cx = x as i64;
        for ch in s.chars() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for (col, b) in bits.bytes().enumerate() {
                    if b == b'#' {
                        for a in 0..scale {
                            for b in 0..scale {
                                self.set(cx + col as i64 * scale + a, y as i64 + row as i64 * scale + b, color);
                            }
                        }
                    }
                }
            }
            cx += 4 * scale;
        }
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Bits written least significant first, as deflate (RFC 1951 section 3.1.1) packs them.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn bits(&mut self, v: u32, n: u32) {
        self.acc |= (v as u64) << self.n;
        self.n += n;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    /// A Huffman code, sent most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        self.bits(code.reverse_bits() >> (32 - len), len);
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

const LENGTH_BASE: [u16; 29] =
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA: [u8; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
    8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] =
    [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

/// The fixed Huffman code of a literal/length symbol (RFC 1951 section 3.2.6).
fn fixed_code(w: &mut BitWriter, sym: u32) {
    match sym {
        0..=143 => w.code(0x30 + sym, 8),
        144..=255 => w.code(0x190 + sym - 144, 9),
        256..=279 => w.code(sym - 256, 7),
        _ => w.code(0xC0 + sym - 280, 8),
    }
}

/// Deflate (one block with the fixed Huffman codes) of `data`, with a greedy LZ77 over a 32 KiB window whose
/// matches come from a hash of the next three bytes.
fn deflate(data: &[u8]) -> Vec<u8> {
    const WINDOW: usize = 32768;
    const HASH: usize = 1 << 15;
    let mut w = BitWriter { out: Vec::with_capacity(data.len() / 8 + 64), acc: 0, n: 0 };
    w.bits(1, 1); // final block
    w.bits(1, 2); // fixed Huffman codes
    let mut head = vec![usize::MAX; HASH];
    let mut prev = vec![usize::MAX; WINDOW];
    let hash = |i: usize| {
        ((data[i] as usize) << 10 ^ (data[i + 1] as usize) << 5 ^ data[i + 2] as usize).wrapping_mul(2654435761) >> 7
            & (HASH - 1)
    };
    let insert = |i: usize, head: &mut Vec<usize>, prev: &mut Vec<usize>| {
        if i + 2 < data.len() {
            let h = hash(i);
            prev[i % WINDOW] = head[h];
            head[h] = i;
        }
    };
    let mut i = 0;
    while i < data.len() {
        let (mut best_len, mut best_dist) = (0, 0);
        if i + 2 < data.len() {
            let mut cand = head[hash(i)];
            let mut chain = 0;
            while cand != usize::MAX && i - cand < WINDOW && chain < 32 {
                let max = (data.len() - i).min(258);
                let l = (0..max).take_while(|&k| data[cand + k] == data[i + k]).count();
                if l > best_len {
                    (best_len, best_dist) = (l, i - cand);
                    if l == max {
                        break;
                    }
                }
                let next = prev[cand % WINDOW];
                if next == usize::MAX || next >= cand {
                    break;
                }
                cand = next;
                chain += 1;
            }
        }
        if best_len >= 3 {
            let li = LENGTH_BASE.iter().rposition(|&b| b as usize <= best_len).unwrap_or(0);
            fixed_code(&mut w, 257 + li as u32);
            w.bits((best_len - LENGTH_BASE[li] as usize) as u32, LENGTH_EXTRA[li] as u32);
            let di = DIST_BASE.iter().rposition(|&b| b as usize <= best_dist).unwrap_or(0);
            w.code(di as u32, 5);
            w.bits((best_dist - DIST_BASE[di] as usize) as u32, DIST_EXTRA[di] as u32);
            for k in i..i + best_len {
                insert(k, &mut head, &mut prev);
            }
            i += best_len;
        } else {
            fixed_code(&mut w, data[i] as u32);
            insert(i, &mut head, &mut prev);
            i += 1;
        }
    }
    fixed_code(&mut w, 256);
    w.finish()
}

/// PNG bytes of an RGB image: rows with the "up" filter, one zlib stream of [`deflate`].
fn encode_png(w: usize, h: usize, rgb: &[u8]) -> Vec<u8> {
    let stride = 3 * w;
    let mut raw = Vec::with_capacity(h * (stride + 1));
    for (r, row) in rgb.chunks(stride).enumerate() {
        raw.push(2);
        if r == 0 {
            raw.extend_from_slice(row);
        } else {
            let up = &rgb[(r - 1) * stride..r * stride];
            raw.extend(row.iter().zip(up).map(|(a, b)| a.wrapping_sub(*b)));
        }
    }
    let mut z = vec![0x78, 0x01];
    z.extend_from_slice(&deflate(&raw));
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend_from_slice(data);
        out.extend_from_slice(&c);
        out.extend_from_slice(&crc32(&c).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(w as u32).to_be_bytes());
    ihdr.extend_from_slice(&(h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &z);
    chunk(b"IEND", &[]);
    out
}

/// Writes the plot to `path` as SVG or PNG (by extension), atomically.
pub fn write_plot(path: impl AsRef<Path>, history: &[IterationRecord], tol: Option<f64>) -> Result<()> {
    let path = path.as_ref();
    let bytes = match plot_format(path)? {
        "svg" => svg(history, tol).into_bytes(),
        _ => png(history, tol),
    };
    crate::io::write_atomic(path, &bytes)
}

/// `svg` or `png`, from the plot path's extension (checked before a run, so that a bad name fails early).
pub fn plot_format(path: &Path) -> Result<&'static str> {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase().as_str() {
        "svg" => Ok("svg"),
        "png" => Ok("png"),
        _ => Err(GonnError::format(path, "plot files must end in .svg or .png")),
    }
}

/// A line chart of several labelled series (used by `gonn experiment`), drawn as SVG or PNG.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Logarithmic axes (positive values only; others are skipped).
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
}

/// One line of a [`Chart`].
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

const PALETTE: [Rgb; 8] = [BLUE, RED, GREEN, ORANGE, PURPLE, (140, 86, 75), (227, 119, 194), (23, 190, 207)];
const CW: usize = 1040;
const CH: usize = 460;
const CL: f64 = 90.0;
const CR: f64 = 620.0;
const CT: f64 = 40.0;
const CB: f64 = 380.0;

impl Chart {
    fn marks(&self) -> Vec<Mark> {
        let title = Mark::Text { x: CL, y: 24.0, text: self.title.clone(), anchor: -1, bold: true, color: (0, 0, 0) };
        let mut marks = vec![title];
        let all = || self.series.iter().flat_map(|s| s.points.iter());
        let (Some(xa), Some(ya)) =
            (axis(all().map(|p| p.0), None, self.log_x, false), axis(all().map(|p| p.1), None, self.log_y, false))
        else {
            marks.push(Mark::Rect { x0: CL, y0: CT, x1: CR, y1: CB });
            return marks;
        };
        frame(&mut marks, (CL, CT, CR, CB), &xa, &ya);
        let log = |b: bool| if b { " (log scale)" } else { "" };
        let color = (60, 60, 60);
        let text = format!("x: {}{}", self.x_label, log(self.log_x));
        marks.push(Mark::Text { x: 0.5 * (CL + CR), y: CB + 36.0, text, anchor: 0, bold: false, color });
        let text = format!("y: {}{}", self.y_label, log(self.log_y));
        marks.push(Mark::Text { x: 0.5 * (CL + CR), y: CB + 54.0, text, anchor: 0, bold: false, color });
        let mut seen: Vec<&str> = vec![];
        for (i, s) in self.series.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|&(x, y)| Some((CL + (CR - CL) * xa.frac(x)?, CB - (CB - CT) * ya.frac(y)?)))
                .collect();
            if pts.len() > 1 {
                marks.push(Mark::Path { points: pts.clone(), color: c, width: 2.0, dashed: false });
            }
            for at in pts {
                marks.push(Mark::Dot { at, color: c });
            }
            if !seen.contains(&s.label.as_str()) {
                let ly = CT + 10.0 + 18.0 * seen.len() as f64;
                marks.push(Mark::Path {
                    points: vec![(CR + 14.0, ly), (CR + 30.0, ly)],
                    color: c,
                    width: 3.0,
                    dashed: false,
                });
                let text = s.label.clone();
                marks.push(Mark::Text {
                    x: CR + 36.0,
                    y: ly + 4.0,
                    text,
                    anchor: -1,
                    bold: false,
                    color: (40, 40, 40),
                });
                seen.push(&s.label);
            }
        }
        marks
    }

    /// SVG document.
    pub fn svg(&self) -> String {
        svg_of(&self.marks(), CW, CH)
    }

    /// PNG image.
    pub fn png(&self) -> Vec<u8> {
        png_of(&self.marks(), CW, CH)
    }

    /// Writes `stem.svg` and `stem.png` into `dir`, atomically; returns the two paths.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<[std::path::PathBuf; 2]> {
        let svg_path = dir.join(format!("{stem}.svg"));
        let png_path = dir.join(format!("{stem}.png"));
        crate::io::write_atomic(&svg_path, self.svg().as_bytes())?;
        crate::io::write_atomic(&png_path, &self.png())?;
        Ok([svg_path, png_path])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal inflater for the fixed-Huffman blocks that [`deflate`] writes (RFC 1951 section 3.2.6).
    fn inflate_fixed(z: &[u8]) -> Vec<u8> {
        let mut pos = 0usize;
        let mut bit = |n: u32| -> u32 {
            let mut v = 0;
            for k in 0..n {
                v |= (((z[pos / 8] >> (pos % 8)) & 1) as u32) << k;
                pos += 1;
            }
            v
        };
        assert_eq!(bit(1), 1);
        assert_eq!(bit(2), 1);
        let mut out: Vec<u8> = vec![];
        loop {
            let mut code = 0u32;
            let mut len = 0;
            let sym = loop {
                code = (code << 1) | bit(1);
                len += 1;
                match (len, code) {
                    (7, 0..=23) => break 256 + code,
                    (8, 0x30..=0xBF) => break code - 0x30,
                    (8, 0xC0..=0xC7) => break 280 + code - 0xC0,
                    (9, 0x190..=0x1FF) => break 144 + code - 0x190,
                    _ => assert!(len < 9),
                }
            };
            match sym {
                0..=255 => out.push(sym as u8),
                256 => return out,
                _ => {
                    let li = (sym - 257) as usize;
                    let l = LENGTH_BASE[li] as usize + bit(LENGTH_EXTRA[li] as u32) as usize;
                    let mut d = 0;
                    for _ in 0..5 {
                        d = (d << 1) | bit(1);
                    }
                    let di = d as usize;
                    let dist = DIST_BASE[di] as usize + bit(DIST_EXTRA[di] as u32) as usize;
                    for _ in 0..l {
                        out.push(out[out.len() - dist]);
                    }
                }
            }
        }
    }

    #[test]
    fn deflate_round_trips() {
        let mut rng = crate::numerics::rng::Rng::new(3);
        let mut data: Vec<u8> = (0..5000).map(|i| (i % 7) as u8).collect();
        data.extend((0..3000).map(|_| (rng.uniform() * 256.0) as u8));
        data.extend(std::iter::repeat_n(0u8, 70000));
        data.extend(b"abcabcabcabd");
        assert_eq!(inflate_fixed(&deflate(&data)), data);
        assert!(deflate(&vec![9u8; 100_000]).len() < 1000);
    }

    fn record(outer: usize, objective: f64, gap: Option<f64>, r: usize) -> IterationRecord {
        IterationRecord {
            outer,
            subnetworks: r,
            objective,
            polar_lower: 1.0 + 1.0 / outer as f64,
            polar_upper: gap.map(|_| 1.5 + 1.0 / outer as f64),
            gap_bound: gap,
            descent_sweeps: 1,
            seconds: outer as f64,
            action: crate::meta::Action::Grow,
        }
    }

    #[test]
    fn ticks_are_distinct_and_flat_series_stay_flat() {
        // A change in the fifth digit does not fill the axis.
        let a = axis([1.2345, 1.23456].into_iter(), None, false, false).unwrap();
        assert!(a.hi - a.lo >= 1e-3 * 1.2345, "{a:?}");
        let labels: Vec<&String> = a.ticks.iter().map(|t| &t.1).collect();
        assert!(labels.windows(2).all(|w| w[0] != w[1]), "{labels:?}");
        // A sub-decade log range still gets two different decade labels.
        let a = axis([12.0, 15.0].into_iter(), None, true, false).unwrap();
        assert_eq!(a.ticks.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(), ["1e1", "1e2"]);
        // A constant count ticks at integers, without padded fractions.
        let a = axis([4.0, 4.0].into_iter(), None, false, true).unwrap();
        assert!(a.ticks.iter().all(|t| !t.1.contains('.')) && a.ticks.len() >= 2, "{a:?}");
        let it = iteration_axis(101);
        assert!(it.ticks.iter().all(|t| !t.1.contains('.')), "{it:?}");
        for (lo, hi) in [(0.0, 1.0), (3.0, 3.2), (-5.0, 1e6), (1e-9, 3e-9), (99999.0, 100001.0)] {
            let a = axis([lo, hi].into_iter(), None, false, false).unwrap();
            assert!(a.lo <= lo && a.hi >= hi && a.ticks.len() >= 2 && a.ticks.len() <= 12, "{lo} {hi} {a:?}");
            let labels: Vec<&String> = a.ticks.iter().map(|t| &t.1).collect();
            assert!(labels.windows(2).all(|w| w[0] != w[1]), "{labels:?}");
        }
    }

    #[test]
    fn run_plot_shows_the_four_quantities() {
        let h: Vec<IterationRecord> =
            (1..=6).map(|k| record(k, 10.0 / k as f64, (k > 1).then(|| 4.0 / (k * k) as f64), k.min(4))).collect();
        let s = svg(&h, Some(1e-6));
        for want in
            ["objective f(W)", "lower bound on F*", "threshold 1", "proven upper bound", "subnetworks", "tol 1e-6"]
        {
            assert!(s.contains(want), "{want}");
        }
        let p = png(&h, Some(1e-6));
        assert!(p.starts_with(b"\x89PNG") && p.len() < 60_000, "{} bytes", p.len());
    }
}
