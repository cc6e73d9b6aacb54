"""Sharded pub/sub on a cluster (ShardedSubscription): SSUBSCRIBE on the slot owner, followed when the slot moves."""
# A ShardedSubscription holds sharded channels of one slot (one {hash tag}) through the Subscription (pubsub.py) of
# the node client that owns the slot, on that client's connection (RESP3: shared with the commands routed there;
# Cluster._pin keeps it open past the connection cap when it can). When the slot moves, the old owner pushes
# `sunsubscribe` for the channels (Redis 7+, Valkey), and a SSUBSCRIBE sent on a stale map answers MOVED: either
# way the channels are subscribed again on the owner the map (patched by MOVED, or read again when a node was lost)
# names, and the move is a gap, as a re-dial is for retry() (pubsub.py's gaps/on_gap): messages published between
# the old owner's unsubscribe and the new subscription are lost; none published after it. Loaded by the first
# ClusterClient.ssubscribe() (package-cluster.json; the node's Subscription needs package-pubsub.json).

from .errors import ConnectionError, ReplyError, TimeoutError, text
from .cluster import MAX_REDIRECTS, key_slot


def _b(x):
    return x.encode() if type(x) is str else bytes(x)


class ShardedSubscription:
    """client.ssubscribe(*channels) of a ClusterClient: sharded channels of one slot (give them one {hash tag}).
    receive(timeout_ms=0) -> Message or None, receive_into(buffer, timeout_ms=0) -> length or None (then kind,
    channel_buf[:channel_len]), channel_is(name), ssubscribe(*more), sunsubscribe(*channels), close(), as a
    Subscription's. `node`: the (host, port) subscribed at; `shard_channels`: the channels wanted. When the slot
    moves (the server unsubscribes them, or SSUBSCRIBE answers MOVED) or the node is lost, the channels are
    subscribed again on the slot's owner within the next receive call: `gaps` counts these, `on_gap(sub)` is called
    after each (messages published in between are lost; Pub/Sub keeps nothing). A failure to subscribe again is
    raised from receive (with the cluster's retry(): None is returned and the next call tries again). With the
    cluster's health_check(ms), a receive that heard nothing for that long PINGs the node first, so a node that
    went silent (its connection open, nothing coming back) is found within one timeout."""

    gaps = 0
    on_gap = None

    def __init__(self, cluster, slot, clock):
        self._cl = cluster
        self._clock = clock
        self._slot = slot
        self.shard_channels = set()
        self._k = -1  # the node subscribed at
        self._sub = None  # that node client's Subscription
        self._old = None  # the one left behind by a move: its queued messages are handed over first
        self._heard = 0  # when the node was last heard from (cluster.health_check(): a PING after its interval)
        self.active = True
        self.kind = None  # receive_into(): as a Subscription's
        self.channel_buf = None
        self.channel_len = 0

    @property
    def node(self):
        return self._cl._address(self._k) if self._k >= 0 else None

    def __repr__(self):
        return "<ShardedSubscription slot %d at %r, %d channels, %d gaps>" % (self._slot, self.node,
                                                                              len(self.shard_channels), self.gaps)

    # ---- subscribing ------------------------------------------------------------------------------------------
    def ssubscribe(self, *channels):
        if not channels:
            raise ValueError(text("_need"))
        for ch in channels:
            if key_slot(ch) != self._slot:
                first = channels[0] if key_slot(channels[0]) == self._slot else next(iter(self.shard_channels))
                raise ValueError(text("CROSSSLOT", first, ch))
        new = [_b(ch) for ch in channels if _b(ch) not in self.shard_channels]
        for ch in new:
            self.shard_channels.add(ch)
        try:
            self._sync()
        except BaseException:
            for ch in new:
                self.shard_channels.discard(ch)
            if not self.shard_channels and self._sub is None:
                self.active = False  # a first call that failed leaves no subscription
            raise
        return self

    def _held(self):
        # every wanted channel is confirmed on the node's connection
        s = self._sub
        if s is None or not s.active:
            return False
        for ch in self.shard_channels:
            if ch not in s.shard_channels:
                return False
        return True

    def _sync(self):
        # subscribes what is wanted and not held, on the slot's owner, following MOVED (the map patched) and lost
        # nodes (the map read again); on a new node every channel, the old node's subscription left behind
        cl = self._cl
        n = 0
        while True:
            k = cl._owner(self._slot)
            s = self._sub if k == self._k else None
            names = [ch for ch in self.shard_channels if s is None or not s.active or ch not in s.shard_channels]
            if not names:
                return
            try:
                s = cl._client(k).ssubscribe(*names)
            except ReplyError as e:
                if n >= MAX_REDIRECTS or cl._moved_to(e, k) < 0:
                    raise
                n += 1
                continue
            except (ConnectionError, TimeoutError) as e:
                cl._lost(k, e)
                if n >= MAX_REDIRECTS or cl._owner(self._slot) == k:
                    raise
                n += 1
                continue
            if k != self._k:
                self._leave()
                self._k = k
                cl._pin(k, 1)
            self._sub = s
            self._heard = self._clock.ticks_ms()
            return

    def _leave(self):
        # the node subscribed at is left: what its subscription queued is handed over first (unless a classic
        # subscription on that connection shares it: then those messages stay there, for its receiver)
        s = self._sub
        if self._k >= 0:
            self._cl._pin(self._k, -1)
        self._sub = None
        self._k = -1
        if s is not None and s.active:
            self._old = s

    def _follow(self):
        # the channels were lost (moved, or the node's connection): subscribed again; a gap
        self._sync()
        self.gaps += 1
        if self.on_gap is not None:
            self.on_gap(self)

    # ---- receiving ----------------------------------------------------------------------------------------------
    def receive(self, timeout_ms=0):
        """The next Message, or None if none arrives within timeout_ms (0: never blocks)."""
        return self._recv(None, timeout_ms)

    def receive_into(self, buffer, timeout_ms=0):
        """The next message's payload copied into buffer: its length, or None (as Subscription.receive_into)."""
        return self._recv(buffer, timeout_ms)

    def _one(self, s, buffer, ms):
        # the node Subscription's own read, as retry.py calls it: a lost connection raises here (the node client's
        # retry() would re-dial the same node and hide it), so the slot's owner is looked for again (_recv)
        if buffer is None:
            return s._receive(ms)
        v = s._receive_into(buffer, ms)
        if v is not None:
            self.kind = s.kind
            self.channel_buf = s.channel_buf
            self.channel_len = s.channel_len
        return v

    def _recv(self, buffer, timeout_ms):
        if not self.active:
            raise ConnectionError("subscription is closed")
        old = self._old
        if old is not None:
            v = self._one(old, buffer, 0) if old.active and not (old.channels or old.patterns) else None
            if v is not None:
                return v
            self._old = None
            if old.active and not (old.channels or old.patterns or old.shard_channels):
                old.close()
        cl = self._cl
        clock = self._clock
        hc = cl._hc_ms()
        t0 = clock.ticks_ms()
        while True:
            ms = 0
            if timeout_ms > 0:
                ms = timeout_ms - clock.ticks_diff(clock.ticks_ms(), t0)
                if ms <= 0:
                    return None
                if hc and ms > hc:
                    ms = hc  # (wakes up for the health check)
            try:
                if not self._held():
                    self._follow()
                s = self._sub
                if hc and clock.ticks_diff(clock.ticks_ms(), self._heard) >= hc:
                    s.ping()  # a node that went silent: TimeoutError, and the owner is looked for again below
                    self._heard = clock.ticks_ms()
                v = self._one(s, buffer, ms)
                if v is not None:
                    self._heard = clock.ticks_ms()
                if not self._held():
                    self._follow()  # (the server's sunsubscribe came with this read: subscribed again at once)
            except (ConnectionError, TimeoutError, ReplyError) as e:
                if isinstance(e, ReplyError) and e.code != "MOVED" and e.code != "CLUSTERDOWN":
                    raise e
                if self._k >= 0 and not isinstance(e, ReplyError):
                    cl._lost(self._k, e)
                self._leave()
                self._old = None  # (a lost connection holds nothing more)
                if cl._rides():
                    return None
                raise e
            if v is not None or timeout_ms <= 0:
                return v

    def channel_is(self, name):
        """After receive_into(): whether the message's channel is `name`."""
        if type(name) is str:
            name = name.encode()
        n = self.channel_len
        b = self.channel_buf
        if len(name) != n:
            return False
        for i in range(n):
            if b[i] != name[i]:
                return False
        return True

    # ---- unsubscribing --------------------------------------------------------------------------------------
    def sunsubscribe(self, *channels):
        """These channels (none named: all) are no longer wanted, and unsubscribed on the node."""
        names = [_b(ch) for ch in channels] if channels else list(self.shard_channels)
        for ch in names:
            self.shard_channels.discard(ch)
        s = self._sub
        if s is not None and s.active and names:
            s.sunsubscribe(*names)

    def close(self):
        """Unsubscribes every channel; the node's connection stays for commands (its Subscription is closed when
        it holds nothing more)."""
        if not self.active:
            return
        self.active = False
        s = self._sub
        try:
            if s is not None and s.active:
                if self.shard_channels:
                    s.sunsubscribe(*self.shard_channels)
                if not (s.channels or s.patterns or s.shard_channels):
                    s.close()
        finally:
            self.shard_channels.clear()
            self._leave()
            self._old = None
