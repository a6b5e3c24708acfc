"""One observation of a maintenance check, graded; the report and the store read only these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping

Severity = Literal["ok", "info", "warn", "critical", "error"]
SEVERITIES: tuple[str, ...] = ("ok", "info", "warn", "critical", "error")  # least to most severe


@dataclass(frozen=True)
class Finding:
    """`message` is one sentence with the measured value and the threshold it was held to."""

    check: str
    severity: Severity
    subject: str
    message: str
    value: float | int | None = None
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")


def worst_severity(findings: Iterable[Finding]) -> str:
    """The check's status: its most severe finding, "ok" when it found nothing."""
    return max((f.severity for f in findings), key=SEVERITIES.index, default="ok")
