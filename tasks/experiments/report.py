"""The experiment report in markdown: every statistic in one table (numbers rounded), the
decision and its rule, the plots, and the section on several variants of one strategy.

Plots are written twice: as files next to the report (linked relatively, so the report file
opens with its pictures), and embedded in the Prefect markdown artifact as `data:image/png`
URIs, so they show inside the Prefect UI wherever the run was. Prefect 3.8.8's UI renders them:
the default (v2, React) UI passes `data:image/` sources on `img` through both rehype-sanitize
(its schema adds `data` to the allowed `src` protocols) and react-markdown's URL transform (it
keeps `data:image/` on `img src`), and the v1 (Vue) UI renders a markdown image token as a plain
`<img src>`; checked in the bundles shipped in prefect/server/ui-v2/assets/lazy-markdown-*.js
and prefect/server/ui/assets/index-*.js.
"""

from __future__ import annotations

import base64
from pathlib import Path

from tasks.experiments.formatting import count, p_value, percent
from tasks.experiments.statistics import ExperimentStatistics
from tasks.reporting import markdown_table


def statistics_markdown(stats: ExperimentStatistics, title: str = "Evaluation") -> str:
    d = stats.as_dict()
    lines = [f"### {title}: **{d['decision']}**" + (" (terminal: conclude it)" if d["terminal"] else ""), "",
             d["rule"], ""]
    lines += [f"- compliance: {finding}" for finding in d["compliance_findings"]]
    lines.append(markdown_table(["statistic", "control", "variant", "value", "note"], stats.table()))
    return "\n".join(lines)


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def plots_markdown(plots: list[Path], embed: bool) -> str:
    """The plots as markdown images: embedded (artifact) or linked next to the report file."""
    return "\n\n".join(f"![{Path(p).stem}]({png_data_uri(p) if embed else Path(p).name})" for p in plots)


def strategy_family_markdown(families: list[dict]) -> str:
    """Several variants of one strategy evaluated together are several tests: their decision
    p-values with Benjamini-Hochberg q-values, and each variant's deflated Sharpe ratio."""
    if not families:
        return ""
    rows = [(f["strategy"], f["experiment"], p_value(f["p_value"]), p_value(f["q_value"]), percent(f["dsr"]),
             count(f["trials"]), f["decision"]) for f in families]
    return ("## Variants of one strategy\n\nSeveral experiments of one strategy are several tests of that strategy: "
            "q is the Benjamini-Hochberg adjusted decision p-value across them (false discovery rate); the deflated "
            "Sharpe is the chance the variant's Sharpe beats what the best of that many variants would show by luck. "
            "Reported beside each experiment's own decision.\n\n"
            + markdown_table(["strategy", "experiment", "p", "q (BH)", "deflated Sharpe", "variants", "decision"], rows))
