"""The Python examples of README.md and of the site's pages (``docs/*.md``), run as a
reader pastes them: each ```python block alone, in a fresh process (``python block.py``)
in a fresh directory of its own (an example writes only there and reads only what it wrote
or the data), with ``XPNET_DATA`` naming the data.

Where a page shows what a block prints (the ```text block after prose saying "prints" or
"printed"), its stdout must be exactly that; every block must exit 0 and write nothing to
stderr (no warnings, no log lines). ``nox -s readme`` runs this with every extra the
blocks import.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.readme, pytest.mark.mnist]

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: The pages whose examples are run: the README and the site's pages.
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
#: The prose between a block and the ```text block that shows its output says so.
SHOWS_OUTPUT = re.compile(r"\bprint(s|ed)\b")
#: Seconds a block may take (the slowest, on 2 CPU cores, takes well under a minute).
TIMEOUT = 300


@dataclass(frozen=True)
class Block:
    """A ```python block of a page and the output shown after it, if any."""

    number: int  # 1 for the page's first Python block
    line: int  # the line of its opening fence
    heading: str  # the section it is in
    code: str
    expected: str | None
    page: str = "README.md"  # the page's path in the repository

    @property
    def where(self) -> str:
        return f"{self.page} Python block {self.number} (line {self.line}, in {self.heading!r})"


def readme_blocks(text: str, page: str = "README.md") -> list[Block]:
    """Every ```python block of ``text``, in order, with the output shown after it."""
    lines = text.splitlines()
    fences: list[tuple[int, int, str, str]] = []  # (start, end, language, heading)
    heading, i = "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
            if end is None:
                raise ValueError(f"{page} line {i + 1}: a code fence that is never closed")
            fences.append((i, end, line[3:].strip(), heading))
            i = end
        i += 1
    blocks: list[Block] = []
    for k, (start, end, language, section) in enumerate(fences):
        if language != "python":
            continue
        expected = None
        if k + 1 < len(fences):
            following, _, next_language, _ = fences[k + 1]
            between = "\n".join(lines[end + 1 : following])
            if next_language == "text" and SHOWS_OUTPUT.search(between):
                expected = "".join(f"{row}\n" for row in lines[following + 1 : fences[k + 1][1]])
        code = "".join(f"{row}\n" for row in lines[start + 1 : end])
        blocks.append(Block(len(blocks) + 1, start + 1, section, code, expected, page))
    return blocks


BLOCKS = [
    block
    for path in PAGES
    for block in readme_blocks(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
]


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_alone(block: Block, directory: Path, data: Path) -> Ran:
    """Run ``block`` as a reader who pastes it alone into a file in an empty directory."""
    env = dict(os.environ, XPNET_DATA=str(data))
    # As on a reader's machine: nothing set that a block must set itself.
    for name in ("SCIPY_ARRAY_API", "PYTHONWARNINGS", "MPLBACKEND"):
        env.pop(name, None)
    script = directory / "example.py"
    script.write_text(block.code, encoding="utf-8")
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, script.name],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        why = f"timed out after {TIMEOUT} s\n{_text(err.stderr)}"
        return Ran(-1, _text(err.stdout), why, time.perf_counter() - start)
    return Ran(done.returncode, done.stdout, done.stderr, time.perf_counter() - start)


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _indented(text: str) -> str:
    return "".join(f"    {row}\n" for row in text.splitlines()) or "    (nothing)\n"


def test_the_pages_have_their_examples() -> None:
    in_readme = [block for block in BLOCKS if block.page == "README.md"]
    assert len(in_readme) >= 1, f"found no Python block in {README}"
    assert len(PAGES) >= 10, f"found only {len(PAGES)} pages: {PAGES}"
    assert len(BLOCKS) >= 7, f"found only {len(BLOCKS)} Python blocks in {PAGES}"
    assert all(block.code.strip() for block in BLOCKS), "an empty ```python block"
    assert sum(block.expected is not None for block in BLOCKS) >= 6


def test_a_block_is_paired_with_the_output_shown_after_it_only() -> None:
    text = "\n".join(
        [
            "# One", "```python", "print(1)", "# a comment", "```", "prints:", "```text", "1",
            "```", "## Two", "```python", "x = 2", "```", "Then:", "```text", "not its output",
            "```", "```python", "print(3)", "```", "```bash", "echo prints", "```",
        ]
    )  # fmt: skip
    first, second, third = readme_blocks(text)
    assert (first.number, first.line, first.heading) == (1, 2, "One")
    assert (first.code, first.expected) == ("print(1)\n# a comment\n", "1\n")
    assert (second.heading, second.code, second.expected) == ("Two", "x = 2\n", None)
    assert (third.number, third.expected) == (3, None)
    with pytest.raises(ValueError, match="line 3: a code fence that is never closed"):
        readme_blocks("text\n\n```python\nprint(1)\n")


@pytest.mark.parametrize(
    "block", BLOCKS, ids=[f"{Path(b.page).stem}-block{b.number}-line{b.line}" for b in BLOCKS]
)
def test_block_runs_alone_as_pasted_and_prints_what_the_page_shows(
    block: Block, tmp_path: Path, mnist_dir: Path
) -> None:
    ran = run_alone(block, tmp_path, mnist_dir)
    problems = []
    if ran.returncode != 0:
        problems.append(f"it exited with status {ran.returncode}")
    if ran.stderr:
        problems.append(f"it wrote to stderr:\n{_indented(ran.stderr)}")
    if block.expected is not None and ran.stdout != block.expected:
        diff = difflib.unified_diff(
            block.expected.splitlines(keepends=True),
            ran.stdout.splitlines(keepends=True),
            f"{block.page} (expected)",
            "the block printed (actual)",
        )
        problems.append(
            f"its output is not the ```text block after it in {block.page}\n"
            f"  expected:\n{_indented(block.expected)}"
            f"  actual:\n{_indented(ran.stdout)}"
            f"  diff:\n{_indented(''.join(diff))}"
        )
    if block.expected is None and ran.stdout and ran.returncode == 0:
        problems.append(
            f"it printed, but {block.page} shows no output for it (a ```text block after "
            f"prose saying 'prints'):\n{_indented(ran.stdout)}"
        )
    if problems:
        where = f"{block.where}, which ran {ran.seconds:.0f} s: "
        pytest.fail(where + "\n".join(problems), pytrace=False)
