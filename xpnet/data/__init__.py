"""Datasets: the IDX reader, downloads, and MNIST / Fashion-MNIST."""

from xpnet.data.idx import read_idx
from xpnet.data.mnist import DATASETS, data_dir, fetch, load, read_data_sets, verify
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
