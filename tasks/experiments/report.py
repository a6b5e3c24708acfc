"""The experiment report in markdown: every statistic in one table, the decision and its rule."""

from __future__ import annotations

from tasks.experiments.statistics import ExperimentStatistics
from tasks.reporting import markdown_table


def _number(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_number(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_number(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def statistics_markdown(stats: ExperimentStatistics, title: str = "Evaluation") -> str:
    d = stats.as_dict()
    lines = [f"### {title}: **{d['decision']}**", "", d["rule"], ""]
    lines += [f"- compliance: {finding}" for finding in d["compliance_findings"]]
    lines.append(markdown_table(["statistic", "control", "variant", "value", "note"],
                                [(name, _number(c), _number(v), _number(x), note) for name, c, v, x, note in stats.table()]))
    return "\n".join(lines)
