"""`tradeops flows`: every flow, its deployments and schedules (flows/registry.py)."""

from __future__ import annotations

import argparse
import json

from deployments.calendar import scheduled_jobs
from flows import FLOWS


def add_arguments(parser: argparse.ArgumentParser, parser_class: type) -> None:
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    jobs = scheduled_jobs()
    rows = [
        {"flow": name, "deployments": [
            {"name": j.deployment, **j.schedule.as_dict(), "schedule": j.schedule_text,
             "parameters": j.parameters, "source": j.source}
            for j in jobs if j.flow == name]}
        for name in FLOWS
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        schedules = "; ".join(f"{d['name']}: {d['schedule']}" for d in row["deployments"]) or "on demand"
        print(f"{row['flow']:<24} {schedules}")
    return 0
