"""Sphinx configuration of xpnet's documentation site: ``nox -s docs`` builds it with
``sphinx-build -W --keep-going -b html docs docs/_build/html``."""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # this checkout's xpnet, installed or not

import xpnet  # noqa: E402

project = "xpnet"
author = "the xpnet developers"
copyright = "the xpnet developers, BSD-3-Clause"
version = release = xpnet.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_nb",
    "sphinxarg.ext",
    "xpnet_api",
]

# The lab's notebook is rendered from the outputs stored in it, never executed here.
nb_execution_mode = "off"
# docs/lab/ gets a copy of notebooks/two_layer_net.ipynb at each build (not committed).
NOTEBOOK = HERE.parent / "notebooks" / "two_layer_net.ipynb"
(HERE / "lab").mkdir(exist_ok=True)
shutil.copy2(NOTEBOOK, HERE / "lab" / "two_layer_net.ipynb")

myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

exclude_patterns = ["_build", "README.md"]
templates_path: list[str] = []

html_theme = "pydata_sphinx_theme"
html_title = f"xpnet {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []
html_show_sourcelink = False

autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": False}
autosummary_generate = False

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Every cross-reference must resolve (-W turns a broken one into an error).
nitpicky = True
numpydoc_attributes_as_param_list = False

# There is no network here for intersphinx's inventories: names from the standard library
# and from other projects in signatures and docstrings are shown, not linked.
nitpick_ignore_regex = [
    ("py:.*", r"(collections\.abc|os|pathlib|types|typing|socket|http|enum|signal)\.\w+"),
    ("py:.*", r"(numpy|np|npt|torch|jax|cupy|sklearn|starlette|uvicorn|matplotlib)(\..+)?"),
    ("py:.*", r"(array_api_compat|array_api_strict|optuna|dask|distributed|ndonnx|onnx)(\..+)?"),
    ("py:.*", r"(onnxruntime|threadpoolctl)(\..+)?"),
    # xpnet's private modules and names, which docstrings name for readers of the source.
    ("py:.*", r"xpnet(\.\w+)*\._\w+(\.\w+)*"),
    # Type aliases of xpnet._typing (private) and of other libraries, shown by name.
    ("py:class", r"(Device|Namespace|Init|OptimizerName|PreprocessingName|AugmentationName)"),
    ("py:class", r"(Compile|JSON|Figure|Array|ArrayLike|Params|tuple\[str)"),
]

# numpydoc reads the docstrings of the functions xpnet re-exports from array-api-compat
# for the summary tables, and says that one of them has a section it does not know.
warnings.filterwarnings("ignore", message="Unknown section Warning", category=UserWarning)
