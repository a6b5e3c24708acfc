"""Strategy repositories: non-bare git working copies with history, branches and tags.

Deployment and rollback flows need real repositories to check out, diff and tag.
Objects are written with pygit2 directly (no working-tree round trips), with fixed
signatures and times derived from ``now``, so the same seed and ``now`` give the
same commit ids. The working copy is checked out on ``main`` at the end.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

import pygit2
from pygit2.enums import CheckoutStrategy, FileMode, ObjectType

AUTHORS = (
    ("Alice Nguyen", "alice@tradeops.example"),
    ("Bob Martins", "bob@tradeops.example"),
    ("Carol Diaz", "carol@tradeops.example"),
)
TAGGER = ("tradeops release bot", "release-bot@tradeops.example")

FEATURES = (
    ("volatility_filter", "Skip entries when realised volatility exceeds the cap"),
    ("position_cap", "Cap position size at max_position"),
    ("regime_gate", "Only trade in favourable market regimes"),
    ("slippage_model", "Account for expected slippage in signal strength"),
    ("cooldown", "Wait cooldown_bars bars after an exit before re-entering"),
    ("drawdown_brake", "Halve exposure after a drawdown beyond the limit"),
    ("spread_guard", "Do not cross spreads wider than max_spread_bps"),
)
FEATURE_BRANCHES = ("adaptive-lookback", "ml-signal-overlay", "intraday-rebalance", "cost-aware-sizing")
FIXES = (
    "off-by-one in signal window",
    "division by zero on flat prices",
    "stale params after hot reload",
    "sign of exit threshold",
    "rounding of order quantities",
)
TUNABLE = ("lookback", "entry_z", "exit_z", "stop_loss_pct", "max_position")


@dataclass
class _RepoState:
    """The content of a strategy repository at one commit."""

    name: str
    params: dict
    features: list = field(default_factory=list)
    tests: list = field(default_factory=list)
    changelog: list = field(default_factory=list)
    fixes: int = 0

    def files(self) -> dict[str, bytes]:
        out = {
            ".gitignore": b"__pycache__/\n*.pyc\n.venv/\n",
            "README.md": self._readme().encode(),
            "strategy.py": self._strategy().encode(),
            "params.yaml": self._params_yaml().encode(),
        }
        if self.tests:
            out["tests/test_strategy.py"] = self._tests().encode()
        return out

    def _readme(self) -> str:
        title = self.name.replace("_", " ").title()
        lines = [f"# {title}", "", f"The `{self.name}` trading strategy.", "", "## Parameters", ""]
        lines += [f"- `{k}`: {v}" for k, v in sorted(self.params.items())]
        if self.features:
            lines += ["", "## Risk features", ""]
            lines += [f"- `{name}`: {doc}" for name, doc in self.features]
        if self.changelog:
            lines += ["", "## Changelog", ""]
            lines += [f"- {entry}" for entry in self.changelog]
        return "\n".join(lines) + "\n"

    def _params_yaml(self) -> str:
        lines = [f"strategy: {self.name}", "params:"]
        lines += [f"  {k}: {v}" for k, v in sorted(self.params.items())]
        return "\n".join(lines) + "\n"

    def _strategy(self) -> str:
        cls = "".join(part.title() for part in self.name.split("_")) + "Strategy"
        lines = [
            f'"""{self.name}: signal generation and risk checks."""',
            "",
            "from dataclasses import dataclass",
            "",
            f"FIX_LEVEL = {self.fixes}",
            "",
            "",
            "@dataclass",
            f"class {cls}:",
        ]
        for k, v in sorted(self.params.items()):
            lines.append(f"    {k}: {type(v).__name__} = {v!r}")
        lines += [
            "",
            "    def signal(self, prices: list[float]) -> float:",
            "        window = prices[-self.lookback:]",
            "        if len(window) < 2:",
            "            return 0.0",
            "        mean = sum(window) / len(window)",
            "        var = sum((p - mean) ** 2 for p in window) / (len(window) - 1)",
            "        z = (prices[-1] - mean) / (var ** 0.5 or 1.0)",
            "        if abs(z) < self.entry_z:",
            "            return 0.0",
            "        return max(-1.0, min(1.0, z / (2 * self.entry_z)))",
        ]
        for name, doc in self.features:
            lines += ["", f"    def {name}(self, exposure: float) -> float:", f'        """{doc}."""']
            lines.append("        return exposure")
        return "\n".join(lines) + "\n"

    def _tests(self) -> str:
        module_cls = "".join(part.title() for part in self.name.split("_")) + "Strategy"
        lines = [f"from strategy import {module_cls}"]
        for test in self.tests:
            lines += ["", "", f"def test_{test}():", f"    s = {module_cls}()"]
            if test == "flat_prices_give_no_signal":
                lines.append("    assert s.signal([100.0] * 200) == 0.0")
            else:
                lines.append("    assert -1.0 <= s.signal([100.0 + i % 7 for i in range(200)]) <= 1.0")
        return "\n".join(lines) + "\n"


def write_tree(repo: pygit2.Repository, files: dict[str, bytes]) -> pygit2.Oid:
    """Write a (nested) tree for ``{"dir/file": content}`` and return its id."""
    nested: dict = {}
    for path, content in files.items():
        node = nested
        *dirs, leaf = path.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = content

    def build(node: dict) -> pygit2.Oid:
        builder = repo.TreeBuilder()
        for name in sorted(node):
            value = node[name]
            if isinstance(value, dict):
                builder.insert(name, build(value), FileMode.TREE)
            else:
                builder.insert(name, repo.create_blob(value), FileMode.BLOB)
        return builder.write()

    return build(nested)


def _semver(index: int) -> str:
    return f"v{1 + index // 4}.{index % 4}.0"


def _mutate(rng: random.Random, state: _RepoState, step: int) -> str:
    """Apply one plausible change and return its commit message."""
    if step == 1:
        state.tests.append("flat_prices_give_no_signal")
        return "Add unit tests for signal generation"
    remaining = [f for f in FEATURES if f not in state.features]
    kind = rng.choice(("tune", "tune", "feature", "test", "fix", "docs") if remaining else ("tune", "test", "fix"))
    if kind == "tune":
        key = rng.choice(TUNABLE)
        old = state.params[key]
        if isinstance(old, int):
            new = max(1, old + rng.choice((-10, -5, 5, 10, 20))) if key == "lookback" else old + rng.choice((500, 1000))
        else:
            new = round(max(0.05, old + rng.choice((-0.25, -0.1, 0.1, 0.25))), 2)
        state.params[key] = new
        state.changelog.append(f"tuned {key} {old} -> {new}")
        return f"Tune {key} from {old} to {new}\n\nBacktest over the last quarter favoured the new value."
    if kind == "feature":
        feature = remaining[rng.randrange(len(remaining))]
        state.features.append(feature)
        state.changelog.append(f"added {feature[0]}")
        return f"Add {feature[0]} risk check\n\n{feature[1]}."
    if kind == "test":
        state.tests.append(f"signal_bounded_{len(state.tests)}")
        return "Add regression test for bounded signal"
    if kind == "fix":
        bug = FIXES[state.fixes % len(FIXES)]
        state.fixes += 1
        state.changelog.append(f"fix #{state.fixes}: {bug}")
        return f"Fix {bug}"
    state.changelog.append("documented parameters")
    return "Document strategy parameters in README"


def create_strategy_repo(path, name: str, seed: int, now: datetime, commits: int) -> pygit2.Repository:
    """Create one strategy repository at ``path`` (which must not exist or be empty)."""
    rng = random.Random(f"{seed}:git:{name}")
    repo = pygit2.init_repository(str(path), bare=False, initial_head="main")
    state = _RepoState(
        name=name,
        params={
            "lookback": rng.choice((20, 30, 60)),
            "entry_z": round(rng.uniform(1.5, 2.5), 2),
            "exit_z": round(rng.uniform(0.2, 0.6), 2),
            "stop_loss_pct": round(rng.uniform(1.0, 3.0), 2),
            "max_position": rng.choice((1000, 2000, 5000)),
        },
    )
    base = int(now.timestamp())

    def commit(message: str, parents: list, when: int) -> pygit2.Oid:
        author_name, author_email = AUTHORS[rng.randrange(len(AUTHORS))]
        sig = pygit2.Signature(author_name, author_email, when, 0)
        tree = write_tree(repo, state.files())
        return repo.create_commit(None, sig, sig, message + "\n", tree, parents)

    def when(days_ago: float) -> int:
        return base - int(days_ago * 86400) + rng.randrange(0, 6 * 3600)

    # main: a steady history, one commit every four days, a release tag every third commit
    main_head = None
    tags = []
    for i in range(commits):
        message = f"Initial {name} strategy skeleton" if i == 0 else _mutate(rng, state, i)
        main_head = commit(message, [main_head] if main_head else [], when(6 + 4 * (commits - i)))
        if i % 3 == 2:
            tags.append((_semver(len(tags)), main_head))

    # develop: two commits ahead of main
    develop = main_head
    for days_ago in (5, 4):
        develop = commit(_mutate(rng, state, 99), [develop], when(days_ago))
    # feature/...: branched off develop, work in progress
    feature_name = f"feature/{FEATURE_BRANCHES[rng.randrange(len(FEATURE_BRANCHES))]}"
    feature = develop
    for days_ago, message in ((2, "WIP: prototype"), (1, "WIP: wire into signal")):
        state.changelog.append(f"{feature_name}: {message[5:]}")
        feature = commit(f"{message} for {feature_name[8:]}", [feature], when(days_ago))

    repo.references.create("refs/heads/main", main_head, force=True)
    repo.references.create("refs/heads/develop", develop, force=True)
    repo.references.create(f"refs/heads/{feature_name}", feature, force=True)
    for tag_name, target in tags:
        tagger = pygit2.Signature(TAGGER[0], TAGGER[1], repo[target].commit_time + 3600, 0)
        repo.create_tag(tag_name, target, ObjectType.COMMIT, tagger, f"Release {tag_name}\n")

    repo.set_head("refs/heads/main")
    repo.checkout_head(strategy=CheckoutStrategy.FORCE)
    return repo


def create_strategy_repos(repos_dir, names: tuple[str, ...], seed: int, now: datetime, commits: int) -> None:
    """One working copy per strategy, ``repos_dir/<strategy>``."""
    repos_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        repo = create_strategy_repo(repos_dir / name, name, seed, now, commits)
        repo.free()
