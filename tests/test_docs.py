"""The documentation stays true to the repository: every relative link and #anchor in README.md and
docs/*.md resolves, and every `cl-bench`, `python run_bench.py` and `python eval.py` command in their
fenced code blocks parses with the current argument parsers (nothing is run)."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from cl_bench.cli import COMMANDS, build_parser, eval_command

ROOT = Path(__file__).resolve().parents[1]


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def doc_id(path: Path) -> str:
    path = path.resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()


# ---- markdown: code fences, headings, links ---------------------------------------------------------------

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass
class Line:
    number: int  # 1-based line number in its file
    text: str
    in_fence: bool


def lines_of(path: Path) -> list[Line]:
    """Every line, marked as inside a fenced code block or not (the fence lines themselves count as inside)."""
    lines, fence = [], None
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = FENCE.match(text)
        if fence is None and match:
            fence = match.group(1)
            lines.append(Line(number, text, True))
        elif fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                    and not text.strip()[len(match.group(1)):].strip():
                fence = None
            lines.append(Line(number, text, True))
        else:
            lines.append(Line(number, text, False))
    return lines


HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text (links and emphasis reduced to their words), lowercased,
    without punctuation but for hyphens and underscores, spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w: letters, digits and _, in any script
    return text.replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    """The #anchors of a markdown file: its headings' GitHub slugs (a repeated slug gets -1, -2, ...)
    and explicit <a name|id="..."> anchors."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in lines_of(path):
        if line.in_fence:
            continue
        anchors.update(HTML_ANCHOR.findall(line.text))
        match = HEADING.match(line.text)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def links_of(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every inline link, image and reference definition outside code."""
    found = []
    for line in lines_of(path):
        if line.in_fence:
            continue
        text = CODE_SPAN.sub("", line.text)
        found += [(line.number, target) for _, target in INLINE_LINK.findall(text)]
        definition = REFERENCE_DEFINITION.match(text)
        if definition:
            found.append((line.number, definition.group(1)))
    return found


EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def broken_links(path: Path) -> list[str]:
    """One message per relative link of ``path`` whose file or #anchor does not exist."""
    problems = []
    for number, target in links_of(path):
        if not target or EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        where = f"{doc_id(path)}:{number}: link '{target}'"
        if not linked.exists():
            problems.append(f"{where}: {file_part} does not exist")
        elif anchor:
            if linked.is_dir() or linked.suffix.lower() != ".md":
                problems.append(f"{where}: an anchor into {file_part}, which is not a markdown file")
            elif anchor not in anchors_of(linked):
                problems.append(f"{where}: no heading of {doc_id(linked)} has the anchor #{anchor}")
    return problems


@pytest.mark.parametrize("path", doc_files(), ids=doc_id)
def test_every_relative_link_and_anchor_resolves(path):
    problems = broken_links(path)
    if problems:
        pytest.fail("broken links:\n" + "\n".join(problems), pytrace=False)


def test_the_docs_index_links_every_page():
    index = ROOT / "docs" / "README.md"
    linked = {(index.parent / target.partition("#")[0]).resolve() for _, target in links_of(index)}
    missing = [doc_id(p) for p in sorted((ROOT / "docs").glob("*.md")) if p != index and p.resolve() not in linked]
    assert not missing, f"docs/README.md does not link {', '.join(missing)}"


def test_github_slugs():
    assert github_slug("Rules and statistics") == "rules-and-statistics"
    assert github_slug("Compare, report, export, evaluate") == "compare-report-export-evaluate"
    assert github_slug("The `single_task` rule (headline)") == "the-single_task-rule-headline"
    assert github_slug("5 % rule: own_base vs. single_task") == "5--rule-own_base-vs-single_task"
    assert github_slug("[Grids](grids.md) on Ray") == "grids-on-ray"


# ---- commands in fenced code blocks -------------------------------------------------------------------------

PREFIXES = (("cl-bench",), ("python", "run_bench.py"), ("python", "eval.py"))
SEPARATORS = {"&&", "||", ";", "|"}
REDIRECTION = re.compile(r"^\d*(>>?|<)(&\d+)?")
# the synopsis notation: "[--option VALUE]" is an optional part (checked as if given), "[A | B]" takes A
OPTIONAL = re.compile(r"(?<!\S)\[(-[^\[\]]*)\]")


@dataclass
class Command:
    file: str
    line: int
    text: str  # as written (continuation lines joined)
    argv: list[str]  # after the program
    program: str  # "cl-bench" (= run_bench.py) or "eval.py"


def logical_lines(path: Path):
    """(first line number, text) of every shell line in the fenced code blocks, continuations joined."""
    pending, start = "", 0
    for line in lines_of(path):
        if not line.in_fence or FENCE.match(line.text):
            pending = ""
            continue
        text = line.text.strip()
        if not pending:
            start = line.number
            text = text[2:] if text.startswith("$ ") else text
        if text.endswith("\\"):
            pending += text[:-1].rstrip() + " "
            continue
        yield start, pending + text
        pending = ""


def expand_synopsis(text: str) -> str:
    while True:
        expanded = OPTIONAL.sub(lambda m: m.group(1).split(" | ")[0].strip(), text)
        if expanded == text:
            return expanded
        text = expanded


def commands_in(path: Path) -> list[Command]:
    commands = []
    for number, text in logical_lines(path):
        if not any(word in text for prefix in PREFIXES for word in prefix[-1:]):
            continue
        try:
            tokens = shlex.split(expand_synopsis(text), comments=True)
        except ValueError:  # unbalanced quotes: not shell, or a broken command the parser then names
            tokens = expand_synopsis(text).split()
        segments, current = [], []
        for token in tokens:
            if token in SEPARATORS:
                segments.append(current)
                current = []
            else:
                current.append(token)
        segments.append(current)
        for segment in segments:
            argv, skip = [], False
            for token in segment:  # drop redirections (2>&1, > log.txt)
                if skip:
                    skip = False
                elif REDIRECTION.match(token):
                    skip = REDIRECTION.fullmatch(token) is not None and "&" not in token
                else:
                    argv.append("X" if token == "..." else token)
            for prefix in PREFIXES:
                if tuple(argv[:len(prefix)]) == prefix:
                    program = "eval.py" if prefix[-1] == "eval.py" else "cl-bench"
                    commands.append(Command(doc_id(path), number, text, argv[len(prefix):], program))
    return commands


def without_abbreviations(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` (and its sub-parsers) refusing abbreviated options, so that a documented ``--seeds`` does not
    pass for a renamed ``--seeds-list``: documentation spells flags in full."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                without_abbreviations(sub)
    return parser


def parse_problem(command: Command) -> str | None:
    """None when the command parses, else argparse's message."""
    if command.program == "eval.py":
        parser = eval_command.build_parser()
    else:
        sub = command.argv[0] if command.argv and command.argv[0] in COMMANDS else None
        parser = build_parser(sub, prog="cl-bench")
    without_abbreviations(parser)
    stderr, stdout = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            parser.parse_args(command.argv)
    except SystemExit as exit_:
        if exit_.code:
            return stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue().strip() else f"exit {exit_.code}"
    return None


def missing_files(command: Command) -> list[str]:
    """Repository files a command names (experiments/...yaml, without wildcards) that do not exist."""
    return [token for token in command.argv
            if token.startswith("experiments/") and not re.search(r"[*?\[]", token) and not (ROOT / token).exists()]


def all_commands() -> list[Command]:
    return [command for path in doc_files() for command in commands_in(path)]


def test_the_docs_hold_commands_to_check():
    programs = {command.program for command in all_commands()}
    assert programs == {"cl-bench", "eval.py"}, programs


@pytest.mark.parametrize("path", doc_files(), ids=doc_id)
def test_every_documented_command_parses(path):
    problems = []
    for command in commands_in(path):
        problem = parse_problem(command)
        if problem:
            problems.append(f"{command.file}:{command.line}: `{command.text}`: {problem}")
        for missing in missing_files(command):
            problems.append(f"{command.file}:{command.line}: `{command.text}`: {missing} does not exist")
    if problems:
        pytest.fail("commands that do not parse:\n" + "\n".join(problems), pytrace=False)


def test_the_command_reader_handles_the_shell_forms(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("text\n```\n$ pip install . && cl-bench --strategy ewc_replay   # a comment\n"
                   "python run_bench.py grid --strategies naive,ewc --seeds 0-4 \\\n    --orders seg,det,cls\n"
                   "python run_bench.py check-model [--config X] [--device cuda]\n"
                   "python run_bench.py data check [--data-root DIR | --seg-root ... ] [--quick]\n"
                   "python eval.py --weights W --split val|test 2>&1 | tail -3\n```\n"
                   "cl-bench --not-in-a-fence\n")
    found = [(c.line, c.program, c.argv) for c in commands_in(doc)]
    assert found == [
        (3, "cl-bench", ["--strategy", "ewc_replay"]),
        (4, "cl-bench", ["grid", "--strategies", "naive,ewc", "--seeds", "0-4", "--orders", "seg,det,cls"]),
        (6, "cl-bench", ["check-model", "--config", "X", "--device", "cuda"]),
        (7, "cl-bench", ["data", "check", "--data-root", "DIR", "--quick"]),
        (8, "eval.py", ["--weights", "W", "--split", "val|test"]),
    ]
    assert all(parse_problem(c) is None for c in commands_in(doc))
    renamed = Command("doc.md", 1, "cl-bench --strategies naive", ["--strategies", "naive"], "cl-bench")
    assert "unrecognized arguments: --strategies naive" in parse_problem(renamed)
    abbreviated = Command("doc.md", 1, "cl-bench grid --seed 0", ["grid", "--seed", "0"], "cl-bench")
    assert "unrecognized arguments: --seed" in parse_problem(abbreviated)
