"""An inventory shipped as a wheel; its dependency (attrs) is installed by uv."""

import attrs


@attrs.define
class Item:
    name: str
    count: int = 0


class Inventory:
    def __init__(self):
        self.items = {}

    def add(self, name, count=1):
        item = self.items.setdefault(name, Item(name))
        item.count += count
        return attrs.asdict(item)

    def list(self):
        return [attrs.asdict(i) for i in self.items.values()]
