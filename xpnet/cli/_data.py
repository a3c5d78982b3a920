"""``xpnet data``: where a dataset's files are, fetched if missing and verified."""

from __future__ import annotations

import argparse

from xpnet.cli._options import Command, add_data_options
from xpnet.data import mnist
from xpnet.errors import DataError


def _data(args: argparse.Namespace) -> int:
    directory = mnist.data_dir(data_dir=args.data_dir, dataset=args.dataset)
    print(f"{args.dataset} data directory: {directory}", flush=True)
    mnist.fetch(data_dir=args.data_dir, dataset=args.dataset)
    owners = mnist.identify(data_dir=args.data_dir, dataset=args.dataset)
    for name, owner in owners.items():
        if owner == args.dataset:
            print(f"  {name}: verified (SHA-256)")
        elif owner is not None:
            print(f"  {name}: {owner}'s file, not {args.dataset}'s (by its SHA-256)")
        else:
            print(f"  {name}: DOES NOT MATCH the known SHA-256")
    others = sorted({owner for owner in owners.values() if owner not in (None, args.dataset)})
    if others:
        raise DataError(
            f"{directory} holds {' and '.join(others)} files, not {args.dataset}'s: they are "
            f"fine as they are; use --dataset {others[0]} for them, or point --data-dir (or "
            f"{mnist.DATASETS[args.dataset].env}) at the {args.dataset} files"
        )
    if not all(owner == args.dataset for owner in owners.values()):
        raise DataError(
            f"some {args.dataset} files in {directory} do not verify; delete them and run "
            "`xpnet data` again to download fresh copies"
        )
    return 0


COMMAND = Command(
    "data",
    "download, verify and locate the data",
    add_data_options,
    _data,
    description="Show the directory of a dataset's four IDX files, download the missing "
    "ones from the dataset's mirrors (which needs a network) and check every file's "
    "SHA-256. Without a network, copy the four files into the directory it shows, or "
    "point --data-dir (or XPNET_DATA, XPNET_FASHION_DATA) at a directory that has them.",
)
