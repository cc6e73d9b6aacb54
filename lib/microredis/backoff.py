"""The pause after failed attempts, shared by h.retry() (retry.py), the Outbox and the Inbox (link.py)."""


class Backoff:
    """After the first `free` failures the next attempt may start at once; then it waits backoff_ms, doubling up to
    max_backoff_ms, with jitter (a random 50-100 % of the delay)."""

    # Used as a base class (link.py's Link: the Outbox and the Inbox; retry's Policy): its settings are then the
    # owner's public attributes (box.backoff_ms = 200), with no property or second object to pay for.
    def __init__(self, free):
        self.free = free
        self.backoff_ms = 500
        self.max_backoff_ms = 30000
        self.jitter = True
        self.fails = 0  # failures since the last success
        self.fail_at = 0  # ticks_ms of the last one
        self.delay = 0  # ms from then until the next attempt may start
        self._seed = 0

    def note_failure(self, clock):
        """One more failure; the ms until the next attempt."""
        self.fails += 1
        f = self.fails - self.free
        d = 0
        if f > 0:
            d = self.backoff_ms << (f - 1 if f <= 17 else 16)
            if d > self.max_backoff_ms:
                d = self.max_backoff_ms
            if self.jitter and d > 1:
                # a small LCG seeded from the ticks: jitter needs spread, not quality, and no random module
                self._seed = (self._seed * 1103515245 + 12345 + clock.ticks_ms()) & 0x3FFFFFFF
                d = d // 2 + (self._seed >> 8) % (d // 2 + 1)
        self.fail_at = clock.ticks_ms()
        self.delay = d
        return d

    def wait_ms(self, clock):
        """ms until the next attempt may start (0: now)."""
        if not self.fails:
            return 0
        w = self.delay - clock.ticks_diff(clock.ticks_ms(), self.fail_at)
        return w if w > 0 else 0

    def note_success(self):
        self.fails = 0
