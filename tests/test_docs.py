"""The README and docs/ hold together: the README stays short, every relative link lands on a
file (and a heading, for `page.md#anchor`), and the README's command reference names every
command and every option the command line offers, so a new option cannot ship undocumented.

No database: runs alone with `pytest --noconftest tests/test_docs.py` (the suite's conftest
starts a PostgreSQL server at session start, which these tests do not need).
"""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAX_README_LINES = 250
REFERENCE_HEADING = "## Command reference"
# Options every command has (Click's and ours); the reference states them once.
GLOBAL_OPTIONS = {"--help", "-h", "--version"}

_LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def _pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def _without_code(text: str) -> str:
    """Links inside fenced code blocks and inline code are not links."""
    text = _FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation removed, spaces to '-'."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    """Every heading's anchor, with GitHub's -1, -2 suffixes for repeated headings."""
    seen: dict[str, int] = {}
    anchors = set()
    for line in _FENCE.sub("", page.read_text()).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = github_anchor(match.group(1))
        count = seen.get(base, 0)
        anchors.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return anchors


def _relative_links(page: Path) -> list[str]:
    links = []
    for match in _LINK.finditer(_without_code(page.read_text())):
        target = match.group(1) or match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        links.append(target)
    return links


def test_the_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, \
        f"README.md has {lines} lines (at most {MAX_README_LINES}): move depth to docs/"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for link in _relative_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no file {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link}: no heading with anchor #{anchor} in {target.name}")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


def test_github_anchor_rules():
    assert github_anchor("Refreshing only what changed") == "refreshing-only-what-changed"
    assert github_anchor("Security: the threat model") == "security-the-threat-model"
    assert github_anchor("Refreshing: `refresh-views`") == "refreshing-refresh-views"
    assert github_anchor("1. Start the new version") == "1-start-the-new-version"


# --- the command reference against the command line -------------------------------------------

def _resolve_command(target: str) -> click.Command:
    """The Click command behind a console script: the object itself, or, for a small wrapper
    function, the command it calls (found among the names its code uses)."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    obj = getattr(module, attr)
    if isinstance(obj, click.Command):
        return obj
    code = obj.__code__
    for name in code.co_names:
        holder = module.__dict__.get(name)
        candidates = [holder] + [getattr(holder, n, None) for n in code.co_names]
        for candidate in candidates:
            if isinstance(candidate, click.Command):
                return candidate
    raise AssertionError(f"console script {target} calls no Click command found in its code")


def _walk(command: click.Command, path: tuple[str, ...]):
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from _walk(command.commands[name], (*path, name))


def cli_commands() -> dict[str, set[str]]:
    """Every command path of the console scripts -> its options' long names."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    found = {}
    for script, target in scripts.items():
        for path, command in _walk(_resolve_command(target), (script,)):
            options = set()
            for param in command.params:
                if isinstance(param, click.Option) and not param.hidden:
                    options |= {o for o in (*param.opts, *param.secondary_opts)
                                if o.startswith("--")}
            found[" ".join(path)] = options - GLOBAL_OPTIONS
    return found


def reference_section(text: str) -> str:
    start = text.find("\n" + REFERENCE_HEADING + "\n")
    assert start >= 0, f"README.md needs a '{REFERENCE_HEADING}' section"
    body = text[start + len(REFERENCE_HEADING) + 2:]
    end = re.search(r"^## ", body, re.M)
    return body[:end.start()] if end else body


def reference_entries(section: str) -> dict[str, str]:
    """Each command named in backticks at the head of a list item -> that item's text (its
    continuation lines included). An item may name two spellings of one command."""
    entries: dict[str, str] = {}
    items = re.split(r"^\s*- ", section, flags=re.M)[1:]
    for item in items:
        head = item.split(":", 1)[0]
        for name in re.findall(r"`([a-z][\w-]*(?: [a-z][\w-]*)*)(?: [A-Z\[][^`]*)?`", head):
            entries[name] = entries.get(name, "") + item
    return entries


def missing_from_reference(readme_text: str, commands: dict[str, set[str]]) -> list[str]:
    entries = reference_entries(reference_section(readme_text))
    missing = []
    for name, options in sorted(commands.items()):
        if name not in entries:
            missing.append(f"`{name}`: no line in the command reference")
            continue
        for option in sorted(options):
            if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", entries[name]):
                missing.append(f"`{name}`: option {option} not on its reference line")
    return missing


def test_the_command_reference_covers_every_command_and_option():
    commands = cli_commands()
    assert "refresh-views" in commands and "bioloupe-views cron install" in commands
    assert "--select" in commands["refresh-views"]
    missing = missing_from_reference(README.read_text(), commands)
    assert not missing, "README.md's command reference is behind --help:\n" + "\n".join(missing)


def test_the_reference_check_fails_for_an_undocumented_option_or_command():
    """The check itself bites: a new option, or a new command, without its README line."""
    readme = ("# x\n\n" + REFERENCE_HEADING + "\n\n"
              "- `tool` (= `tool run`): runs: `--dsn` `--check/--no-check`\n"
              "- `tool cron`: a group:\n"
              "  - `tool cron install NAME`: `--dsn`\n"
              "  `--schedule`\n"
              "\n## Next\n\n`--later` is out of the section.\n")
    documented = {"tool": {"--dsn", "--check", "--no-check"},
                  "tool run": {"--dsn", "--check", "--no-check"},
                  "tool cron": set(), "tool cron install": {"--dsn", "--schedule"}}
    assert missing_from_reference(readme, documented) == []
    assert missing_from_reference(readme, {**documented, "tool": {"--dsn", "--new"}}) == \
        ["`tool`: option --new not on its reference line"]
    # A prefix of a documented flag does not count.
    assert missing_from_reference(readme, {**documented, "tool run": {"--che"}}) == \
        ["`tool run`: option --che not on its reference line"]
    assert missing_from_reference(readme, {**documented, "tool new": set()}) == \
        ["`tool new`: no line in the command reference"]
    # An option documented only on another command's line, or after the section, does not count.
    assert missing_from_reference(readme, {**documented, "tool cron": {"--schedule"}}) == \
        ["`tool cron`: option --schedule not on its reference line"]
    assert missing_from_reference(readme, {**documented, "tool": {"--later"}}) == \
        ["`tool`: option --later not on its reference line"]
