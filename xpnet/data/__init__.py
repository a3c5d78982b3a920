"""Datasets: the IDX reader, downloads, and MNIST / Fashion-MNIST."""

from xpnet.data.datasets import DATASETS, data_dir
from xpnet.data.idx import read_idx
from xpnet.data.mnist import load, read_data_sets
from xpnet.data.store import fetch, verify
from xpnet.errors import DataError

__all__ = [
    "DATASETS",
    "DataError",
    "data_dir",
    "fetch",
    "load",
    "read_data_sets",
    "read_idx",
    "verify",
]
