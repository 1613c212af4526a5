"""Decode hypothesis-drawn bytes into test operations (cheap to generate, shrinks toward zeros)."""


class ByteStream:
    def __init__(self, data: bytes):
        self.data = data
        self.i = 0

    def __bool__(self):
        return self.i < len(self.data)

    def next(self, mod: int) -> int:
        """Next byte modulo ``mod`` (0 once the data is exhausted)."""
        if self.i >= len(self.data):
            return 0
        v = self.data[self.i]
        self.i += 1
        return v % mod

    def levels(self, max_n: int, px_range: int, qty_range: int = 4, base: int = 0):
        return [(base + self.next(px_range), self.next(qty_range)) for _ in range(self.next(max_n + 1))]
