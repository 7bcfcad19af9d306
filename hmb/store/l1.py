"""The cache's level 1: a worker's own map of key names to (until, value), bounded by its owner."""

from __future__ import annotations

from collections import OrderedDict


class L1(OrderedDict):
    """The L1 map (name -> (until, value)), oldest first, counting its values' bytes.

    Reads (`get`) are the plain dict's; only changes pay for the count.
    """

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0

    def __setitem__(self, name: str, entry: tuple[float, bytes]) -> None:
        old = super().get(name)
        self.nbytes += len(entry[1]) - (len(old[1]) if old is not None else 0)
        super().__setitem__(name, entry)

    def __delitem__(self, name: str) -> None:
        self.nbytes -= len(super().__getitem__(name)[1])
        super().__delitem__(name)

    def pop(self, name: str, *default):
        if name in self:
            self.nbytes -= len(super().__getitem__(name)[1])
        return super().pop(name, *default)

    def popitem(self, last: bool = True):
        name, entry = super().popitem(last)
        self.nbytes -= len(entry[1])
        return name, entry

    def clear(self) -> None:
        super().clear()
        self.nbytes = 0
