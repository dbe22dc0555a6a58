//! A self-contained HTML page (inline SVG and CSS, no scripts or fetches)
//! drawing each partition's operations on a timeline, one row per client:
//! the linearization found is numbered in order, operations that could not
//! be placed are red, the rest of a failing partition is grey.

use std::fmt::Write as _;

use super::engine::{check_partition, Budget, CheckResult, Model, Verdict};
use super::explain::ShownOp;
use super::history::History;
use super::Report;

/// One partition, ready to draw.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub key: String,
    pub verdict: Verdict,
    pub ops: Vec<ShownOp>,
    /// `order[k]`: position of `ops[k]` in the linearization found (for a
    /// failing partition: in the longest linearizable prefix).
    pub order: Vec<Option<usize>>,
    /// `unplaceable[k]`: `ops[k]` could come next but cannot take effect.
    pub unplaceable: Vec<bool>,
    /// The state after the linearization (or the prefix).
    pub state: String,
}

/// Re-runs every partition with tracking to get its linearization (or
/// longest prefix). Partitions whose verdict is unknown are drawn without.
pub fn timelines<M: Model>(
    model: &M,
    result: &mut CheckResult<M>,
    history: &History,
) -> Vec<Timeline> {
    let mut out = Vec::new();
    for (part, res) in result.partitions.iter_mut() {
        let ops: Vec<ShownOp> = part
            .ops
            .iter()
            .map(|o| ShownOp::new(history, o.id))
            .collect();
        let mut order = vec![None; ops.len()];
        let mut unplaceable = vec![false; ops.len()];
        let mut state = String::new();
        if res.verdict != Verdict::Unknown {
            let r = check_partition(
                model,
                part,
                &Budget::new(Some(std::time::Duration::from_secs(10))),
                true,
            );
            if let Some(l) = r.longest {
                for (pos, &i) in l.order.iter().enumerate() {
                    order[i] = Some(pos);
                }
                state = model.describe_state(&part.ctx, &l.state);
                if r.verdict == Verdict::NotLinearizable {
                    let first_ret = (0..ops.len())
                        .filter(|&i| order[i].is_none())
                        .map(|i| part.ops[i].ret)
                        .min()
                        .unwrap_or(u64::MAX);
                    for i in 0..ops.len() {
                        unplaceable[i] = order[i].is_none() && part.ops[i].call <= first_ret;
                    }
                }
            }
        }
        out.push(Timeline {
            key: part.key.clone(),
            verdict: res.verdict,
            ops,
            order,
            unplaceable,
            state,
        });
    }
    // Failing partitions first, then by key.
    out.sort_by(|a, b| b.verdict.cmp(&a.verdict).then(a.key.cmp(&b.key)));
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page for the reports of several files.
pub fn page(files: &[(String, &Report)]) -> String {
    let mut h = String::new();
    h.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>raftcheck linearize</title><style>\
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}h3{font-size:1em}\
.ok{color:#1a7f37}.bad{color:#c62828}.unk{color:#9a6700}\
pre{background:#f6f8fa;padding:.6em;overflow-x:auto}\
svg{border:1px solid #ddd;background:#fff}\
.lin rect{fill:#c8e6c9;stroke:#2e7d32}.unp rect{fill:#ffcdd2;stroke:#c62828;stroke-width:2}\
.oth rect{fill:#eee;stroke:#999}.open rect{stroke-dasharray:4 3}\
text{font-size:11px;font-family:ui-monospace,monospace}\
ol{font-family:ui-monospace,monospace;font-size:12px}\
.legend span{display:inline-block;padding:0 .5em;margin-right:.5em;border:1px solid #999}\
</style></head><body>\n<h1>Linearizability report</h1>\n\
<p class=\"legend\"><span style=\"background:#c8e6c9\">linearized (numbered in order)</span>\
<span style=\"background:#ffcdd2\">cannot be placed next</span>\
<span style=\"background:#eee\">not reached</span> dashed: outcome unknown</p>\n",
    );
    for (file, report) in files {
        let (class, word) = match report.verdict {
            Verdict::Linearizable => ("ok", "linearizable"),
            Verdict::NotLinearizable => ("bad", "NOT linearizable"),
            Verdict::Unknown => ("unk", "unknown (time budget ran out)"),
        };
        let _ = writeln!(
            h,
            "<h2>{}: <span class=\"{class}\">{word}</span></h2>\n<p>{}, {}, {:.3} s</p>",
            esc(file),
            crate::count(report.operations as u64, "operation"),
            crate::count(report.partitions as u64, "partition"),
            report.seconds
        );
        if let Some(f) = &report.failing {
            let _ = writeln!(h, "<pre>{}</pre>", esc(&f.render()));
        }
        for t in &report.timelines {
            draw(&mut h, t);
        }
    }
    h.push_str("</body></html>\n");
    h
}

fn draw(h: &mut String, t: &Timeline) {
    let key = if t.key.is_empty() {
        "(register)".to_string()
    } else {
        t.key.clone()
    };
    let (class, word) = match t.verdict {
        Verdict::Linearizable => ("ok", "linearizable"),
        Verdict::NotLinearizable => ("bad", "not linearizable"),
        Verdict::Unknown => ("unk", "unknown"),
    };
    let _ = writeln!(
        h,
        "<h3>key {}: <span class=\"{class}\">{word}</span>, {}</h3>",
        esc(&key),
        crate::count(t.ops.len() as u64, "operation")
    );
    if t.ops.is_empty() {
        return;
    }
    let mut clients: Vec<u64> = t.ops.iter().map(|o| o.client).collect();
    clients.sort_unstable();
    clients.dedup();
    let t0 = t.ops.iter().map(|o| o.call).min().unwrap_or(0);
    let t1 = t
        .ops
        .iter()
        .map(|o| o.ret.unwrap_or(o.call))
        .max()
        .unwrap_or(t0)
        + 2;
    let span = (t1 - t0).max(1) as f64;
    let width = (t.ops.len() as f64 * 28.0).clamp(600.0, 6000.0);
    let row = 22.0;
    let left = 70.0;
    let height = clients.len() as f64 * row + 10.0;
    let x = |v: u64| left + (v - t0) as f64 / span * width;
    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{height:.0}\">",
        width + left + 10.0
    );
    for (r, c) in clients.iter().enumerate() {
        let _ = writeln!(
            h,
            "<text x=\"4\" y=\"{:.0}\">client {c}</text>",
            r as f64 * row + 18.0
        );
    }
    for (k, o) in t.ops.iter().enumerate() {
        let r = clients.binary_search(&o.client).unwrap_or(0);
        let y = r as f64 * row + 5.0;
        let end = o.ret.unwrap_or(t1);
        let x0 = x(o.call);
        let w = (x(end) - x0).max(4.0);
        let mut cls = match (t.order[k], t.unplaceable[k]) {
            (Some(_), _) => "lin".to_string(),
            (None, true) => "unp".to_string(),
            (None, false) => "oth".to_string(),
        };
        if o.ret.is_none() {
            cls.push_str(" open");
        }
        let label = match t.order[k] {
            Some(p) => format!("{} {}", p + 1, o.op),
            None => o.op.clone(),
        };
        let _ = writeln!(
            h,
            "<g class=\"{cls}\"><title>{} (client {}, line {})</title><rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"16\" rx=\"3\"/>\
<text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            esc(&o.op),
            o.client,
            o.line,
            x0 + 2.0,
            y + 12.0,
            esc(&label)
        );
    }
    h.push_str("</svg>\n");
    let mut lin: Vec<(usize, &ShownOp)> = t
        .ops
        .iter()
        .enumerate()
        .filter_map(|(k, o)| t.order[k].map(|p| (p, o)))
        .collect();
    lin.sort_by_key(|&(p, _)| p);
    let what = if t.verdict == Verdict::NotLinearizable {
        "Longest linearizable prefix"
    } else {
        "Linearization"
    };
    let _ = writeln!(
        h,
        "<details><summary>{what} ({}), then state {}</summary><ol>",
        crate::count(lin.len() as u64, "operation"),
        esc(&t.state)
    );
    for (_, o) in lin {
        let _ = writeln!(
            h,
            "<li>{} (client {}, line {})</li>",
            esc(&o.op),
            o.client,
            o.line
        );
    }
    h.push_str("</ol></details>\n");
}
