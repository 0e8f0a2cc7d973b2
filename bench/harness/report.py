"""Markdown tables from the raw results: medians of the runs with min–max, ratios against nginx,
and notes for absent cells, errors and runs disturbed by other processes."""

import statistics

from .scenarios import IDLE, idle_title
from .targets import TARGETS

NOISE_LIMIT = 5.0  # % of the proxy core used by others during a cell: above it, "disturbed"


def _disturbed(target, cell):
    """`direct` runs on the load core only; a proxy's own figures depend on the proxy core."""
    key = "load_noise_pct" if target == "direct" else "noise_pct"
    return cell.get(key, 0) > NOISE_LIMIT


def _vals(cells, key):
    return [c[key] for c in cells if c.get(key) is not None]


def _fmt(values, digits):
    if not values:
        return "—"
    med = statistics.median(values)
    text = f"{med:,.{digits}f}"
    if len(values) > 1:
        text += f" ({min(values):,.{digits}f}–{max(values):,.{digits}f})"
    return text


def _med(values):
    return statistics.median(values) if values else None


def _cells(results, scenario, target):
    return [run["cells"].get(scenario, {}).get(target) for run in results["runs"]
            if run["cells"].get(scenario, {}).get(target) is not None]


def _h3_vs_h2tls(results, target="gatehouse-edge"):
    """The edge's CPU per request over HTTP/3 against HTTP/2 over TLS, from the runs that have
    both cells (the same processes, the same run)."""
    pairs = []
    for run in results["runs"]:
        h3 = run["cells"].get("h3", {}).get(target) or {}
        h2 = run["cells"].get("h2tls", {}).get(target) or {}
        if h3.get("cpu_us_per_req") and h2.get("cpu_us_per_req"):
            pairs.append((h3["cpu_us_per_req"], h2["cpu_us_per_req"]))
    if not pairs:
        return []
    return [f"{target}: HTTP/3 costs {_fmt([a / b for a, b in pairs], 2)}× the CPU per request "
            f"of HTTP/2 over TLS in the same run{'s' if len(pairs) > 1 else ''} "
            f"({_fmt([a for a, _ in pairs], 1)} vs {_fmt([b for _, b in pairs], 1)} µs/req, "
            "h3 vs h2tls); the load generators differ (h3-load, h2load), so compare CPU, not "
            "req/s or latency"]


def scenario_table(results, scenario):
    lines = [
        "| target | req/s | CPU µs/req | p50 ms | p99 ms | RSS MiB | vs nginx |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    notes = []
    nginx_cpu = _med(_vals(_cells(results, scenario, "nginx"), "cpu_us_per_req"))
    direct_p99 = _med(_vals(_cells(results, scenario, "direct"), "p99_ms"))
    for target in TARGETS:
        cells = _cells(results, scenario, target)
        absent = [c["absent"] for c in cells if "absent" in c]
        if absent or not cells:
            reason = absent[0] if absent else "not run"
            lines.append(f"| {target} | — | — | — | — | — | {reason} |")
            continue
        cpu = _vals(cells, "cpu_us_per_req")
        mark = ""
        if any(_disturbed(target, c) for c in cells):
            mark = " †"
        if target == "direct":
            vs = "backend's own CPU"
        elif nginx_cpu and cpu:
            vs = f"CPU {_med(cpu) / nginx_cpu:.2f}×"
        else:
            vs = "—"
        if scenario == "rate" and target != "direct" and direct_p99 is not None:
            p99 = _vals(cells, "p99_ms")
            if p99:
                vs += f", p99 {_med(p99) - direct_p99:+.2f} ms vs direct"
        lines.append(
            f"| {target} | {_fmt(_vals(cells, 'rps'), 0)} | {_fmt(cpu, 1)}{mark} | "
            f"{_fmt(_vals(cells, 'p50_ms'), 2)} | {_fmt(_vals(cells, 'p99_ms'), 2)} | "
            f"{_fmt(_vals(cells, 'rss_mib'), 1)} | {vs} |")
        errors = [c.get("errors", 0) for c in cells]
        if any(errors):
            notes.append(f"{target}: errors per run {errors}")
        for i, c in enumerate(cells):
            if _disturbed(target, c) or c.get("steal_pct", 0) > 2:
                notes.append(f"{target} run {i + 1}: others used {c['noise_pct']:.0f}% of the "
                             f"proxy core, {c['load_noise_pct']:.0f}% of the load core "
                             f"(steal {c['steal_pct']:.0f}%)")
    if scenario == "h3":
        notes += _h3_vs_h2tls(results)
    return lines, notes


def idle_table(results, key, count):
    lines = [
        f"| target | RSS idle MiB | RSS after load MiB | RSS with {count:,} idle conns MiB "
        "| PSS MiB | KiB/conn | RSS after close MiB | errors | vs nginx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    notes, tls, restarted = [], [], False
    nginx = _med(_vals(_cells(results, key, "nginx"), "rss_mib"))
    for target in TARGETS:
        cells = _cells(results, key, target)
        if cells and all(c.get("fresh_start") for c in cells):
            # Started afresh for this scenario (see one_run): no load ran before.
            restarted = True
            fresh, after = _vals(cells, "rss_start_mib"), []
        else:
            fresh = [r["rss_idle"][target] for r in results["runs"]
                     if target in r.get("rss_idle", {})]
            after = [r["rss_after_load"][target] for r in results["runs"]
                     if target in r.get("rss_after_load", {})]
        absent = [c["absent"] for c in cells if "absent" in c]
        if absent or not cells:
            reason = absent[0] if absent else "not run"
            lines.append(f"| {target} | {_fmt(fresh, 1)} | {_fmt(after, 1)} | — | — | — | — | "
                         f"— | {reason} |")
            continue
        rss = _vals(cells, "rss_mib")
        vs = f"{_med(rss) / nginx:.2f}×" if nginx and rss and target != "direct" else "—"
        errors = [c.get("errors", 0) for c in cells]
        lines.append(
            f"| {target} | {_fmt(fresh, 1)} | {_fmt(after, 1)} | {_fmt(rss, 1)} | "
            f"{_fmt(_vals(cells, 'pss_mib'), 1)} | {_fmt(_vals(cells, 'kib_per_conn'), 2)} | "
            f"{_fmt(_vals(cells, 'rss_after_close_mib'), 1)} | {max(errors)} | {vs} |")
        if any(errors):
            notes.append(f"{target}: per run, connections refused or not answering after the "
                         f"hold: {[(c['open_errors'], c['lost_after_hold']) for c in cells]}")
        if any(c.get("close_timeouts") for c in cells):
            notes.append(f"{target}: per run, connections not closed within 15 s (then aborted): "
                         f"{[c.get('close_timeouts', 0) for c in cells]}")
        tls += sorted({f"{target} {c['tls']}" for c in cells if c.get("tls")})
    if restarted:
        notes.append("measured on targets started afresh after the idle scenario before it (whose "
                     "connections' memory stays with the processes and would be reused): RSS idle "
                     "is theirs at start, and no load ran before")
    if tls:
        notes.append("negotiated: " + "; ".join(tls))
    return lines, notes


def markdown(results, scenario_titles):
    meta = results["meta"]
    out = [
        f"Date: {meta['date']} · commit `{meta['commit']}`{meta['dirty']} · "
        f"{meta['runs']} run(s) of {meta['duration']} s per cell (after {meta['warmup']} s warm-up)",
        "",
        f"Machine: {meta['machine']}",
        "",
        f"Gatehouse: {meta.get('binaries', '?')} (release profile)",
        "",
        f"Tools: {meta['tools']}",
        "",
        f"Command: `{meta['command']}`",
        "",
        "Values are medians of the runs, (min–max) when there are several. CPU µs/req is the "
        "target's utime+stime over the measured run ÷ requests completed; for the sidecar pair it "
        "is both processes (two hops); for `direct` it is the backend's own cost. "
        f"† marks a cell where a run was disturbed: other processes used over {NOISE_LIMIT:.0f}% "
        "of the core the target runs on (the proxy core; the load core for `direct`).",
        "",
    ]
    for key, title in scenario_titles:
        if key in IDLE:
            lines, notes = idle_table(results, key, meta["idle_conns"])
            title = idle_title(key, meta["idle_conns"])
        else:
            if not any(key in r["cells"] for r in results["runs"]):
                continue
            lines, notes = scenario_table(results, key)
        out += [f"### {title}", "", *lines, ""]
        if notes:
            out += [f"- {n}" for n in notes] + [""]
    if meta.get("notes"):
        out += ["### Notes from the harness", ""] + [f"- {n}" for n in meta["notes"]] + [""]
    return "\n".join(out)
