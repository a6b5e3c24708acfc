"""What applying a configuration would change: the blocks it builds compared, field by field,
with the blocks saved now, before anything is written.

`tradeops apply` (and every command given `--config` or a dotted `--set`) saves only the blocks
that differ and audits the change with each key's old and new value; secrets are compared but
never recorded (their value shows as "(secret)"). A file that changes nothing writes nothing and
appends nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import SecretStr

SECRET = "(secret)"  # what the audit trail shows of a secret's old or new value


@dataclass(frozen=True)
class KeyChange:
    key: str  # <block name>.<field>[.<dict key>...]
    old: Any
    new: Any


@dataclass
class ConfigChange:
    environment: str
    created: bool  # the environment block did not exist: a new environment
    changes: list[KeyChange] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)  # the block documents to save (new or changed)

    @property
    def unchanged(self) -> bool:
        return not self.blocks

    def recorded(self) -> list[dict]:
        """The changes as the audit entry records them."""
        return [asdict(change) for change in self.changes]

    def summary(self, limit: int = 6) -> str:
        shown = [f"{c.key}: {c.old!r} -> {c.new!r}" for c in self.changes[:limit]]
        more = len(self.changes) - limit
        return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def changes_to_apply(environment: str, blocks: dict[str, Any]) -> ConfigChange:
    """`blocks` (by document name, as tradeops.cli.apply.build_blocks makes them) against what is saved."""
    change = ConfigChange(environment, created=False)
    for name, block in blocks.items():
        try:
            saved = type(block).load(name)
        except ValueError:  # no such block document yet
            saved = None
            if name == environment:
                change.created = True
        differences = _differences(name, _fields(saved) if saved is not None else {}, _fields(block))
        if differences or saved is None:
            change.blocks.append(name)
            change.changes += differences
    return change


def _fields(block: Any) -> dict[str, Any]:
    return {name: getattr(block, name) for name in type(block).model_fields}


def _differences(prefix: str, old: dict[str, Any], new: dict[str, Any]) -> list[KeyChange]:
    found = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) or isinstance(after, dict):
            found += _differences(f"{prefix}.{key}", before or {}, after or {})
        elif _plain(before) != _plain(after):
            found.append(KeyChange(f"{prefix}.{key}", _shown(before), _shown(after)))
    return found


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _shown(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return SECRET
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value]
    return str(value)
