"""The soak's report as a rich table: what ``smarttrip bench soak`` prints (:mod:`bench.soak` runs it)."""

from __future__ import annotations

import os

from rich.table import Table

from bench.soak import DWELL_S, JUDGED, RSS_GROWTH_LIMIT, SoakResult

__all__ = ["table"]


def table(r: SoakResult) -> Table:
    """The soak's report as a rich table (what ``smarttrip bench soak`` prints)."""
    title = (
        f"Soak: {r.minutes:g} min at {r.rate:g} ranks/s offered, after {r.warmup_s:g} s warm-up; attribution "
        f"window {r.join_window_s:g} s, allowed lateness {r.allowed_lateness_s:g} s, longest state TTL "
        f"{r.state_ttl_s:g} s (event time), learner duplicate filter {r.dedupe_horizon_s:g} s; warm-up covers "
        f"the longest state horizon of each judged process ({', '.join(f'{k} {v:g} s' for k, v in r.horizons.items())}); "
        f"clicks within {DWELL_S:g} s of their slate"
    )
    t = Table(title=title)
    for col, justify in (("measure", "left"), ("value", "right"), ("target", "right"), ("× target", "right")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    met = r.targets()
    t.add_row("ranks/s", f"{r.throughput:,.1f}", f">= {0.98 * r.rate:,.0f}", f"{r.throughput / r.rate:.2f}")
    t.add_row("ranked requests", f"{r.ranks:,}", f"{r.rate * r.minutes * 60:,.0f} offered", "")
    t.add_row("not sent (loop behind schedule)", f"{r.unsent:,}", "0", "")
    for name, value in r.latency_ms.items():
        t.add_row(f"rank latency {name}", f"{value:.1f} ms", "", "")
    t.add_row("errors", f"{r.error_count} {r.errors or ''}", "0", "ok" if met["errors"] else "FAIL")
    t.add_row("events posted", f"{r.events_posted:,}", "", "")
    t.add_row(
        "examples joined / learned (all policies)",
        f"{r.examples_joined:,.0f} / {r.examples_learned:,.0f}",
        "",
        "",
    )
    if r.joined_by:
        t.add_row(
            "join examples by kind",
            ", ".join(f"{k} {v:,.0f}" for k, v in sorted(r.joined_by.items())),
            "",
            "",
        )
    if r.filtered_by:
        t.add_row("examples kept from the learners (bot rules, user cap)",
                  ", ".join(f"{k} {v:,.0f}" for k, v in sorted(r.filtered_by.items())), "", "")  # fmt: skip
    if r.learned_by:
        t.add_row("learner examples by policy/outcome",
                  ", ".join(f"{k} {v:,.0f}" for k, v in sorted(r.learned_by.items())), "", "")  # fmt: skip
    by_reason = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(r.dead_letters_by_reason.items()))
    t.add_row("dead letters", f"{r.dead_letters:,.0f}" + (f" ({by_reason})" if by_reason else ""), "0", "")
    if r.open_sessions:
        t.add_row("sessions held by the join, warm → end",
                  f"{r.open_sessions.get('warm', 0):,.0f} → {r.open_sessions.get('end', 0):,.0f}", "", "")  # fmt: skip
    for name, start in r.rss_start.items():
        warm, end, growth = r.rss_warm.get(name), r.rss_end.get(name), r.rss_growth(name)
        judged = name in JUDGED
        t.add_row(
            f"RSS {name} (MiB): start → warm → end",
            f"{(start or 0) / 2**20:.0f} → {(warm or 0) / 2**20:.0f} → {(end or 0) / 2**20:.0f}"
            + (f" ({growth:+.1%} after warm-up)" if growth is not None else ""),
            f"< +{RSS_GROWTH_LIMIT:.0%}" if judged else "(reported)",
            "" if growth is None or not judged else f"{growth / RSS_GROWTH_LIMIT:.2f}",
        )
    cores = os.cpu_count() or 1
    for name, cpu in r.cpu_s.items():
        per_rank = r.cpu_us_per_rank(name)
        if cpu is None or per_rank is None:
            continue
        wall = r.wall_s or r.duration_s  # CPU is measured over the whole run
        share = cpu / wall / cores if wall > 0 else 0.0
        t.add_row(f"CPU {name} per rank", f"{per_rank:,.0f} µs ({share:.0%} of {cores} cores)", "", "")
    for name in r.lag_end:
        drained = r.lag_drained.get(name, 0.0)
        t.add_row(f"consumer lag {name} (records)",
                  f"{r.lag_end[name]:,.0f} at end, {drained:,.0f} after ≤ {r.drain_s:g} s",
                  "0 after drain", "ok" if drained == 0 else "FAIL")  # fmt: skip
    return t
