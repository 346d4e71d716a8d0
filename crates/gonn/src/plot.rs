//! Run plots: objective, gap bound (log scale) and number of subnetworks against outer iterations, as SVG or PNG
//! (a small built-in rasterizer and PNG encoder, so that no plotting dependency is needed).

use std::path::Path;

use crate::error::{GonnError, Result};
use crate::meta::IterationRecord;

const W: usize = 760;
const PANEL_H: usize = 190;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 730.0;

struct Panel {
    title: &'static str,
    values: Vec<Option<f64>>,
    log: bool,
    color: (u8, u8, u8),
}

fn panels(history: &[IterationRecord]) -> Vec<Panel> {
    vec![
        Panel {
            title: "objective f(W)",
            values: history.iter().map(|r| Some(r.objective)).collect(),
            log: false,
            color: (31, 119, 180),
        },
        Panel {
            title: "gap bound f(W) - F* (proven, log scale)",
            values: history.iter().map(|r| r.gap_bound.filter(|g| *g > 0.0)).collect(),
            log: true,
            color: (214, 39, 40),
        },
        Panel {
            title: "subnetworks r",
            values: history.iter().map(|r| Some(r.subnetworks as f64)).collect(),
            log: false,
            color: (44, 160, 44),
        },
    ]
}

/// Smallest and largest value of a panel (in plot coordinates: log10 when `log`).
fn data_range(p: &Panel) -> Option<(f64, f64)> {
    let vals = p.values.iter().flatten().map(|v| if p.log { v.log10() } else { *v }).filter(|v| v.is_finite());
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    lo.is_finite().then_some((lo, hi))
}

/// Axis range of a panel: the data range with a margin.
fn range(p: &Panel) -> Option<(f64, f64)> {
    let (lo, hi) = data_range(p)?;
    let pad = if hi > lo { 0.05 * (hi - lo) } else { lo.abs().max(1.0) * 0.1 };
    Some((lo - pad, hi + pad))
}

/// Polyline points `(x, y)` in pixels for panel `idx`; `None` breaks the line.
fn points(p: &Panel, idx: usize, n: usize) -> Vec<Option<(f64, f64)>> {
    let Some((lo, hi)) = range(p) else { return vec![] };
    let top = 30.0 + (idx * PANEL_H) as f64;
    let bottom = top + PANEL_H as f64 - 50.0;
    p.values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.map(|v| {
                let y = if p.log { v.log10() } else { v };
                let x = if n > 1 { LEFT + (RIGHT - LEFT) * i as f64 / (n - 1) as f64 } else { 0.5 * (LEFT + RIGHT) };
                (x, bottom - (bottom - top) * (y - lo) / (hi - lo))
            })
        })
        .collect()
}

/// Tick labels at the smallest and largest data values: `(value, pixel y)`.
fn ticks(p: &Panel, idx: usize) -> Vec<(f64, f64)> {
    let (Some((dlo, dhi)), Some((lo, hi))) = (data_range(p), range(p)) else { return vec![] };
    let top = 30.0 + (idx * PANEL_H) as f64;
    let bottom = top + PANEL_H as f64 - 50.0;
    let y = |v: f64| bottom - (bottom - top) * (v - lo) / (hi - lo);
    if dhi > dlo {
        vec![(dhi, y(dhi)), (dlo, y(dlo))]
    } else {
        vec![(dlo, y(dlo))]
    }
}

fn fmt_tick(v: f64, log: bool) -> String {
    if log {
        format!("1e{}", v.round() as i64)
    } else if v.abs() >= 1e4 || (v != 0.0 && v.abs() < 1e-2) {
        format!("{v:.3e}")
    } else {
        format!("{v:.3}")
    }
}

/// SVG document of the run.
pub fn svg(history: &[IterationRecord]) -> String {
    let ps = panels(history);
    let h = ps.len() * PANEL_H + 30;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let n = history.len();
    for (idx, p) in ps.iter().enumerate() {
        let top = 30.0 + (idx * PANEL_H) as f64;
        let bottom = top + PANEL_H as f64 - 50.0;
        s += &format!("<text x=\"{LEFT}\" y=\"{}\" font-weight=\"bold\">{}</text>\n", top - 8.0, p.title);
        s += &format!(
            "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n",
            RIGHT - LEFT,
            bottom - top
        );
        let tk = ticks(p, idx);
        for &(v, y) in &tk {
            s += &format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
                LEFT - 6.0,
                y + 4.0,
                fmt_tick(v, p.log)
            );
        }
        if tk.is_empty() {
            s += &format!("<text x=\"{}\" y=\"{}\" fill=\"#888\">no proven values</text>\n", LEFT + 10.0, top + 20.0);
        }
        let mut path = String::new();
        let mut pen = false;
        for pt in points(p, idx, n) {
            match pt {
                Some((x, y)) => {
                    path += &format!("{}{x:.1},{y:.1} ", if pen { "L" } else { "M" });
                    pen = true;
                }
                None => pen = false,
            }
        }
        let (r, g, b) = p.color;
        s += &format!("<path d=\"{path}\" fill=\"none\" stroke=\"rgb({r},{g},{b})\" stroke-width=\"2\"/>\n");
        for (x, y) in points(p, idx, n).into_iter().flatten() {
            s += &format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"rgb({r},{g},{b})\"/>\n");
        }
        s += &format!(
            "<text x=\"{LEFT}\" y=\"{}\">1</text><text x=\"{RIGHT}\" y=\"{}\" text-anchor=\"end\">{n}</text>\n",
            bottom + 16.0,
            bottom + 16.0
        );
        s += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">outer iteration</text>\n",
            0.5 * (LEFT + RIGHT),
            bottom + 16.0
        );
    }
    s += "</svg>\n";
    s
}

/// 3 x 5 bitmap glyphs (rows top to bottom, 3 bits each) for the PNG labels.
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        '+' => [0, 2, 7, 2, 0],
        '*' => [5, 2, 7, 2, 5],
        '(' => [1, 2, 2, 2, 1],
        ')' => [4, 2, 2, 2, 4],
        ',' => [0, 0, 0, 2, 4],
        ':' => [0, 2, 0, 2, 0],
        '=' => [0, 7, 0, 7, 0],
        '_' => [0, 0, 0, 0, 7],
        '/' => [1, 1, 2, 4, 4],
        '%' => [5, 1, 2, 4, 5],
        '<' => [1, 2, 4, 2, 1],
        '>' => [4, 2, 1, 2, 4],
        '^' => [2, 5, 0, 0, 0],
        '[' => [3, 2, 2, 2, 3],
        ']' => [6, 2, 2, 2, 6],
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [7, 4, 4, 4, 7],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'G' => [7, 4, 5, 5, 7],
        'H' => [5, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'J' => [1, 1, 1, 5, 7],
        'K' => [5, 5, 6, 5, 5],
        'L' => [4, 4, 4, 4, 7],
        'M' => [5, 7, 7, 5, 5],
        'N' => [6, 5, 5, 5, 5],
        'O' => [7, 5, 5, 5, 7],
        'P' => [7, 5, 7, 4, 4],
        'Q' => [7, 5, 5, 7, 1],
        'R' => [7, 5, 6, 5, 5],
        'S' => [7, 4, 7, 1, 7],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'V' => [5, 5, 5, 5, 2],
        'W' => [5, 5, 7, 7, 5],
        'X' => [5, 5, 2, 5, 5],
        'Y' => [5, 5, 2, 2, 2],
        'Z' => [7, 1, 2, 4, 7],
        _ => [0; 5],
    }
}

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, c: (u8, u8, u8)) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let o = 3 * (y as usize * self.w + x as usize);
            self.px[o..o + 3].copy_from_slice(&[c.0, c.1, c.2]);
        }
    }
    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: (u8, u8, u8), width: i64) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = ((x0 + t * (x1 - x0)).round() as i64, (y0 + t * (y1 - y0)).round() as i64);
            for dx in 0..width {
                for dy in 0..width {
                    self.set(x + dx - width / 2, y + dy - width / 2, c);
                }
            }
        }
    }
    fn text(&mut self, x: f64, y: f64, s: &str, scale: i64) {
        let mut cx = x as i64;
        for ch in s.chars() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        for a in 0..scale {
                            for b in 0..scale {
                                self.set(cx + col * scale + a, y as i64 + row as i64 * scale + b, (40, 40, 40));
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

/// PNG bytes of an RGB image (zlib stream of stored deflate blocks).
fn encode_png(w: usize, h: usize, rgb: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(h * (3 * w + 1));
    for row in rgb.chunks(3 * w) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut z = vec![0x78, 0x01];
    for (i, block) in raw.chunks(65535).enumerate() {
        let last = (i + 1) * 65535 >= raw.len();
        z.push(last as u8);
        z.extend_from_slice(&(block.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(block.len() as u16)).to_le_bytes());
        z.extend_from_slice(block);
    }
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

/// PNG image of the run.
pub fn png(history: &[IterationRecord]) -> Vec<u8> {
    let ps = panels(history);
    let h = ps.len() * PANEL_H + 30;
    let mut cv = Canvas { w: W, h, px: vec![255; 3 * W * h] };
    let n = history.len();
    for (idx, p) in ps.iter().enumerate() {
        let top = 30.0 + (idx * PANEL_H) as f64;
        let bottom = top + PANEL_H as f64 - 50.0;
        cv.text(LEFT, top - 16.0, p.title, 2);
        let grey = (90, 90, 90);
        cv.line((LEFT, top), (RIGHT, top), grey, 1);
        cv.line((LEFT, bottom), (RIGHT, bottom), grey, 1);
        cv.line((LEFT, top), (LEFT, bottom), grey, 1);
        cv.line((RIGHT, top), (RIGHT, bottom), grey, 1);
        for (v, y) in ticks(p, idx) {
            let t = fmt_tick(v, p.log);
            cv.text(LEFT - 6.0 - (8 * t.len()) as f64, y - 5.0, &t, 2);
        }
        let pts = points(p, idx, n);
        for w in pts.windows(2) {
            if let (Some(a), Some(b)) = (w[0], w[1]) {
                cv.line(a, b, p.color, 2);
            }
        }
        for (x, y) in pts.into_iter().flatten() {
            cv.line((x - 2.0, y), (x + 2.0, y), p.color, 3);
        }
        cv.text(LEFT, bottom + 8.0, "1", 2);
        let last = n.to_string();
        cv.text(RIGHT - (8 * last.len()) as f64, bottom + 8.0, &last, 2);
        cv.text(0.5 * (LEFT + RIGHT) - 60.0, bottom + 8.0, "outer iteration", 2);
    }
    encode_png(W, h, &cv.px)
}

/// Writes the plot to `path` as SVG or PNG (by extension), atomically.
pub fn write_plot(path: impl AsRef<Path>, history: &[IterationRecord]) -> Result<()> {
    let path = path.as_ref();
    let bytes = match plot_format(path)? {
        "svg" => svg(history).into_bytes(),
        _ => png(history),
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

/// Tick labels with their pixel positions.
type Ticks = Vec<(String, f64)>;

/// One line of a [`Chart`].
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

const PALETTE: [(u8, u8, u8); 8] = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (23, 190, 207),
];
const CW: f64 = 1040.0;
const CH: f64 = 440.0;
const CL: f64 = 90.0;
const CR: f64 = 560.0;
const CT: f64 = 40.0;
const CB: f64 = 380.0;

impl Chart {
    /// Plot coordinates of a value (log10 on log axes), or `None` when it cannot be drawn.
    fn coord(v: f64, log: bool) -> Option<f64> {
        let c = if log { (v > 0.0).then(|| v.log10())? } else { v };
        c.is_finite().then_some(c)
    }

    /// The axis ranges `((x0, x1), (y0, y1))` in plot coordinates, padded.
    fn ranges(&self) -> Option<((f64, f64), (f64, f64))> {
        let pts = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter())
                .filter_map(|&(x, y)| Some((Self::coord(x, self.log_x)?, Self::coord(y, self.log_y)?)))
        };
        let fold = |it: &mut dyn Iterator<Item = f64>| {
            it.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)))
        };
        let (x0, x1) = fold(&mut pts().map(|p| p.0));
        let (y0, y1) = fold(&mut pts().map(|p| p.1));
        if !x0.is_finite() {
            return None;
        }
        let pad = |lo: f64, hi: f64| {
            let d = if hi > lo { 0.05 * (hi - lo) } else { lo.abs().max(1.0) * 0.1 };
            (lo - d, hi + d)
        };
        Some((pad(x0, x1), pad(y0, y1)))
    }

    /// Pixel polylines of each series.
    fn lines(&self) -> Vec<Vec<(f64, f64)>> {
        let Some(((x0, x1), (y0, y1))) = self.ranges() else { return vec![] };
        self.series
            .iter()
            .map(|s| {
                s.points
                    .iter()
                    .filter_map(|&(x, y)| {
                        let (cx, cy) = (Self::coord(x, self.log_x)?, Self::coord(y, self.log_y)?);
                        Some((CL + (CR - CL) * (cx - x0) / (x1 - x0), CB - (CB - CT) * (cy - y0) / (y1 - y0)))
                    })
                    .collect()
            })
            .collect()
    }

    /// Tick labels: `(text, pixel)` at both ends of each axis.
    fn ticks(&self) -> (Ticks, Ticks) {
        let Some(((x0, x1), (y0, y1))) = self.ranges() else { return (vec![], vec![]) };
        let label = |c: f64, log: bool| if log { fmt_tick(10f64.powf(c), false) } else { fmt_tick(c, false) };
        let xs = [0.05, 0.95].map(|f| (label(x0 + f * (x1 - x0), self.log_x), CL + f * (CR - CL)));
        let ys = [0.05, 0.95].map(|f| (label(y0 + f * (y1 - y0), self.log_y), CB - f * (CB - CT)));
        (xs.to_vec(), ys.to_vec())
    }

    /// SVG document.
    pub fn svg(&self) -> String {
        let esc = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{CW}\" height=\"{CH}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        s += &format!("<text x=\"{CL}\" y=\"24\" font-weight=\"bold\" font-size=\"14\">{}</text>\n", esc(&self.title));
        s += &format!(
            "<rect x=\"{CL}\" y=\"{CT}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n",
            CR - CL,
            CB - CT
        );
        let (xt, yt) = self.ticks();
        for (t, x) in &xt {
            s += &format!("<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", CB + 16.0, esc(t));
        }
        for (t, y) in &yt {
            s += &format!("<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n", CL - 6.0, y + 4.0, esc(t));
        }
        let log = |b: bool| if b { " (log scale)" } else { "" };
        s += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">{}{}</text>\n",
            0.5 * (CL + CR),
            CB + 36.0,
            esc(&self.x_label),
            log(self.log_x)
        );
        s += &format!(
            "<text transform=\"translate(22,{}) rotate(-90)\" text-anchor=\"middle\" fill=\"#444\">{}{}</text>\n",
            0.5 * (CT + CB),
            esc(&self.y_label),
            log(self.log_y)
        );
        for (i, (line, series)) in self.lines().iter().zip(&self.series).enumerate() {
            let (r, g, b) = PALETTE[i % PALETTE.len()];
            let path: String = line
                .iter()
                .enumerate()
                .map(|(j, (x, y))| format!("{}{x:.1},{y:.1} ", if j == 0 { "M" } else { "L" }))
                .collect();
            s += &format!("<path d=\"{path}\" fill=\"none\" stroke=\"rgb({r},{g},{b})\" stroke-width=\"2\"/>\n");
            for (x, y) in line {
                s += &format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"rgb({r},{g},{b})\"/>\n");
            }
            let ly = CT + 10.0 + 18.0 * i as f64;
            s += &format!(
                "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"rgb({r},{g},{b})\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
                CR + 14.0,
                ly - 2.0,
                CR + 34.0,
                ly + 4.0,
                esc(&series.label)
            );
        }
        s += "</svg>\n";
        s
    }

    /// PNG image (labels in the built-in bitmap font, upper case).
    pub fn png(&self) -> Vec<u8> {
        let (w, h) = (CW as usize, CH as usize);
        let mut cv = Canvas { w, h, px: vec![255; 3 * w * h] };
        let grey = (90, 90, 90);
        cv.text(CL, 12.0, &self.title, 2);
        cv.line((CL, CT), (CR, CT), grey, 1);
        cv.line((CL, CB), (CR, CB), grey, 1);
        cv.line((CL, CT), (CL, CB), grey, 1);
        cv.line((CR, CT), (CR, CB), grey, 1);
        let (xt, yt) = self.ticks();
        for (t, x) in &xt {
            cv.text(x - (4 * t.len()) as f64, CB + 8.0, t, 2);
        }
        for (t, y) in &yt {
            cv.text(CL - 6.0 - (8 * t.len()) as f64, y - 5.0, t, 2);
        }
        let log = |b: bool| if b { " (LOG)" } else { "" };
        cv.text(CL, CB + 30.0, &format!("X: {}{}", self.x_label, log(self.log_x)), 2);
        cv.text(CL, CB + 46.0, &format!("Y: {}{}", self.y_label, log(self.log_y)), 2);
        for (i, (line, series)) in self.lines().iter().zip(&self.series).enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            for seg in line.windows(2) {
                cv.line(seg[0], seg[1], c, 2);
            }
            for &(x, y) in line {
                cv.line((x - 2.0, y), (x + 2.0, y), c, 3);
            }
            let ly = CT + 10.0 + 18.0 * i as f64;
            cv.line((CR + 14.0, ly), (CR + 28.0, ly), c, 4);
            cv.text(CR + 34.0, ly - 5.0, &series.label, 2);
        }
        encode_png(w, h, &cv.px)
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
