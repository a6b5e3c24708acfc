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

import numpy as np
from prefect.states import State

from tasks.environment import LoadedEnvironment
from tasks.experiments.formatting import count, p_value, percent
from tasks.experiments.statistics import ExperimentStatistics
from tasks.experiments.statistics.multiple import benjamini_hochberg
from tasks.reporting import final_state, markdown_table, publish_summary


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


def strategy_families(results: list[dict]) -> list[dict]:
    """Experiments of one strategy evaluated in this run: Benjamini-Hochberg across their decision
    p-values (one kind: the decision's), with each variant's deflated Sharpe."""
    by_strategy: dict[str, list[dict]] = {}
    for r in results:
        if r.get("statistics") and r["statistics"]["p_value"] is not None:
            by_strategy.setdefault(r["strategy"], []).append(r)
    families = []
    for strategy, members in sorted(by_strategy.items()):
        if len(members) < 2:
            continue
        q = benjamini_hochberg(np.array([[m["statistics"]["p_value"] for m in members]]))[0]
        for member, q_value in zip(members, q):
            dsr = member["statistics"]["extras"].get("deflated_sharpe") or {}
            families.append({"strategy": strategy, "experiment": member["experiment"],
                             "p_value": member["statistics"]["p_value"], "q_value": float(q_value),
                             "dsr": dsr.get("dsr"), "trials": dsr.get("trials"), "decision": member["decision"]})
    return families


def summary_rows(results: list[dict]) -> list[tuple]:
    rows = []
    for r in results:
        st = r.get("statistics")
        rows.append((r["id"], r["experiment"], r["split"], percent(r["capital_pct"] / 100),
                     count(st["n_control"]) if st else "", count(st["n_variant"]) if st else "",
                     p_value(st["p_value"]) if st else "", p_value(st["srm_p_value"]) if st else "",
                     percent(st["lift"], signed_=True) if st else "",
                     f"**{r['decision']}**" if r.get("decision") else "not evaluated",
                     r.get("rule_name") or r["failure"]))
    return rows


def publish_evaluation_report(env: LoadedEnvironment, results: list[dict], registered: list[str],
                              metrics_file: Path, sent: list, folder: Path) -> State:
    """Step 3's report: the summary table, a section per experiment (plots linked in the file,
    embedded in the artifact), the strategy families, the metrics file; failed if any failed."""
    rows = summary_rows(results)
    header = [f"# Experiment evaluation: {env.name}"]
    table = (markdown_table(["id", "experiment", "split", "capital", "n control", "n variant", "p (decision test)",
                             "SRM p", "lift", "decision", "rule"], rows) if rows else "No running experiment.")
    notes = ("p (decision test) is the always-valid (or fixed-horizon, as configured) p-value of the mean PnL "
             "difference before correction; SRM p is the chi-square test of the trade counts against the split, "
             "which decides the sample-ratio-mismatch rules. Each section below gives the full reason.")
    sections = {"file": [*header, table, notes], "artifact": [*header, table, notes]}
    if registered:
        for part in sections.values():
            part.append("Registered from the platform: " + ", ".join(registered))
    families = strategy_families(results)
    for r in results:
        if r.get("markdown"):
            plots = [Path(p) for p in r["plots"]]
            sections["file"].append(f"## {r['experiment']}\n\n{r['markdown']}\n\n{plots_markdown(plots, embed=False)}")
            sections["artifact"].append(f"## {r['experiment']}\n\n{r['markdown']}\n\n{plots_markdown(plots, embed=True)}")
    for part in sections.values():
        if families:
            part.append(strategy_family_markdown(families))
        part.append(f"Metrics: `{metrics_file}` (node_exporter textfile format)")
    failures = [f"{r['experiment']}: {r['failure']}" for r in results if r["failure"]]
    failures += [f"{r['experiment']}: {f}" for r in results for f in r.get("findings") or []]
    failures += [f"alert not delivered: {d.describe()}" for o in sent for d in o.failures]
    failure = "; ".join(failures) or None
    result = {"experiments": [{k: v for k, v in r.items() if k != "markdown"} for r in results],
              "registered": registered, "strategy_families": families, "failures": failures}
    table_rows = [{"experiment": r["experiment"], "decision": r.get("decision") or "not evaluated",
                   "terminal": r.get("terminal"),
                   "p_value": (r.get("statistics") or {}).get("p_value"),
                   "srm_p_value": (r.get("statistics") or {}).get("srm_p_value"),
                   "lift": (r.get("statistics") or {}).get("lift"),
                   "rule": r.get("rule") or r["failure"]} for r in results]
    result = publish_summary("experiment-evaluation", env.name, env.store_url, "\n\n".join(sections["file"]), result,
                             failure, table=table_rows, reports_dir=str(folder),
                             artifact_markdown="\n\n".join(sections["artifact"]))
    return final_state(result, failure)

