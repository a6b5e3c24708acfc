"""The sandbox's Python application: `apps/pricing-service`, a git repository with pinned
`requirements.txt` and its own pytest tests, and what the dependency-update flow reads offline:

- `apps/wheelhouse/`: wheels of every version of its dependencies the recorded index lists, and
  of its test tools (pytest and what it requires, packed from this installation), for
  `pip install --no-index --find-links`;
- `apps/index/versions.json`: the package index's versions of each dependency, as recorded;
- `apps/advisories/osv.json`: known vulnerabilities, OSV records (the format pip-audit reads).

Planted: `tickfmt==1.4.0` has patch releases (1.4.1, 1.4.2) and newer minor and major ones;
`riskcalc==2.1.0` is vulnerable (SANDBOX-2026-0001, fixed in 2.2.0; its patch 2.1.1 still is);
`quotebus==3.0.2` is current.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy

from .git_repos import write_tree
from .wheels import build_wheel, repack_installed

APP_NAME = "pricing-service"
TEST_TOOLS = ("pytest",)
PINS = {"tickfmt": "1.4.0", "riskcalc": "2.1.0", "quotebus": "3.0.2"}
VULNERABLE = ("riskcalc", "2.1.0", "SANDBOX-2026-0001", "2.2.0")

TICKFMT = '''"""Price formatting."""

__version__ = "{version}"


def format_price(value: float, decimals: int = 2) -> str:
    return f"{{value:,.{{decimals}}f}}"
'''
TICKFMT_2 = '''"""Price formatting (2.x: format_price became render)."""

__version__ = "{version}"


def render(value: float, decimals: int = 2) -> str:
    return f"{{value:,.{{decimals}}f}}"
'''
RISKCALC = '''"""Risk figures."""

__version__ = "{version}"


def value_at_risk(returns: list[float], level: float = 0.95) -> float:
    ordered = sorted(returns)
    index = int((1 - level) * len(ordered))
    return -ordered[index]
'''
QUOTEBUS = '''"""Quote messages."""

__version__ = "{version}"


def quote(symbol: str, bid: float, ask: float) -> dict:
    return {{"symbol": symbol, "bid": bid, "ask": ask, "mid": (bid + ask) / 2}}
'''
VERSIONS = {
    "tickfmt": {"1.3.9": TICKFMT, "1.4.0": TICKFMT, "1.4.1": TICKFMT, "1.4.2": TICKFMT, "1.5.0": TICKFMT,
                "2.0.0": TICKFMT_2},
    "riskcalc": {"2.1.0": RISKCALC, "2.1.1": RISKCALC, "2.2.0": RISKCALC},
    "quotebus": {"3.0.1": QUOTEBUS, "3.0.2": QUOTEBUS},
}

APP_FILES = {
    ".gitignore": "__pycache__/\n*.pyc\n.venv/\n",
    "README.md": "# pricing-service\n\nPrices quotes for the trading desk. Dependencies are pinned in "
                 "`requirements.txt`; `python -m pytest` runs the tests.\n",
    "pricing_service/__init__.py": '"""pricing-service: quote mid prices, formatted, with a VaR figure."""\n',
    "pricing_service/pricing.py": '''"""Quote a symbol: mid price formatted for the desk, and a 95% VaR of recent returns."""

from quotebus import quote
from riskcalc import value_at_risk
from tickfmt import format_price


def priced_quote(symbol: str, bid: float, ask: float, returns: list[float]) -> dict:
    message = quote(symbol, bid, ask)
    return {"symbol": symbol, "mid": format_price(message["mid"], 2), "var_95": round(value_at_risk(returns), 4)}
''',
    "tests/test_pricing.py": '''from pricing_service.pricing import priced_quote


def test_mid_price_is_formatted_with_two_decimals():
    assert priced_quote("EURUSD", 1234.5, 1234.7, [0.01] * 20)["mid"] == "1,234.60"


def test_value_at_risk_is_the_fifth_percentile_loss():
    returns = [x / 100 for x in range(-10, 10)]
    assert priced_quote("EURUSD", 1.0, 1.0, returns)["var_95"] == 0.09
''',
}


def requirements_text(pins: dict[str, str]) -> str:
    return "# pinned by hand; tradeops dependency-update proposes updates on deps/update-<date> branches\n" + \
        "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def advisory(package: str, introduced: str, fixed: str, advisory_id: str, summary: str,
             severity: str = "HIGH") -> dict:
    """One OSV record: `package` affected from `introduced` until `fixed`."""
    return {
        "schema_version": "1.6.0", "id": advisory_id, "modified": "2026-11-20T00:00:00Z",
        "published": "2026-11-18T00:00:00Z", "summary": summary, "aliases": [],
        "affected": [{"package": {"ecosystem": "PyPI", "name": package},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": introduced}, {"fixed": fixed}]}]}],
        "database_specific": {"severity": severity},
    }


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _commit_files(repo: pygit2.Repository, files: dict[str, str], message: str, when: int) -> pygit2.Oid:
    tree = write_tree(repo, {path: content.encode() for path, content in files.items()})
    signature = pygit2.Signature("Alice Nguyen", "alice@tradeops.example", when, 0)
    return repo.create_commit("refs/heads/main", signature, signature, message, tree, [])


def create_applications(apps_dir: Path, now: datetime) -> Path:
    """Write `apps/` (see the module docstring); returns the application's folder."""
    app = apps_dir / APP_NAME
    repo = pygit2.init_repository(str(app), initial_head="main")
    _commit_files(repo, {**APP_FILES, "requirements.txt": requirements_text(PINS)},
                  "pricing-service: quotes, formatting and VaR\n", int(now.timestamp()) - 30 * 86400)
    repo.checkout_head(strategy=CheckoutStrategy.FORCE)
    repo.free()
    wheelhouse = apps_dir / "wheelhouse"
    for name, versions in VERSIONS.items():
        for version, source in versions.items():
            build_wheel(wheelhouse, name, version, {f"{name}/__init__.py": source.format(version=version)})
    repack_installed(wheelhouse, TEST_TOOLS)
    _write_json(apps_dir / "index" / "versions.json", {
        "recorded_at": now.isoformat(), "source": "the sandbox's package index, recorded",
        "packages": {name: sorted(versions) for name, versions in VERSIONS.items()}})
    package, version, advisory_id, fixed = VULNERABLE
    _write_json(apps_dir / "advisories" / "osv.json", [advisory(
        package, "0", fixed, advisory_id, f"{package} before {fixed} evaluates untrusted input in value_at_risk")])
    return app
