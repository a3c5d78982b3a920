"""README.md's Python examples, run as a reader pastes them: each ```python block in a
fresh process (``python block.py``), in one fresh directory shared down the page (a
block may use a file an earlier one wrote), with ``XPNET_DATA`` naming the data.

Where the README shows what a block prints (the ```text block after prose saying
"prints" or "printed"), its stdout must be exactly that; every block must exit 0 and
write nothing to stderr (no warnings, no log lines). ``nox -s readme`` runs this with
every extra the blocks import.
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

README = Path(__file__).resolve().parent.parent / "README.md"
#: The prose between a block and the ```text block that shows its output says so.
SHOWS_OUTPUT = re.compile(r"\bprint(s|ed)\b")
#: Seconds a block may take (the slowest, on 2 CPU cores, takes well under a minute).
TIMEOUT = 300


@dataclass(frozen=True)
class Block:
    """A ```python block of the README and the output shown after it, if any."""

    number: int  # 1 for the README's first Python block
    line: int  # the line of its opening fence
    heading: str  # the section it is in
    code: str
    expected: str | None

    @property
    def where(self) -> str:
        return f"README.md Python block {self.number} (line {self.line}, in {self.heading!r})"


def readme_blocks(text: str) -> list[Block]:
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
                raise ValueError(f"README.md line {i + 1}: a code fence that is never closed")
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
        blocks.append(Block(len(blocks) + 1, start + 1, section, code, expected))
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class Page:
    """A reader going down the page: the blocks run in order, once each, in one directory."""

    def __init__(self, directory: Path, data: Path) -> None:
        self.directory = directory
        env = dict(os.environ, XPNET_DATA=str(data))
        # As on a reader's machine: nothing set that a block must set itself.
        for name in ("SCIPY_ARRAY_API", "PYTHONWARNINGS", "MPLBACKEND"):
            env.pop(name, None)
        self.env = env
        self.ran: dict[int, Ran] = {}

    def run_through(self, block: Block) -> Ran:
        """Run every block up to ``block`` not yet run, in order; ``block``'s result."""
        for earlier in BLOCKS[: block.number]:
            if earlier.number not in self.ran:
                self.ran[earlier.number] = self._run(earlier)
        return self.ran[block.number]

    def _run(self, block: Block) -> Ran:
        script = self.directory / f"readme_block_{block.number}.py"
        script.write_text(block.code, encoding="utf-8")
        start = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, script.name],
                cwd=self.directory,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            why = f"timed out after {TIMEOUT} s\n{_text(err.stderr)}"
            return Ran(-1, _text(err.stdout), why, time.perf_counter() - start)
        finally:
            script.unlink()
        return Ran(done.returncode, done.stdout, done.stderr, time.perf_counter() - start)


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Page:
    return Page(tmp_path_factory.mktemp("readme"), mnist_dir)


def _indented(text: str) -> str:
    return "".join(f"    {row}\n" for row in text.splitlines()) or "    (nothing)\n"


def test_the_readme_has_its_examples() -> None:
    assert len(BLOCKS) >= 6, f"found only {len(BLOCKS)} Python blocks in {README}"
    assert all(block.code.strip() for block in BLOCKS), "an empty ```python block"
    assert sum(block.expected is not None for block in BLOCKS) >= 5


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


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{b.number}-line{b.line}" for b in BLOCKS])
def test_block_runs_as_pasted_and_prints_what_the_readme_shows(page: Page, block: Block) -> None:
    ran = page.run_through(block)
    problems = []
    if ran.returncode != 0:
        problems.append(f"it exited with status {ran.returncode}")
    if ran.stderr:
        problems.append(f"it wrote to stderr:\n{_indented(ran.stderr)}")
    if block.expected is not None and ran.stdout != block.expected:
        diff = difflib.unified_diff(
            block.expected.splitlines(keepends=True),
            ran.stdout.splitlines(keepends=True),
            "README (expected)",
            "the block printed (actual)",
        )
        problems.append(
            "its output is not the README's ```text block after it\n"
            f"  expected:\n{_indented(block.expected)}"
            f"  actual:\n{_indented(ran.stdout)}"
            f"  diff:\n{_indented(''.join(diff))}"
        )
    if block.expected is None and ran.stdout and ran.returncode == 0:
        problems.append(
            "it printed, but the README shows no output for it (a ```text block after "
            f"prose saying 'prints'):\n{_indented(ran.stdout)}"
        )
    if problems:
        where = f"{block.where}, which ran {ran.seconds:.0f} s: "
        pytest.fail(where + "\n".join(problems), pytrace=False)
