"""Sessions that run xpnet's checks on every backend: ``nox -l`` lists them.

``nox`` runs the default ones; ``nox -s "tests(backend='torch')"`` runs the test suite
on one backend; ``nox -s fast`` is the quick local run; ``nox -s gpu`` is the GPU
check. The backends come from xpnet's backend table (``xpnet/backend/_table.py``,
read here by path, before xpnet is installed), their packages from
``backends/<name>.txt``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = [
    "lint", "typecheck", "tests", "equivalence", "gradcheck", "notebook", "tune", "sklearn",
    "serve",
    "onnx",
    "readme",
    "docs",
]  # fmt: skip


def _load_table():
    path = Path(__file__).parent / "xpnet" / "backend" / "_table.py"
    spec = importlib.util.spec_from_file_location("_xpnet_backend_table", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_TABLE = _load_table()
BACKENDS = list(_TABLE.BACKENDS)
CPU_BACKENDS = [name for name, spec in _TABLE.BACKENDS.items() if not spec.needs_gpu]
GPU_CHECK_BACKENDS = ["cupy", "torch", "jax"]
# The linters' versions, pinned as in .pre-commit-config.yaml: a new release's rules
# or formatting must not turn CI red on unchanged code.
RUFF = "ruff==0.17.6"
MYPY = "mypy==2.4.1"

# Markers of the tests that run only in their own session, with its extras installed.
ONLY_IN_THEIR_SESSIONS = (
    "not tune and not sklearn and not serve and not onnx and not readme and not docs"
)

# uv does not read pip's configuration; pass on where pip finds local wheels.
if "PIP_FIND_LINKS" in os.environ:
    os.environ.setdefault("UV_FIND_LINKS", os.environ["PIP_FIND_LINKS"])


def _requirements(session: nox.Session, backend: str, gpu: bool = False) -> list[str]:
    """``-r backends/<file>`` for a backend; skips the session if this machine can't run it.

    ``gpu=True`` (and a backend that runs only on a GPU) asks for the library's CUDA
    build, for the CUDA version of this machine's driver.
    """
    spec = _TABLE.BACKENDS[backend]
    if spec.requirements is not None and not gpu:
        return ["-r", f"backends/{spec.requirements}.txt"]
    major = _TABLE.cuda_driver_major()
    name = spec.gpu_requirements_for(major) if major is not None else None
    if name is None:
        session.skip(
            f"backend {backend!r} on a GPU needs an NVIDIA GPU with a CUDA 12 or newer "
            f"driver, and this machine has none: {backend} was NOT tested on a GPU"
        )
    return ["-r", f"backends/{name}.txt"]


def _pytest(session: nox.Session, backend: str, *args: str, **env: str) -> None:
    session.install(".[test]", *_requirements(session, backend))
    session.run("pytest", *args, *session.posargs, env={"XPNET_BACKENDS": backend, **env})


@nox.session
@nox.parametrize("backend", BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """The test suite on one backend (backend-independent tests run with numpy)."""
    _pytest(
        session,
        backend,
        "-m",
        f"not gradcheck and {ONLY_IN_THEIR_SESSIONS}",
    )


@nox.session(default=False)
def fast(session: nox.Session) -> None:
    """A quick local run: numpy only, without the slow full-MNIST training tests."""
    marks = f"not gradcheck and {ONLY_IN_THEIR_SESSIONS} and not slow"
    _pytest(session, "numpy", "-m", marks, "-q")


@nox.session
@nox.parametrize("backend", BACKENDS)
def gradcheck(session: nox.Session, backend: str) -> None:
    """Backprop against numerical gradients on random nets (hypothesis), one backend."""
    _pytest(session, backend, "-m", "gradcheck", XPNET_GRADCHECK_EXAMPLES="60")


@nox.session
def equivalence(session: nox.Session) -> None:
    """Every backend against NumPy float64: a table, failing past the tolerances."""
    usable = CPU_BACKENDS + (["cupy"] if _TABLE.cuda_driver_major() is not None else [])
    requirements = [arg for backend in usable for arg in _requirements(session, backend)]
    session.install(".[test]", *requirements)
    session.run("python", "backends/equivalence.py")


@nox.session(default=False)
def gpu(session: nox.Session) -> None:
    """The GPU check: tests on cupy, torch CUDA and JAX GPU; equivalence; the GPU benchmark.

    Fails, rather than passes, on a machine without an NVIDIA GPU.
    """
    if _TABLE.cuda_driver_major() is None:
        session.error(
            "the GPU check needs an NVIDIA GPU with a CUDA driver (nvidia-smi), and this "
            "machine has none: nothing was checked"
        )
    requirements = [
        arg for backend in GPU_CHECK_BACKENDS for arg in _requirements(session, backend, gpu=True)
    ]
    session.install(".[test,plot]", "nbclient", "scikit-learn", *requirements)
    session.run("python", "backends/gpu_check.py", *session.posargs)


@nox.session
def tune(session: nox.Session) -> None:
    """xpnet tune with real Optuna studies and Dask clusters (local, and scheduler + workers);
    JAX for a search in float64, whose workers need its 64-bit mode."""
    session.install(".[test,tune]", *_requirements(session, "jax"))
    session.run("pytest", "-m", "tune", *session.posargs)


@nox.session
def sklearn(session: nox.Session) -> None:
    """The scikit-learn estimator: parametrize_with_checks, array API dispatch on NumPy,
    array-api-strict and torch (CUDA and CuPy where there is a GPU), the ecosystem."""
    session.install(".[test,sklearn]", "-r", "backends/torch.txt", "pandas")
    # scikit-learn runs its array API checks only with SciPy's array API support on.
    session.run("pytest", "-m", "sklearn", *session.posargs, env={"SCIPY_ARRAY_API": "1"})


@nox.session
def serve(session: nox.Session) -> None:
    """xpnet serve: its JSON API over real HTTP, and its page in Debian's Chromium (Playwright)."""
    if not Path("/usr/bin/chromium").exists():
        # Playwright's own browser download is not used: Debian's package is.
        session.run("apt-get", "update", external=True)
        session.run("apt-get", "install", "-y", "chromium", external=True)
    session.install(".[test,serve]", "playwright")
    session.run("pytest", "-m", "serve", *session.posargs)


@nox.session
def onnx(session: nox.Session) -> None:
    """ONNX export: models traced through ndonnx, run by ONNX Runtime against predict."""
    session.install(".[test,onnx]")
    session.run("pytest", "-m", "onnx", *session.posargs)


@nox.session
def readme(session: nox.Session) -> None:
    """The Python examples of README.md and of the site's pages (docs/*.md), each run alone
    as pasted, in a fresh process and a fresh directory, their output compared with the
    page's."""
    session.install(".[test,plot,sklearn,tune,onnx]", *_requirements(session, "torch"))
    session.run("pytest", "-m", "readme", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built with warnings as errors into docs/_build/html, then
    read in Debian's Chromium (Playwright): signatures, search, no broken internal link."""
    if not Path("/usr/bin/chromium").exists():
        session.run("apt-get", "update", external=True)
        session.run("apt-get", "install", "-y", "chromium", external=True)
    # The API pages import every public module: xpnet.sklearn needs scikit-learn,
    # xpnet.serve Starlette and uvicorn.
    session.install(".[docs,test,sklearn,serve]", "playwright")
    # -E: every page read again, as a changed docstring is not noticed by a partial build.
    html = "docs/_build/html"
    session.run("sphinx-build", "-W", "--keep-going", "-E", "-b", "html", "docs", html)
    session.run("pytest", "-m", "docs", *session.posargs, env={"XPNET_DOCS_HTML": html})


@nox.session
def notebook(session: nox.Session) -> None:
    """Run notebooks/two_layer_net.ipynb top to bottom on real MNIST; its cells assert."""
    session.install(".[test]", "nbclient", "ipykernel")
    session.run("jupyter", "execute", "--timeout=900", "notebooks/two_layer_net.ipynb")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """The benchmark against plain NumPy, PyTorch and scikit-learn; writes benchmarks/RESULTS.md."""
    session.install(".", "-r", "backends/torch.txt", "-r", "backends/jax.txt")
    session.install("scikit-learn")
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and format check (README code blocks included)."""
    session.install(RUFF)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy, strict, on the package, with every typed library it calls installed (torch,
    JAX, Dask, Optuna, matplotlib, Starlette, uvicorn), so that their types are followed."""
    requirements = [*_requirements(session, "torch"), *_requirements(session, "jax")]
    session.install(".[test,tune,plot,serve]", *requirements, MYPY, "types-tqdm")
    session.run("mypy")
