"""xpnet.data.datasets: the default data directory is the platform's cache (platformdirs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SHOW = """
import json, platformdirs
from xpnet.data import data_dir
print(json.dumps([str(data_dir()), platformdirs.user_cache_dir("xpnet")]))
"""


def defaults(tmp_path: Path, **env: str) -> tuple[Path, Path]:
    """xpnet's default MNIST directory and platformdirs' cache for xpnet, in a
    fresh process with a home of its own, no XPNET_DATA and the variables ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("XPNET_", "XDG_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-c", SHOW], env={**base, "HOME": str(home), **env},
                          capture_output=True, text=True, check=True, cwd=tmp_path)  # fmt: skip
    mnist, cache = map(Path, json.loads(done.stdout))
    return mnist, cache


def test_the_default_is_platformdirs_user_cache_dir(tmp_path):
    mnist, cache = defaults(tmp_path)
    assert mnist == cache / "mnist"


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG base directories are Linux's")
@pytest.mark.parametrize(
    ("xdg_cache_home", "expected"),
    [
        (None, "home/.cache/xpnet"),
        ("{tmp}/xdg", "xdg/xpnet"),
        ("relative/cache", "home/.cache/xpnet"),  # the XDG spec: a relative path is ignored
    ],
)
def test_on_linux_the_cache_follows_the_xdg_base_directories(tmp_path, xdg_cache_home, expected):
    env = {} if xdg_cache_home is None else {"XDG_CACHE_HOME": xdg_cache_home.format(tmp=tmp_path)}
    mnist, cache = defaults(tmp_path, **env)
    assert cache == tmp_path / expected
    assert mnist == tmp_path / expected / "mnist"
