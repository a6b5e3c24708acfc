"""The correlation report: the decision and why, the validation checks, the flagged pairs, the
matrix as a table, and what changed against the live matrix."""

from __future__ import annotations

from tasks.correlation.matrix import Check, CorrelationMatrix, flagged_pairs
from tasks.reporting import STATUS_ICON, markdown_table


def matrix_table(matrix: CorrelationMatrix) -> str:
    return markdown_table([""] + matrix.strategies,
                          [[a] + [f"{v:.3f}" for v in row] for a, row in zip(matrix.strategies, matrix.values)])


def correlation_markdown(title: str, decision: str, candidate: CorrelationMatrix, checks: list[Check],
                         flag_above: float, version: str | None, plots_md: str) -> str:
    sections = [f"# {title}: {decision}"]
    if version:
        sections.append(f"Live version: `{version[:12]}`.")
    if checks:
        sections.append("## Validation (runbook 001)\n\n" + markdown_table(
            ["", "check", "detail"], [(STATUS_ICON["pass" if c.passed else "fail"], c.name, c.detail) for c in checks]))
    if candidate.excluded:
        sections.append("Excluded (too few returns of their own to meet the per-pair rule):\n\n" + markdown_table(
            ["strategy", "why"], sorted(candidate.excluded.items())))
    flagged = flagged_pairs(candidate, flag_above)
    sections.append(f"## Pairs with |correlation| ≥ {flag_above:g}\n\n" + (markdown_table(
        ["strategy", "strategy", "correlation", "points"], [(a, b, f"{v:.3f}", k) for a, b, v, k in flagged])
        if flagged else "None."))
    if candidate.strategies:
        sections.append("## Matrix (hourly returns)\n\n" + matrix_table(candidate))
    if plots_md:
        sections.append(plots_md)
    return "\n\n".join(sections)
