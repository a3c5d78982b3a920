"""Sessions that run xpnet's checks on every backend: ``nox -l`` lists them.

``nox`` runs them all; ``nox -s "tests(backend='torch')"`` runs the test suite on
one backend. Each backend's packages are listed in ``backends/<name>.txt``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests", "equivalence", "gradcheck", "notebook"]

CPU_BACKENDS = ["numpy", "array_api_strict", "torch", "jax"]
BACKENDS = [*CPU_BACKENDS, "cupy"]

# uv does not read pip's configuration; pass on where pip finds local wheels.
if "PIP_FIND_LINKS" in os.environ:
    os.environ.setdefault("UV_FIND_LINKS", os.environ["PIP_FIND_LINKS"])


def _cupy_package() -> str | None:
    """The CuPy wheel for this machine's CUDA driver, or None without an NVIDIA GPU."""
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return None
    output = subprocess.run([nvidia_smi], capture_output=True, text=True, check=False).stdout
    match = re.search(r"CUDA Version:\s*(\d+)", output)
    if match is None:
        return None
    return "cupy-cuda13x" if int(match.group(1)) >= 13 else "cupy-cuda12x"


def _requirements(session: nox.Session, backend: str) -> list[str]:
    """``-r backends/<file>`` for a backend; skips the session if this machine can't run it."""
    if backend != "cupy":
        return ["-r", f"backends/{backend}.txt"]
    package = _cupy_package()
    if package is None:
        session.skip(
            "backend 'cupy' needs an NVIDIA GPU with a CUDA driver, and this machine has "
            "none: cupy was NOT tested"
        )
    return ["-r", f"backends/{package}.txt"]


def _pytest(session: nox.Session, backend: str, *args: str, **env: str) -> None:
    session.install(".[test]", *_requirements(session, backend))
    session.run("pytest", *args, *session.posargs, env={"XPNET_BACKENDS": backend, **env})


@nox.session
@nox.parametrize("backend", BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """The test suite on one backend (backend-independent tests run with numpy)."""
    _pytest(session, backend, "-m", "not gradcheck")


@nox.session
@nox.parametrize("backend", BACKENDS)
def gradcheck(session: nox.Session, backend: str) -> None:
    """Backprop against numerical gradients on random nets (hypothesis), one backend."""
    _pytest(session, backend, "-m", "gradcheck", HYPOTHESIS_PROFILE="gradcheck")


@nox.session
def equivalence(session: nox.Session) -> None:
    """Every backend against NumPy float64: a table, failing past the tolerances."""
    backends = CPU_BACKENDS + (["cupy"] if _cupy_package() else [])
    requirements = [arg for backend in backends for arg in _requirements(session, backend)]
    session.install(".[test]", *requirements)
    session.run("python", "backends/equivalence.py")


@nox.session
def notebook(session: nox.Session) -> None:
    """Run notebooks/two_layer_net.ipynb top to bottom on real MNIST; its cells assert."""
    session.install(".[test]", "nbclient", "ipykernel")
    session.run("jupyter", "execute", "--timeout=900", "notebooks/two_layer_net.ipynb")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """The benchmark against plain NumPy, PyTorch and scikit-learn; writes benchmarks/RESULTS.md."""
    session.install(".", "-r", "backends/torch.txt", "scikit-learn", "threadpoolctl")
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
