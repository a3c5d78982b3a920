"""Sessions that run xpnet's checks on every backend: ``nox -l`` lists them.

``nox -s "tests(backend='torch')"`` runs the test suite on one backend. Each
backend's packages are listed in ``backends/<name>.txt``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).parent
BACKENDS = ["numpy", "array_api_strict", "torch", "cupy"]

# uv does not read pip's configuration; pass on where pip finds local wheels.
if "PIP_FIND_LINKS" in os.environ:
    os.environ.setdefault("UV_FIND_LINKS", os.environ["PIP_FIND_LINKS"])


def _cupy_requirements(session: nox.Session) -> str:
    """The CuPy wheel for this machine's CUDA driver; skip the session where there is none."""
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        session.skip("backend 'cupy' needs an NVIDIA GPU: nvidia-smi is not on this machine")
    output = subprocess.run([nvidia_smi], capture_output=True, text=True, check=False).stdout
    match = re.search(r"CUDA Version:\s*(\d+)", output)
    if match is None:
        session.skip("backend 'cupy' needs an NVIDIA GPU: nvidia-smi reports no CUDA driver")
    return "cupy-cuda13x" if int(match.group(1)) >= 13 else "cupy-cuda12x"


def _install(session: nox.Session, backend: str, extras: str = "test") -> None:
    """Install xpnet with ``extras`` and the packages of ``backend``."""
    requirements = _cupy_requirements(session) if backend == "cupy" else backend
    session.install(f".[{extras}]", "-r", f"backends/{requirements}.txt")


@nox.session
@nox.parametrize("backend", BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """The test suite on one backend."""
    _install(session, backend)
    session.run(
        "pytest",
        *session.posargs,
        env={"XPNET_BACKENDS": backend},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
