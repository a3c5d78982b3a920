"""Messages that fit their reader: install hints that work, settings named as the caller
names them (arguments from Python, options on the command line), and the traceback of
a surprise one step away (``XPNET_DEBUG=1``)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import xpnet
from xpnet._wording import command_line, setting
from xpnet.cli import main
from xpnet.data import read_data_sets
from xpnet.training import TrainSettings

PACKAGE = Path(xpnet.__file__).parent


def strings_of(path: Path) -> list[tuple[int, str]]:
    """Every string literal of a module, docstrings and f-strings' text included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]  # fmt: skip


def test_no_install_hint_names_a_package_the_index_does_not_have():
    """xpnet is not on the package index: ``pip install 'xpnet[jax]'`` cannot work."""
    unknown = re.compile(r"xpnet\[|pip install\s+['\"]?xpnet\b")
    found = [
        f"{path.relative_to(PACKAGE)}:{line}: {text.strip()[:80]!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, text in strings_of(path)
        if unknown.search(text)
    ]
    assert not found, "\n".join(found)


def test_no_page_tells_to_install_xpnet_from_the_index():
    """The README and the site's pages install extras from a checkout (``".[jax]"``)."""
    root = Path(__file__).resolve().parent.parent  # the checkout (xpnet may be installed)
    pages = [root / "README.md", root / "CONTRIBUTING.md", *sorted((root / "docs").glob("*.md"))]
    unknown = re.compile(r"xpnet\[|pip install\s+['\"]?xpnet\b")
    found = [
        f"{page.relative_to(root)}:{number}: {line.strip()[:80]!r}"
        for page in pages
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if unknown.search(line)
    ]
    assert len(pages) > 3
    assert not found, "\n".join(found)


def test_the_scan_finds_an_install_hint_of_an_extra(tmp_path):
    """The scan above reads f-strings and docstrings alike."""
    module = tmp_path / "hint.py"
    module.write_text(
        '"""Needs pip install "xpnet[jax]"."""\nx = f"{1} pip install \'xpnet[onnx]\'"\n'
    )
    assert [line for line, text in strings_of(module) if "xpnet[" in text] == [1, 2]


def test_settings_are_named_as_arguments_in_python_and_as_options_on_the_command_line():
    shown = [setting("data_dir"), setting("overwrite", True), setting("schedule", "step")]
    assert shown == ["data_dir", "overwrite=True", "schedule='step'"]
    with command_line():
        shown = [setting("data_dir"), setting("overwrite", True), setting("schedule", "step"),
                 setting("retrain", False), setting("host", "")]  # fmt: skip
    assert shown == ["--data-dir", "--overwrite", "--schedule step", "--no-retrain", "--host ''"]
    assert setting("data_dir") == "data_dir"  # the command line's wording ends with its block


def test_read_data_sets_on_a_missing_directory_speaks_of_its_argument(tmp_path):
    missing = tmp_path / "mnist_data"
    with pytest.raises(ValueError, match=r"\(from data_dir\) does not exist") as raised:
        read_data_sets(missing)
    assert "--" not in str(raised.value)
    assert not missing.exists()


def test_the_command_line_speaks_of_its_option_for_a_missing_data_directory(tmp_path, capsys):
    assert main(["data", "--data-dir", str(tmp_path / "mnist_data")]) == 1
    assert "(from --data-dir) does not exist; create it, or fix --data-dir" in (
        capsys.readouterr().err
    )


def test_a_setting_that_contradicts_another_is_told_as_the_caller_gives_it(capsys):
    sizes = {"input_size": 784, "hidden_size": 10, "output_size": 10}
    with pytest.raises(ValueError, match="SGD's") as raised:
        TrainSettings(optimizer="adam", momentum=0.9, **sizes)
    assert str(raised.value).endswith("pass momentum=0")
    with pytest.raises(ValueError, match="step schedule's") as raised:
        TrainSettings(schedule="cosine", learning_rate_decay=0.5, **sizes)
    assert str(raised.value).endswith("pass learning_rate_decay=1.0, or schedule='step'")
    assert "--" not in str(raised.value)
    assert main(["train", "--optimizer", "adam", "--momentum", "0.9"]) == 1
    assert capsys.readouterr().err.rstrip().endswith("pass --momentum 0")
    assert main(["train", "--schedule", "cosine", "--learning-rate-decay", "0.5"]) == 1
    assert (
        capsys.readouterr()
        .err.rstrip()
        .endswith("pass --learning-rate-decay 1.0, or --schedule step")
    )


#: Where an option outside xpnet/cli is right: the command that reproduces a search's best
#: trial, and the serve guard's wording for a server that `xpnet serve` started.
SAYS_OPTIONS = {"tune/_search.py", "serve/_guard.py"}


def test_no_message_outside_the_command_line_names_an_option_unasked():
    """A literal ``--option`` outside xpnet/cli is a command to run (```xpnet data
    --dataset ...```), or wording only the command line may use."""
    option = re.compile(r"(?<![\w`-])--[a-z][a-z-]+")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name.startswith("cli/") or name in SAYS_OPTIONS or name == "_wording.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)}  # fmt: skip
        found += [f"{name}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and id(node) not in docstrings and "xpnet " not in node.value
                  and option.search(node.value)]  # fmt: skip
    assert not found, "\n".join(found)


# XPNET_DEBUG: the traceback of an error xpnet did not raise on purpose.

#: A command whose work hits a bug: a TypeError raised by Python, not by xpnet.
BUGGY = """
import dataclasses, sys
import xpnet.cli

def broken(args):
    return len(None)

# The command line is real; only the work of `xpnet data` is broken.
xpnet.cli.COMMANDS = tuple(dataclasses.replace(c, run=broken) if c.name == "data" else c
                           for c in xpnet.cli.COMMANDS)
sys.exit(xpnet.cli.main(sys.argv[1:]))
"""


def cli(*args: str, debug: bool, code: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("XPNET_DEBUG", None)
    if debug:
        env["XPNET_DEBUG"] = "1"
    command = ["-c", code] if code else ["-m", "xpnet.cli"]
    return subprocess.run([sys.executable, *command, *args], capture_output=True, text=True,
                          env=env, check=False)  # fmt: skip


def test_a_bug_is_one_line_that_says_how_to_see_its_traceback(tmp_path):
    done = cli("data", "--data-dir", str(tmp_path), debug=False, code=BUGGY)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("xpnet: error: TypeError: object of type 'NoneType' has no len()")
    assert "(XPNET_DEBUG=1 shows the traceback)" in done.stderr


def test_xpnet_debug_shows_the_full_traceback_of_a_bug(tmp_path):
    done = cli("data", "--data-dir", str(tmp_path), debug=True, code=BUGGY)
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):"), done.stderr
    assert "line 6, in broken\nTypeError: object of type" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith("xpnet: error:")


def test_an_error_xpnet_raises_on_purpose_stays_one_plain_line(tmp_path):
    done = cli("train", "--hidden-size", "0", "--output-dir", str(tmp_path), debug=False)
    assert done.returncode == 1
    assert done.stderr == "xpnet: error: --hidden-size must be a positive integer, got 0\n"
    shown = cli("train", "--hidden-size", "0", "--output-dir", str(tmp_path), debug=True)
    assert shown.returncode == 1
    assert "Traceback (most recent call last):" in shown.stderr
    assert "--hidden-size must be a positive integer, got 0" in shown.stderr
