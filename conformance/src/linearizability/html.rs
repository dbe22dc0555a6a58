//! A self-contained HTML page (inline SVG and CSS, a small inline script, no
//! fetches) drawing each partition's operations on a timeline, one row per
//! client, each operation a bar over its real-time interval. Failing
//! partitions come first and open, the others folded. Hovering an operation
//! shows it, its place in the linearization found and the state after it;
//! operations that could not be placed are red, the rest of a failing
//! partition is grey. A slider per partition zooms the time axis.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::engine::{check_partition, Budget, CheckResult, Model, Options, Partition, Verdict};
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
    /// `after[k]`: the state right after `ops[k]` in that order.
    pub after: Vec<Option<String>>,
    /// `unplaceable[k]`: `ops[k]` could come next but cannot take effect.
    pub unplaceable: Vec<bool>,
    /// The state after the linearization (or the prefix).
    pub state: String,
    /// Why the partition has no drawing of its order, if it has none.
    pub note: Option<&'static str>,
}

/// How long the page may spend, over all keys, deciding the keys a failure
/// left undecided.
pub const UNDECIDED_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// Re-runs the partitions with tracking to get each one's linearization (or
/// longest prefix) and the state after every operation in it.
///
/// A check stops the other partitions as soon as one fails, which leaves
/// them undecided; those are decided here, within the check's own time and
/// memo budget and at most [`UNDECIDED_BUDGET`] in all, so that a failing
/// history does not show every other key as unknown. Partitions undecided
/// because the check's budget ran out stay so.
pub fn timelines<M: Model>(
    model: &M,
    result: &mut CheckResult<M>,
    history: &History,
    options: &Options,
) -> Vec<Timeline> {
    let budget = Budget::new(options.timeout).with_memo_limit(options.memo_limit);
    // Keys left undecided share a shorter budget (a failing key can take
    // long to refute), smallest first so that as many as can be are decided.
    let spare = options
        .timeout
        .map_or(UNDECIDED_BUDGET, |t| t.min(UNDECIDED_BUDGET));
    let spare = Budget::new(Some(spare)).with_memo_limit(options.memo_limit);
    let cancelled = result.verdict == Verdict::NotLinearizable && options.stop_on_failure;
    let mut order: Vec<usize> = (0..result.partitions.len()).collect();
    order.sort_by_key(|&i| result.partitions[i].0.ops.len());
    let mut out = Vec::new();
    for i in order {
        let (part, res) = &mut result.partitions[i];
        let ops: Vec<ShownOp> = part
            .ops
            .iter()
            .map(|o| ShownOp::new(history, o.id))
            .collect();
        let mut t = Timeline {
            key: part.key.clone(),
            verdict: res.verdict,
            order: vec![None; ops.len()],
            after: vec![None; ops.len()],
            unplaceable: vec![false; ops.len()],
            ops,
            state: String::new(),
            note: None,
        };
        if res.verdict == Verdict::Unknown && !cancelled {
            t.note = Some("the time or memory budget ran out before it was decided");
            out.push(t);
            continue;
        }
        let undecided = res.verdict == Verdict::Unknown;
        let r = check_partition(model, part, if undecided { &spare } else { &budget }, true);
        if res.verdict == Verdict::Unknown {
            t.verdict = r.verdict;
        }
        match r.longest {
            Some(l) if r.verdict != Verdict::Unknown && r.verdict == t.verdict => {
                trace(model, part, &l.order, &l.state, &mut t);
            }
            _ => {
                t.note = Some(if t.verdict == Verdict::Unknown {
                    "not decided: the check stopped here when another key failed, \
                     and deciding it for this page took longer than its budget"
                } else {
                    "the budget ran out before its order could be drawn"
                });
            }
        }
        out.push(t);
    }
    // Failing partitions first, then undecided ones, then by key.
    out.sort_by(|a, b| b.verdict.cmp(&a.verdict).then(a.key.cmp(&b.key)));
    out
}

/// Fills `t` from a linearization (or longest prefix) `order` ending in
/// `last`: positions, the state after each operation and, for a failing
/// partition, the operations that could come next but cannot be placed.
fn trace<M: Model>(
    model: &M,
    part: &mut Partition<M>,
    order: &[usize],
    last: &M::State,
    t: &mut Timeline,
) {
    for (pos, &i) in order.iter().enumerate() {
        t.order[i] = Some(pos);
    }
    if let Some(states) = replay(model, part, order, last) {
        for (&i, s) in order.iter().zip(&states) {
            t.after[i] = Some(model.describe_state(&part.ctx, s));
        }
    }
    t.state = model.describe_state(&part.ctx, last);
    if t.verdict == Verdict::NotLinearizable {
        let n = part.ops.len();
        let first_ret = (0..n)
            .filter(|&i| t.order[i].is_none())
            .map(|i| part.ops[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..n {
            t.unplaceable[i] = t.order[i].is_none() && part.ops[i].call <= first_ret;
        }
    }
}

/// The states after each operation of `order`, applied in turn from the
/// initial state and ending in `last`. A nondeterministic model may offer
/// several next states; the search backtracks over them, never visiting a
/// (position, state) pair twice.
fn replay<M: Model>(
    model: &M,
    part: &mut Partition<M>,
    order: &[usize],
    last: &M::State,
) -> Option<Vec<M::State>> {
    let ctx = &mut part.ctx;
    let mut seen: HashSet<(usize, M::State)> = HashSet::new();
    // frontier[d]: states not yet tried after the first d operations;
    // path: the states chosen so far (path[0] is the initial state).
    let mut frontier: Vec<Vec<M::State>> = vec![vec![model.init(ctx)]];
    let mut path: Vec<M::State> = Vec::new();
    loop {
        let d = path.len();
        let top = frontier.last_mut()?;
        let Some(s) = top.pop() else {
            frontier.pop();
            path.pop();
            continue;
        };
        if d == order.len() {
            if &s == last {
                path.push(s);
                path.remove(0);
                return Some(path);
            }
            continue;
        }
        if !seen.insert((d, s.clone())) {
            continue;
        }
        let mut next = Vec::new();
        model.step(ctx, &s, &part.ops[order[d]].op, &mut next);
        path.push(s);
        frontier.push(next);
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Width of one character of a bar's label (11px monospace), rounded up.
pub const CHAR_WIDTH: f64 = 7.0;
/// Space kept free inside a bar, left and right together.
pub const BAR_PADDING: f64 = 6.0;

/// The part of `label` that fits in a bar `width` pixels wide: the whole
/// label, or its start and an ellipsis, or nothing. The page's script does
/// the same when zooming.
pub fn fit_label(label: &str, width: f64) -> String {
    let room = ((width - BAR_PADDING) / CHAR_WIDTH).floor();
    let room = if room.is_finite() && room > 0.0 {
        room as usize
    } else {
        0
    };
    let n = label.chars().count();
    if n <= room {
        label.to_string()
    } else if room == 0 {
        String::new()
    } else {
        let mut s: String = label.chars().take(room - 1).collect();
        s.push('…');
        s
    }
}

fn verdict_words(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Linearizable => ("ok", "linearizable"),
        Verdict::NotLinearizable => ("bad", "not linearizable"),
        Verdict::Unknown => ("unk", "unknown"),
    }
}

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}\
.ok{color:#1a7f37}.bad{color:#c62828}.unk{color:#9a6700}\
pre{background:#f6f8fa;padding:.6em;overflow-x:auto}\
details.part{border:1px solid #ddd;border-radius:4px;margin:.6em 0;padding:.3em .6em}\
details.part>summary{cursor:pointer;font-weight:600}\
.why{margin:.4em 0}.zoom{font-size:.9em;margin:.3em 0}\
.tl{display:flex;align-items:flex-start}\
.names{flex:none}.scroll{overflow-x:auto;flex:1;border:1px solid #ddd}\
svg text{font-size:11px;font-family:ui-monospace,monospace;pointer-events:none}\
g.op rect{stroke-width:1}g.op:hover rect{stroke-width:3}\
g.lin rect{fill:#c8e6c9;stroke:#2e7d32}g.unp rect{fill:#ffcdd2;stroke:#c62828;stroke-width:2}\
g.oth rect{fill:#eee;stroke:#999}g.open rect{stroke-dasharray:4 3}\
g.dim{opacity:.25}\
ol{font-family:ui-monospace,monospace;font-size:12px}\
.legend span{display:inline-block;padding:0 .5em;margin-right:.5em;border:1px solid #999}\
#tip{position:fixed;display:none;background:#fffbe6;border:1px solid #caa;padding:.4em .6em;\
font:12px ui-monospace,monospace;white-space:pre;pointer-events:none;z-index:9;max-width:60em;overflow:hidden}";

/// Hover details, zoom, and each timeline scrolled to its first operation
/// that cannot be placed; the same truncation rule as `fit_label`.
const SCRIPT: &str = r#"(function(){
var tip=document.getElementById('tip');
function fit(l,w){var c=Array.from(l),r=Math.floor((w-BAR_PADDING)/CHAR_WIDTH);
if(c.length<=r)return l;return r<=0?'':c.slice(0,r-1).join('')+'\u2026';}
function ops(svg){return svg.querySelectorAll('g.op');}
document.addEventListener('mouseover',function(e){
var g=e.target.closest&&e.target.closest('g.op');if(!g)return;
tip.textContent=g.dataset.info;tip.style.display='block';
var p=g.dataset.pos===undefined?-1:+g.dataset.pos;
ops(g.ownerSVGElement).forEach(function(o){
var q=o.dataset.pos===undefined?-1:+o.dataset.pos;
if(p>=0&&(q<0||q>p))o.classList.add('dim');});});
document.addEventListener('mousemove',function(e){
tip.style.left=Math.min(e.clientX+14,window.innerWidth-tip.offsetWidth-4)+'px';
tip.style.top=(e.clientY+16)+'px';});
document.addEventListener('mouseout',function(e){
var g=e.target.closest&&e.target.closest('g.op');if(!g)return;
tip.style.display='none';
ops(g.ownerSVGElement).forEach(function(o){o.classList.remove('dim');});});
document.querySelectorAll('input.zoom').forEach(function(z){
z.addEventListener('input',function(){
var svg=document.getElementById(z.dataset.svg),u=+svg.dataset.unit*+z.value;
svg.setAttribute('width',(+svg.dataset.points*u).toFixed(0));
z.nextElementSibling.textContent=z.value+'\u00d7';
ops(svg).forEach(function(g){
var a=+g.dataset.a,b=+g.dataset.b,x=a*u+1,w=Math.max((b-a)*u-2,3);
var r=g.querySelector('rect'),t=g.querySelector('text');
r.setAttribute('x',x.toFixed(1));r.setAttribute('width',w.toFixed(1));
t.setAttribute('x',(x+BAR_PADDING/2).toFixed(1));t.textContent=fit(g.dataset.label,w);});
focus(svg);});});
function focus(svg){var u=svg.querySelector('g.unp rect');
if(u)svg.parentNode.scrollLeft=Math.max(0,+u.getAttribute('x')-200);}
document.querySelectorAll('svg[data-unit]').forEach(focus);
var m=/zoom=(\d+)/.exec(location.hash);
if(m)document.querySelectorAll('input.zoom').forEach(function(z){z.value=m[1];z.dispatchEvent(new Event('input'));});
document.body.setAttribute('data-ready','1');
})();"#;

/// The page for the reports of several files.
pub fn page(files: &[(String, &Report)]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>raftcheck linearize</title><style>{STYLE}</style></head><body>\n\
<h1>Linearizability report</h1>\n\
<p class=\"legend\"><span style=\"background:#c8e6c9\">linearized (numbered in order)</span>\
<span style=\"background:#ffcdd2\">cannot be placed next</span>\
<span style=\"background:#eee\">not reached</span> dashed: outcome unknown. \
One row per client; hover an operation for its place in the order and the state after it.</p>\n\
<div id=\"tip\"></div>\n"
    );
    let mut n = 0;
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
        if !report.timelines.is_empty() {
            let mut counts = Vec::new();
            for v in [
                Verdict::NotLinearizable,
                Verdict::Unknown,
                Verdict::Linearizable,
            ] {
                let n = report.timelines.iter().filter(|t| t.verdict == v).count();
                if n > 0 {
                    counts.push(format!("{n} {}", verdict_words(v).1));
                }
            }
            let _ = writeln!(h, "<p>Keys: {}.</p>", counts.join(", "));
        }
        if let Some(f) = &report.failing {
            let _ = writeln!(
                h,
                "<details><summary>Explanation</summary><pre>{}</pre></details>",
                esc(&f.render())
            );
        }
        for t in &report.timelines {
            n += 1;
            draw(&mut h, t, n);
        }
    }
    let script = SCRIPT
        .replace("BAR_PADDING", &BAR_PADDING.to_string())
        .replace("CHAR_WIDTH", &CHAR_WIDTH.to_string());
    let _ = write!(h, "<script>{script}</script>\n</body></html>\n");
    h
}

/// The one line on top of a partition.
fn why(t: &Timeline) -> String {
    if let Some(note) = t.note {
        return note.to_string();
    }
    let placed = t.order.iter().filter(|o| o.is_some()).count();
    match t.verdict {
        Verdict::NotLinearizable => {
            let red = t.unplaceable.iter().filter(|&&u| u).count();
            format!(
                "No order fits: the first {placed} of {} can be ordered, leaving state {}, \
                 but {}.",
                crate::count(t.ops.len() as u64, "operation"),
                t.state,
                if red == 1 {
                    "the one operation that could come next (red) cannot take effect".to_string()
                } else {
                    format!(
                        "none of the {red} operations that could come next (red) can take effect"
                    )
                }
            )
        }
        Verdict::Linearizable => format!(
            "All {} ordered, ending in state {}.",
            crate::count(t.ops.len() as u64, "operation"),
            t.state
        ),
        Verdict::Unknown => "not decided".to_string(),
    }
}

fn draw(h: &mut String, t: &Timeline, n: usize) {
    let key = if t.key.is_empty() {
        "(register)".to_string()
    } else {
        t.key.clone()
    };
    let (class, word) = verdict_words(t.verdict);
    let mut clients: Vec<u64> = t.ops.iter().map(|o| o.client).collect();
    clients.sort_unstable();
    clients.dedup();
    let verdict = match t.verdict {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable => "not-linearizable",
        Verdict::Unknown => "unknown",
    };
    let _ = writeln!(
        h,
        "<details class=\"part\" data-key=\"{}\" data-verdict=\"{verdict}\"{}>\
<summary>key {}: <span class=\"{class}\">{word}</span>, {}, {}</summary>\n\
<p class=\"why\">{}</p>",
        esc(&t.key),
        if t.verdict == Verdict::Linearizable {
            ""
        } else {
            " open"
        },
        esc(&key),
        crate::count(t.ops.len() as u64, "operation"),
        crate::count(clients.len() as u64, "client"),
        esc(&why(t))
    );
    if !t.ops.is_empty() {
        draw_svg(h, t, n, &clients);
    }
    let mut lin: Vec<(usize, usize)> = (0..t.ops.len())
        .filter_map(|k| t.order[k].map(|p| (p, k)))
        .collect();
    lin.sort_unstable();
    if !lin.is_empty() {
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
        for (_, k) in lin {
            let o = &t.ops[k];
            let _ = writeln!(
                h,
                "<li>{} (client {}, line {}){}</li>",
                esc(&o.op),
                o.client,
                o.line,
                t.after[k]
                    .as_ref()
                    .map_or(String::new(), |s| format!(" &rarr; {}", esc(s)))
            );
        }
        h.push_str("</ol></details>\n");
    }
    h.push_str("</details>\n");
}

const ROW: f64 = 22.0;
const BAR: f64 = 16.0;

fn draw_svg(h: &mut String, t: &Timeline, n: usize, clients: &[u64]) {
    // The time axis: each distinct call or return time is one point, so
    // that idle stretches take no room; an open operation runs to the end.
    let mut times: Vec<u64> = t
        .ops
        .iter()
        .flat_map(|o| [Some(o.call), o.ret])
        .flatten()
        .collect();
    times.sort_unstable();
    times.dedup();
    let point = |v: u64| times.binary_search(&v).unwrap_or_else(|i| i) as f64;
    let points = times.len() as f64 + 1.0;
    let unit = (1200.0 / points).clamp(4.0, 40.0);
    // Rows: one per client, more only where a client's operations overlap
    // (one whose outcome is unknown runs to the end).
    let mut lanes: Vec<(u64, f64)> = Vec::new(); // (client, end of its last bar)
    let mut row_of = vec![0usize; t.ops.len()];
    let mut by_call: Vec<usize> = (0..t.ops.len()).collect();
    by_call.sort_by_key(|&k| (t.ops[k].client, t.ops[k].call));
    let mut first_row: Vec<(u64, usize)> = Vec::new();
    for &c in clients {
        first_row.push((c, lanes.len()));
        let from = lanes.len();
        for &k in by_call.iter().filter(|&&k| t.ops[k].client == c) {
            let o = &t.ops[k];
            let a = point(o.call);
            let b = o.ret.map_or(points, point);
            let lane = (from..lanes.len()).find(|&r| lanes[r].1 <= a);
            let r = match lane {
                Some(r) => r,
                None => {
                    lanes.push((c, 0.0));
                    lanes.len() - 1
                }
            };
            lanes[r].1 = b;
            row_of[k] = r;
        }
    }
    let height = lanes.len() as f64 * ROW + 6.0;
    let width = points * unit;
    let _ = writeln!(
        h,
        "<div class=\"zoom\">zoom <input type=\"range\" class=\"zoom\" min=\"1\" max=\"32\" value=\"1\" \
data-svg=\"tl{n}\"><span>1×</span></div><div class=\"tl\"><svg class=\"names\" width=\"80\" height=\"{height:.0}\">"
    );
    for (c, r) in &first_row {
        let _ = writeln!(
            h,
            "<text x=\"4\" y=\"{:.0}\">client {c}</text>",
            *r as f64 * ROW + 17.0
        );
    }
    let _ = writeln!(
        h,
        "</svg><div class=\"scroll\"><svg id=\"tl{n}\" width=\"{width:.0}\" height=\"{height:.0}\" \
data-unit=\"{unit}\" data-points=\"{points}\">"
    );
    let total = t.order.iter().filter(|o| o.is_some()).count();
    let key_prefix = format!("[{:?}] ", t.key);
    for (k, o) in t.ops.iter().enumerate() {
        let a = point(o.call);
        let b = o.ret.map_or(points, point);
        let x = a * unit + 1.0;
        let w = ((b - a) * unit - 2.0).max(3.0);
        let y = row_of[k] as f64 * ROW + 4.0;
        let mut cls = match (t.order[k], t.unplaceable[k]) {
            (Some(_), _) => "op lin",
            (None, true) => "op unp",
            (None, false) => "op oth",
        }
        .to_string();
        if o.ret.is_none() {
            cls.push_str(" open");
        }
        // The key is the partition's: the bar does without it.
        let short = o.op.strip_prefix(&key_prefix).unwrap_or(&o.op);
        let label = match t.order[k] {
            Some(p) => format!("{} {short}", p + 1),
            None => short.to_string(),
        };
        let mut info = format!("{}\nclient {}, {}", o.op, o.client, o.lines());
        match (t.order[k], t.unplaceable[k]) {
            (Some(p), _) => {
                let _ = write!(info, "\nlinearized {} of {total}", p + 1);
                if let Some(s) = &t.after[k] {
                    let _ = write!(info, "\nstate after: {s}");
                }
            }
            (None, true) => {
                let _ = write!(
                    info,
                    "\ncannot be placed next: cannot take effect in state {}",
                    t.state
                );
            }
            (None, false) => {
                if t.verdict == Verdict::NotLinearizable {
                    info.push_str("\nnot reached (after the operations that cannot be placed)");
                }
            }
        }
        let pos = t.order[k].map_or(String::new(), |p| format!(" data-pos=\"{p}\""));
        let _ = writeln!(
            h,
            "<g class=\"{cls}\" data-a=\"{a}\" data-b=\"{b}\"{pos} data-label=\"{}\" data-info=\"{}\">\
<title>{}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BAR}\" rx=\"3\"/>\
<text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            esc(&label),
            esc(&info),
            esc(&info),
            x + BAR_PADDING / 2.0,
            y + 12.0,
            esc(&fit_label(&label, w))
        );
    }
    h.push_str("</svg></div></div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::{check_history, read_history, ModelKind, Request};

    /// On one thread the largest key is checked first and, once a key
    /// fails, the check gives up on the rest, leaving them unknown. The
    /// drawing decides them again instead of calling them unknown.
    #[test]
    fn keys_left_unknown_by_a_failure_are_decided_for_the_page() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/porcupine/kv/c10-bad.txt");
        let (history, _) = read_history(&path, None).unwrap();
        let mut req = Request::new(ModelKind::Kv);
        req.options.threads = 1;
        req.timelines = true;
        let report = check_history(&history, &req).unwrap();
        assert_eq!(report.verdict, Verdict::NotLinearizable);
        assert_eq!(report.timelines.len(), 10);
        let failing = report.failing.as_ref().unwrap();
        assert_eq!(report.timelines[0].key, failing.key);
        for t in &report.timelines {
            assert_ne!(t.verdict, Verdict::Unknown, "key {}", t.key);
            assert!(t.note.is_none(), "key {}", t.key);
            // Every key has its order, and a state after each placed op.
            assert!(t.order.iter().any(|o| o.is_some()), "key {}", t.key);
            for k in 0..t.ops.len() {
                assert_eq!(t.order[k].is_some(), t.after[k].is_some(), "key {}", t.key);
            }
            if t.verdict == Verdict::Linearizable {
                assert!(t.order.iter().all(|o| o.is_some()), "key {}", t.key);
            } else {
                assert!(t.unplaceable.iter().any(|&u| u), "key {}", t.key);
            }
        }
        // The same check without the drawing does leave keys undecided.
        let mut engine_only = req.clone();
        engine_only.timelines = false;
        let parts =
            crate::linearizability::models::partition_by_key(ModelKind::Kv, &history).unwrap();
        let model = crate::linearizability::models::ValueModel {
            kind: ModelKind::Kv,
        };
        let result = crate::linearizability::check(&model, parts, &engine_only.options);
        assert!(result
            .partitions
            .iter()
            .any(|(_, r)| r.verdict == Verdict::Unknown));
    }

    #[test]
    fn a_fitted_label_never_runs_past_its_bar() {
        let labels = [
            "",
            "x",
            "12 cas(\"4\", \"3\") fail",
            "[\"k\"] append(\"a long value with ünïcode\") -> ok",
        ];
        for label in labels {
            for w in 0..400 {
                let w = w as f64 / 2.0;
                let fitted = fit_label(label, w);
                let n = fitted.chars().count() as f64;
                assert!(
                    n * CHAR_WIDTH <= (w - BAR_PADDING).max(0.0),
                    "{fitted:?} in {w}px"
                );
                if fitted != label {
                    // Cut labels say so, and keep as much as fits.
                    assert!(fitted.is_empty() || fitted.ends_with('…'), "{fitted:?}");
                    assert!(
                        (n + 1.0) * CHAR_WIDTH > w - BAR_PADDING,
                        "{fitted:?} in {w}px"
                    );
                } else {
                    assert!(n * CHAR_WIDTH <= w - BAR_PADDING || label.is_empty());
                }
            }
        }
        assert_eq!(fit_label("write(\"1\")", 1000.0), "write(\"1\")");
        assert_eq!(fit_label("write(\"1\")", 6.0 + 4.0 * 7.0), "wri…");
        assert_eq!(fit_label("write(\"1\")", 12.0), "");
        assert_eq!(fit_label("write(\"1\")", f64::NAN), "");
    }
}
