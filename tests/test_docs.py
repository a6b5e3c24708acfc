"""The documentation holds together: README.md is a front door (at most 200 lines), every relative
link in README.md, docs/ and bench/README.md points at a file (and heading) that exists, every flow
of the registry has its page, and every page says in its opening line what it covers and links
back to the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows import FLOWS
from flows.registry import quickstart_flows

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_LINES = 200

PAGES = sorted(DOCS.rglob("*.md")) + [REPO / "bench" / "README.md"]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def relative_links(page: Path) -> list[str]:
    text = INLINE_CODE.sub("", FENCE.sub("", page.read_text()))
    return [target for target in LINK.findall(text)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)]  # http:, https:, mailto: ...


def heading_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as
    hyphens, a repeated one numbered."""
    anchors: set[str] = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        numbered, n = slug, 0
        while numbered in anchors:
            n += 1
            numbered = f"{slug}-{n}"
        anchors.add(numbered)
    return anchors


def test_readme_is_a_front_door_of_at_most_200_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_at_something_that_exists(page: Path):
    broken = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in heading_anchors(destination):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_every_flow_has_its_page_and_the_readme_links_it():
    readme = README.read_text()
    missing = [name for name in FLOWS if not (DOCS / "flows" / f"{name}.md").is_file()]
    assert not missing, f"flows without a page in docs/flows/: {missing}"
    unlisted = [name for name in FLOWS if f"(docs/flows/{name}.md)" not in readme]
    assert not unlisted, f"flows README.md does not link: {unlisted}"
    stray = sorted(p.stem for p in (DOCS / "flows").glob("*.md") if p.stem not in FLOWS)
    assert not stray, f"pages of flows that are not in flows.FLOWS: {stray}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_page_opens_with_what_it_covers_and_a_link_back_to_the_readme(page: Path):
    lines = [line for line in page.read_text().splitlines() if line.strip()]
    assert lines[0].startswith("# "), f"{page.relative_to(REPO)} does not start with a title"
    opening = lines[1]
    assert not opening.startswith(("#", "|", "-", "```")), f"{page.relative_to(REPO)}: no opening line"
    back = [t for t in relative_links_in(opening) if t.partition("#")[0].endswith("README.md")
            and (page.parent / t.partition("#")[0]).resolve() == README]
    assert back, f"{page.relative_to(REPO)}: its opening line does not link back to README.md"


def relative_links_in(text: str) -> list[str]:
    return [target for target in LINK.findall(INLINE_CODE.sub("", text))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)]


def test_readme_names_quickstarts_flows_in_their_order():
    """README's run section lists the flows `make run` runs, in the registry's order."""
    text = " ".join((REPO / "README.md").read_text().split())
    section = text[text.index("`make run` creates"):text.index("It ends by printing")]
    named = [name for name in re.findall(r"`([a-z-]+)`", section) if name in FLOWS]
    in_quickstart = [spec.name for spec in quickstart_flows()]
    assert [name for name in named if name in in_quickstart] == in_quickstart
