"""The capacity report: tables per kind, days to 80%/90% with their interval, and runbook 002's
recommendations ("Scale database storage if usage > 80%"; CPU and read QPS are not measured here)."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.capacity.forecast import LEVELS, SeriesTrend
from tasks.reporting import markdown_table

SCALE_AT = 0.80  # runbook 002: scale storage if usage > 80%
FAIL_AT = 0.90  # runbooks 003/004: disk over 90% is critical
URGENT_DAYS = 7.0  # a disk reaching 90% within this many days fails the run
KIND_TITLES = {"disk": "Disks", "database": "Databases", "table": "Largest tables", "repository": "Git repositories",
               "backup_set": "Backup sets (newest complete set per kind; retained: everything not yet removed)"}
NOT_MEASURED = ("Not measured by tradeops (runbook 002's other rules, for the platform's own monitoring): "
                "add worker nodes if CPU > 70%; consider read replicas if read QPS > 1000.")


@dataclass(frozen=True)
class Recommendation:
    severity: str  # critical | high | medium | info
    series: str
    text: str


def human_bytes(value: float | None) -> str:
    if value is None:
        return ""
    sign, value = ("-" if value < 0 else ""), abs(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{sign}{value:.0f} {unit}" if unit == "B" else f"{sign}{value:.1f} {unit}"
        value /= 1024
    return ""


def days_text(days: tuple[float | None, float | None, float | None] | None) -> str:
    """"42 (30-70)": central days and the interval's soonest and latest; "now"; "never" (not growing)."""
    if not days:
        return ""
    central, soonest, latest = days
    if central == 0:
        return "now"
    def one(value: float | None) -> str:
        return "never" if value is None else f"{value:.0f}"
    return f"{one(central)} ({one(soonest)}-{one(latest)})"


def recommendations(trends: list[SeriesTrend], horizon_days: int) -> list[Recommendation]:
    found: list[Recommendation] = []
    for t in trends:
        if t.kind != "disk" or not t.capacity_bytes:
            continue
        used = t.used_fraction
        to_90 = t.days_to.get(FAIL_AT, (None, None, None))
        to_80 = t.days_to.get(SCALE_AT, (None, None, None))
        if used >= FAIL_AT:
            found.append(Recommendation("critical", t.series, f"{used:.0%} used: over 90%, add storage now"))
        elif used > SCALE_AT:
            found.append(Recommendation("high", t.series, f"{used:.0%} used: over 80%, scale storage (runbook 002)"))
        if used < FAIL_AT and to_90[0] is not None and to_90[0] <= URGENT_DAYS:
            found.append(Recommendation("critical", t.series, f"reaches 90% in {days_text(to_90)} days"))
        elif used <= SCALE_AT and to_80[0] is not None and to_80[0] <= horizon_days:
            found.append(Recommendation("medium", t.series, f"reaches 80% in {days_text(to_80)} days: plan storage "
                                                            f"before then"))
    growing = sorted((t for t in trends if t.kind == "table" and (t.slope_bytes_per_day or 0) > 0),
                     key=lambda t: t.slope_bytes_per_day, reverse=True)
    for t in growing[:3]:
        found.append(Recommendation("info", t.series, f"grows {human_bytes(t.slope_bytes_per_day * 30)} a month "
                                                      f"({t.growth_pct_per_30_days():.1f}%): review its retention"))
    return found


def failure_of(recommended: list[Recommendation]) -> str | None:
    critical = [f"{r.series}: {r.text}" for r in recommended if r.severity == "critical"]
    return "; ".join(critical) or None


def trend_rows(trends: list[SeriesTrend], kind: str) -> list[tuple]:
    rows = []
    for t in sorted((t for t in trends if t.kind == kind), key=lambda t: -t.last_bytes):
        per_month = None if t.slope_bytes_per_day is None else t.slope_bytes_per_day * 30
        interval = ("" if t.slope_low is None
                    else f"{human_bytes(t.slope_low * 30)} to {human_bytes(t.slope_high * 30)}")
        row = [t.series, human_bytes(t.last_bytes), human_bytes(per_month), interval, t.points]
        if kind == "disk":
            row[1:1] = [human_bytes(t.capacity_bytes), f"{t.used_fraction:.1%}" if t.used_fraction is not None else ""]
            row += [days_text(t.days_to.get(level)) for level in LEVELS]
        rows.append(tuple(row))
    return rows


def capacity_markdown(environment: str, window_days: int, horizon_days: int, trends: list[SeriesTrend],
                      recommended: list[Recommendation], plots_md: str) -> str:
    sections = [f"# Capacity report {environment}: last {window_days} days",
                f"Growth is the Theil-Sen slope over hourly sizes (daily over long windows), with its 95% interval; days to 80% / 90% full "
                f"are from the newest point along that line (soonest-latest from the interval). "
                f"{len(trends)} series."]
    if recommended:
        sections.append("## Recommendations\n\n" + markdown_table(
            ["severity", "series", "recommendation"], [(r.severity, r.series, r.text) for r in recommended]))
    else:
        sections.append("## Recommendations\n\nNone: no disk over 80% or reaching it within "
                        f"{horizon_days} days.")
    sections.append(NOT_MEASURED)
    if plots_md:
        sections.append(plots_md)
    for kind, title in KIND_TITLES.items():
        rows = trend_rows(trends, kind)
        if not rows:
            continue
        headers = ["series", "size", "growth / 30 days", "95% interval", "points"]
        if kind == "disk":
            headers = ["disk", "capacity", "used", "used size", "growth / 30 days", "95% interval", "points",
                       "days to 80%", "days to 90%"]
        sections.append(f"## {title}\n\n" + markdown_table(headers, rows))
    if not trends:
        sections.append("No sizes recorded in the window yet: health-check and backup runs record them.")
    return "\n\n".join(sections)
