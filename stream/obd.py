"""Adapter for logged bandit feedback in the Open Bandit Dataset's CSV format.

The Open Bandit Dataset (Saito et al. 2021, ZOZOTOWN fashion recommendations)
ships one CSV per campaign and logging policy with columns ``timestamp,
item_id, position, click, propensity_score, user_feature_0..3,
user-item_affinity_0..`` (plus an unnamed index column), and an
``item_context.csv`` with one row per item. We read it without ``obp``:

- rows are sorted by timestamp (stable), as obp does;
- positions (1..3 in the files) become 0-based by dense rank, as obp does;
- the context is the one-hot encoding of the ``user_feature_*`` columns
  (every category kept; the reward model is L2-penalised) followed by the
  ``user-item_affinity_*`` columns when present;
- rows sharing a timestamp form one slate (one impression of 3 items);
- the number of actions is the number of rows of ``item_context.csv`` when
  given, else ``max(item_id) + 1``.

Errors name the line and the column.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from bandit.ope_inputs import BanditLogs
from bandit.ope_validation import OPEInputError

__all__ = ["read_obd"]

_REQUIRED = ("timestamp", "item_id", "position", "click", "propensity_score")


def read_obd(path: Path, *, item_context: Path | None = None) -> BanditLogs:
    """Read an OBD CSV (and optionally its item_context.csv) into :class:`BanditLogs`."""
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise OPEInputError(str(path), "is empty")
        col = {name: i for i, name in enumerate(header)}
        missing = [c for c in _REQUIRED if c not in col]
        if missing:
            raise OPEInputError(str(path), f"missing OBD column(s) {missing}")
        users = [i for name, i in col.items() if name.startswith("user_feature_")]
        affinity = [i for name, i in col.items() if name.startswith("user-item_affinity_")]
        rows = [r for r in reader if r]
    if not rows:
        raise OPEInputError(str(path), "has no rows")

    def column(name: str, kind: type) -> np.ndarray:
        i = col[name]
        try:
            return np.array([kind(r[i]) for r in rows])
        except (ValueError, IndexError):
            for line, r in enumerate(rows, 2):
                try:
                    kind(r[i])
                except (ValueError, IndexError):
                    raise OPEInputError(f"{path.name}:{line}", f"column {name!r}: bad value") from None
            raise

    stamps = np.array([r[col["timestamp"]] for r in rows])
    order = np.argsort(stamps, kind="stable")
    stamps = stamps[order]
    item = column("item_id", int)[order]
    raw_pos = column("position", int)[order]
    click = column("click", float)[order]
    pscore = column("propensity_score", float)[order]
    _, position = np.unique(raw_pos, return_inverse=True)
    blocks = []
    for i in users:
        values = np.array([r[i] for r in rows])[order]
        cats, codes = np.unique(values, return_inverse=True)
        onehot = np.zeros((len(rows), len(cats)))
        onehot[np.arange(len(rows)), codes] = 1.0
        blocks.append(onehot)
    if affinity:
        blocks.append(np.array([[float(r[i]) for i in affinity] for r in rows])[order])
    context = np.hstack(blocks) if blocks else np.zeros((len(rows), 0))
    _, slate = np.unique(stamps, return_inverse=True)
    n_actions = int(item.max()) + 1
    if item_context is not None:
        with item_context.open(newline="") as fh:
            n_items = sum(1 for r in csv.reader(fh) if r) - 1
        if n_items < n_actions:
            raise OPEInputError(
                item_context.name, f"lists {n_items} items; the logs use item_id {n_actions - 1}"
            )
        n_actions = n_items
    if item.min() < 0:
        raise OPEInputError(path.name, "column 'item_id': must be >= 0")
    return BanditLogs(
        reward=click, action=item.astype(np.int64), position=position.astype(np.int64), pscore=pscore,
        context=context, slate=slate.astype(np.int64), action_names=tuple(str(a) for a in range(n_actions)),
    )  # fmt: skip
