"""A stateful counter: the smallest python-form component."""


class Counter:
    def __init__(self):
        self.value = 0

    def increment(self, by: int = 1) -> int:
        """Add ``by`` and return the new value."""
        self.value += by
        return self.value

    def get(self) -> int:
        return self.value

    def echo(self, x):
        """Return ``x`` unchanged (the benchmark's round trip)."""
        return x
