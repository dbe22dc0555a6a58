//! `report.html`: one self-contained page (inline SVG, no scripts fetched)
//! with the faults as bands over time, every operation's latency coloured by
//! outcome, throughput per second, recovery after each fault, and the
//! verdict with the checker's explanation.

use std::fmt::Write;

use raft_trace::Status;

use super::analysis::{Analysis, RunRecord};
use super::nemesis::Fault;

const W: f64 = 1000.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn colour(f: Fault) -> &'static str {
    match f {
        Fault::Kill => "#c0392b",
        Fault::KillLeader => "#8e44ad",
        Fault::Pause => "#2980b9",
        Fault::Partition => "#d35400",
        Fault::Oneway => "#16a085",
        Fault::KillAll => "#2c3e50",
        Fault::Member => "#7f8c8d",
    }
}

fn status_colour(s: Status) -> &'static str {
    match s {
        Status::Ok => "#27ae60",
        Status::Fail => "#f39c12",
        Status::Info => "#e74c3c",
    }
}

struct Axis {
    end_ms: f64,
}

impl Axis {
    fn x(&self, ms: f64) -> f64 {
        LEFT + (W - LEFT - RIGHT) * (ms / self.end_ms.max(1.0)).clamp(0.0, 1.0)
    }
}

fn time_ticks(svg: &mut String, axis: &Axis, y0: f64, y1: f64) {
    let secs = axis.end_ms / 1e3;
    let step = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]
        .into_iter()
        .find(|s| secs / s <= 12.0)
        .unwrap_or(600.0);
    let mut t = 0.0;
    while t <= secs {
        let x = axis.x(t * 1e3);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#ddd"/><text x="{x:.1}" y="{}" font-size="10" text-anchor="middle">{t} s</text>"##,
            y1 + 12.0
        );
        t += step;
    }
}

fn bands(svg: &mut String, a: &Analysis, axis: &Axis, y0: f64, h: f64, labels: bool) {
    for f in &a.faults {
        let r = &f.record;
        let x0 = axis.x(r.start_ns as f64 / 1e6);
        let x1 = axis.x(r.end_ns.map_or(axis.end_ms, |e| e as f64 / 1e6));
        let _ = write!(
            svg,
            r#"<rect x="{x0:.1}" y="{y0}" width="{:.1}" height="{h}" fill="{}" fill-opacity="{}"><title>{}</title></rect>"#,
            (x1 - x0).max(1.0),
            colour(r.fault),
            if labels { 0.8 } else { 0.12 },
            esc(&r.detail)
        );
        if labels {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" fill="white">{}</text>"#,
                x0 + 2.0,
                y0 + h / 2.0 + 3.0,
                r.fault.name()
            );
        }
    }
}

/// The whole page.
pub fn page(run: &RunRecord, a: &Analysis) -> String {
    let axis = Axis { end_ms: a.end_ms };
    let mut svg = String::new();
    // Faults: y 10..50.
    let _ = write!(svg, r#"<text x="4" y="34" font-size="11">faults</text>"#);
    bands(&mut svg, a, &axis, 10.0, 40.0, true);
    // Latency: y 80..340, log scale.
    let (ly0, lh) = (80.0, 260.0);
    let max_lat = a
        .points
        .iter()
        .filter_map(|p| p.latency_ms)
        .fold(10.0, f64::max);
    let (lo, hi) = (0.1f64.log10(), max_lat.log10());
    let y_lat = |ms: f64| ly0 + lh - lh * ((ms.max(0.1).log10() - lo) / (hi - lo)).clamp(0.0, 1.0);
    bands(&mut svg, a, &axis, ly0, lh, false);
    for decade in [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0] {
        if decade <= max_lat {
            let y = y_lat(decade);
            let _ = write!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end">{decade} ms</text>"##,
                W - RIGHT,
                LEFT - 4.0,
                y + 3.0
            );
        }
    }
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{}" font-size="11">latency of each operation (log scale)</text>"#,
        ly0 - 6.0
    );
    // Thin out the successful operations of long runs; keep every other.
    let ok_total = a.points.iter().filter(|p| p.status == Status::Ok).count();
    let keep_every = (ok_total / 20_000).max(1);
    let mut ok_seen = 0usize;
    for p in &a.points {
        if p.status == Status::Ok {
            ok_seen += 1;
            if !ok_seen.is_multiple_of(keep_every) {
                continue;
            }
        }
        let x = axis.x(p.invoke_ms);
        match p.latency_ms {
            Some(l) => {
                let _ = write!(
                    svg,
                    r#"<circle cx="{x:.1}" cy="{:.1}" r="1.6" fill="{}"><title>{} {:?} {l:.1} ms</title></circle>"#,
                    y_lat(l),
                    status_colour(p.status),
                    p.f,
                    p.status
                );
            }
            None => {
                let _ = write!(
                    svg,
                    r#"<text x="{x:.1}" y="{}" font-size="9" fill="{}">x</text>"#,
                    ly0 + 8.0,
                    status_colour(Status::Info)
                );
            }
        }
    }
    // Throughput: y 375..495, operations per second.
    let (ty0, th) = (375.0, 120.0);
    let buckets = (a.end_ms / 1e3).ceil().max(1.0) as usize;
    let mut ok = vec![0u64; buckets];
    let mut bad = vec![0u64; buckets];
    for p in &a.points {
        let b = ((p.invoke_ms / 1e3) as usize).min(buckets - 1);
        if p.status == Status::Ok {
            ok[b] += 1;
        } else {
            bad[b] += 1;
        }
    }
    let peak = ok.iter().chain(&bad).copied().max().unwrap_or(1).max(1) as f64;
    bands(&mut svg, a, &axis, ty0, th, false);
    for (series, col) in [
        (&ok, status_colour(Status::Ok)),
        (&bad, status_colour(Status::Info)),
    ] {
        let pts: Vec<String> = series
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                format!(
                    "{:.1},{:.1}",
                    axis.x((i as f64 + 0.5) * 1e3),
                    ty0 + th - th * v as f64 / peak
                )
            })
            .collect();
        let _ = write!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{col}" stroke-width="1.5"/>"#,
            pts.join(" ")
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{}" font-size="11">operations per second: ok (green), fail or info (red)</text><text x="{}" y="{}" font-size="10" text-anchor="end">{peak}</text>"#,
        ty0 - 6.0,
        LEFT - 4.0,
        ty0 + 8.0
    );
    time_ticks(&mut svg, &axis, 10.0, ty0 + th);

    let mut html = String::new();
    let verdict_colour = match a.verdict {
        "valid" => "#27ae60",
        "inconclusive" => "#f39c12",
        _ => "#c0392b",
    };
    let _ = write!(
        html,
        r#"<!doctype html><html><head><meta charset="utf-8"><title>raftcheck jepsen: {verdict}</title>
<style>body{{font-family:sans-serif;margin:20px;max-width:1040px}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}pre{{background:#f6f6f6;padding:8px;overflow:auto}}.legend span{{margin-right:14px}}</style></head><body>
<h1>raftcheck jepsen: <span id="verdict" style="color:{verdict_colour}">{verdict}</span></h1>
<p>{target}, {nodes}, {clients}, {keys}, {dur} s, seed {seed}, nemesis {nemesis}{bug}.
Linearizability: <b>{lin:?}</b> ({ops}, checked in {secs:.2} s).
Files: <a href="history.ndjson">history.ndjson</a>, <a href="linearizability.html">linearizability.html</a>, <a href="run.json">run.json</a>, node logs <code>node-N.log</code>.</p>
"#,
        verdict = a.verdict,
        target = esc(&run.target),
        nodes = raft_conformance::count(run.nodes, "node"),
        clients = raft_conformance::count(run.clients as u64, "client"),
        keys = raft_conformance::count(run.keys, "key"),
        dur = run.duration_s,
        seed = run.seed,
        nemesis = esc(&run.nemesis.join(",")),
        bug = run
            .node_bug
            .as_ref()
            .map(|b| format!(", planted node bug <b>{}</b>", esc(b)))
            .unwrap_or_default(),
        lin = a.linearizability,
        ops = raft_conformance::count(a.operations as u64, "operation"),
        secs = a.check_seconds,
    );
    if !a.anomalies.is_empty() {
        html.push_str("<h2>Anomalies</h2><ul>");
        for x in &a.anomalies {
            let _ = write!(html, "<li>{}</li>", esc(x));
        }
        html.push_str("</ul>");
    }
    let _ = write!(
        html,
        r#"<h2>Timeline</h2><p class="legend"><span style="color:{}">&#9679; ok</span><span style="color:{}">&#9679; fail</span><span style="color:{}">&#9679; info (x: no answer)</span> latency by invocation time; faults as bands.</p>
<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{}" viewBox="0 0 {W} {}">{svg}</svg>"#,
        status_colour(Status::Ok),
        status_colour(Status::Fail),
        status_colour(Status::Info),
        ty0 + th + 20.0,
        ty0 + th + 20.0,
    );
    html.push_str(
        "<h2>Operations</h2><table><tr><th>f</th><th>ok</th><th>fail</th><th>info</th></tr>",
    );
    for (f, c) in &a.by_function {
        let _ = write!(
            html,
            "<tr><td>{f}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.ok, c.fail, c.info
        );
    }
    html.push_str("</table><h2>Faults</h2><table><tr><th>fault</th><th>what</th><th>start</th><th>lasted</th><th>first successful write after its start</th></tr>");
    for f in &a.faults {
        let r = &f.record;
        let start = r.start_ns as f64 / 1e9;
        let lasted = r
            .end_ns
            .map(|e| format!("{:.1} s", (e - r.start_ns) as f64 / 1e9))
            .unwrap_or_else(|| "to the end".into());
        let first = f
            .first_write_ms
            .map(|m| format!("{m:.0} ms"))
            .unwrap_or_else(|| "none before the load ended".into());
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{start:.1} s</td><td>{lasted}</td><td>{first}</td></tr>",
            r.fault.name(),
            esc(&r.detail)
        );
    }
    html.push_str("</table>");
    let _ = write!(
        html,
        "<p>Leader after healing every fault: {}.</p>",
        a.leader_after_heal_s
            .map(|s| format!("{s:.2} s"))
            .unwrap_or_else(|| "none within 15 s".into())
    );
    if let Some(e) = &a.report.failing {
        let _ = write!(
            html,
            "<h2>Why the history is not linearizable</h2><pre>{}</pre>",
            esc(&e.render())
        );
    }
    if !a.log_alarms.is_empty() {
        html.push_str("<h2>Node log alarms</h2><pre>");
        for l in a.log_alarms.iter().take(50) {
            html.push_str(&esc(l));
            html.push('\n');
        }
        html.push_str("</pre>");
    }
    html.push_str("</body></html>\n");
    html
}
