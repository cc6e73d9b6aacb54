"""The Outbox's stream entry IDs: reading number k gets ms-k from the run covering it; runs rise across sessions."""
# Exactly once without a clock on the board: every reading is sent with an explicit XADD entry ID, fixed the first
# time it is sent and kept for every re-send, so a re-send whose first XADD landed is refused by the server ("equal or
# smaller than the target stream top item"). The sequence part of a reading's ID is its number k, never reused (with
# a file, across reboots); the ms part comes from a run (k0, ms): readings k >= k0 use ms until the next run. A run
# starts above the server's time, the stream's last ID and every ID handed out, so IDs rise across reconnects,
# server clock steps and reboots. Because the sequence part is k, the stream's top entry says which reading landed
# last: the Outbox checks it against its own copy of that reading and needs no run to know what was delivered.


class Ids:
    def __init__(self):
        self.runs = []  # [k0, ms], ascending k0
        self.last_ms = 0  # the highest ID handed to a sent reading
        self.last_seq = 0
        self.first_ms = 0  # ms of the first run ever made: from then on, readings may be in the stream
        self.sent = 0  # readings below this number may have been sent: their IDs are fixed
        # this session (one connection)
        self.made = False  # a run was made: readings from fresh on were first sent on this connection
        self.fresh = 0
        self.base_ms = -1  # the lowest ms a new run may use (-1: not learnt yet), and when it was learnt
        self.base_seq = 0  # with base_ms: (base_ms, base_seq) is above everything in the stream
        self.base_at = 0
        self.run_at = 0

    def ms_of(self, k):
        """The ms part of reading k's ID, or -1 when no run covers it."""
        runs = self.runs
        i = len(runs) - 1
        while i >= 0:
            r = runs[i]
            if r[0] <= k:
                return r[1]
            i -= 1
        return -1

    def prune(self, k):
        # runs that cover only readings below k (done or dropped) are of no more use
        runs = self.runs
        while len(runs) > 1 and runs[1][0] <= k:
            runs.pop(0)

    def session(self):
        self.made = False
        self.base_ms = -1

    def learn(self, time_ms, top_ms, top_seq, ticks):
        # the floor of the session's runs: above the server's time, the stream's top and the last ID handed out
        ms, seq = time_ms, 0
        if (top_ms, top_seq) >= (ms, seq):
            ms, seq = top_ms, top_seq + 1
        if (self.last_ms, self.last_seq) >= (ms, seq):
            ms, seq = self.last_ms, self.last_seq + 1
        self.base_ms = ms
        self.base_seq = seq
        self.base_at = ticks

    def next_run(self, k0, clock):
        """The ms of a new run from reading k0 (the server's time advanced by the ticks since it was learnt, kept
        above the floor and the previous reading's ID). Not made until add_run(): the caller persists it first."""
        ms = self.base_ms
        el = clock.ticks_diff(clock.ticks_ms(), self.base_at)
        if el > 0:
            ms += el
        if ms < 1:
            ms = 1  # "0-k" is refused for k = 0
        if (ms, k0) < (self.base_ms, self.base_seq):
            ms = self.base_ms if k0 >= self.base_seq else self.base_ms + 1
        if k0 > 0:
            p = self.ms_of(k0 - 1)
            if p > ms:
                ms = p
        return ms

    def add_run(self, k0, ms, ticks):
        runs = self.runs
        while runs and runs[-1][0] >= k0:
            runs.pop()  # a run for readings never sent, replaced
        runs.append([k0, ms])
        if not self.first_ms:
            self.first_ms = ms
        if not self.made:
            self.made = True
            self.fresh = k0
        self.run_at = ticks

    def handed(self, k, ms):
        # reading k goes out as ms-k: its ID is fixed from now on
        if k >= self.sent:
            self.sent = k + 1
        if (ms, k) > (self.last_ms, self.last_seq):
            self.last_ms = ms
            self.last_seq = k

    def rerun(self, k):
        # readings from k on get new IDs in the next run (theirs are at or below the stream's top: never delivered)
        if k < self.sent:
            self.sent = k
        if self.made and self.fresh > k:
            self.fresh = k
