"""Batches drawn from a fixed list of rows, pass after pass, in an order that resumes exactly."""

from __future__ import annotations

import random
from typing import Any


class ShuffledBatches:
    """Batches of `batch_size` rows without replacement, the order reshuffled whenever fewer than a
    batch remain (those rows wait for the next pass). Its state (the order, the cursor, the
    shuffling generator) is what a checkpoint stores to continue exactly: SFT and reward models."""

    def __init__(self, rows: list[Any], batch_size: int, seed: int):
        self.rows, self.batch_size = rows, batch_size
        self.rng = random.Random(seed)
        self.order = list(range(len(rows)))
        self.rng.shuffle(self.order)
        self.cursor = 0

    def next(self) -> list[Any]:
        if self.cursor + self.batch_size > len(self.order):
            self.rng.shuffle(self.order)
            self.cursor = 0
        batch = [self.rows[i] for i in self.order[self.cursor : self.cursor + self.batch_size]]
        self.cursor += self.batch_size
        return batch

    def take(self, count: int) -> list[list[Any]]:
        """The next `count` batches: one optimiser step's micro-batches."""
        return [self.next() for _ in range(count)]

    def state_dict(self) -> dict[str, Any]:
        return {"order": list(self.order), "cursor": self.cursor, "order_rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order, self.cursor = list(state["order"]), state["cursor"]
        self.rng.setstate(state["order_rng"])
