"""One comparison for every restore check: what came back against what the manifest recorded."""

from __future__ import annotations

from typing import Any, Callable, Mapping


def differences(restored: Mapping[str, Any], recorded: Mapping[str, Any], label: str,
                changed: Callable[[str, Any, Any], str | None]) -> list[str]:
    """Each name missing from the restore, absent from the manifest, or `changed` (which returns
    the problem, or None when the two agree), in name order."""
    problems = []
    for name in sorted(set(recorded) | set(restored)):
        if name not in restored:
            problems.append(f"{label}{name} is missing")
        elif name not in recorded:
            problems.append(f"{label}{name} is not in the manifest")
        elif (problem := changed(name, restored[name], recorded[name])) is not None:
            problems.append(problem)
    return problems
