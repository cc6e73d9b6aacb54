"""The optional parts' error texts (the catalogue, stream groups, the cluster, the Outbox and the Inbox), loaded only then.

texts.text() looks a key up here when the core's table (texts.py) lacks it, so a board whose error is the core's
never loads these sentences (the same rule as texts.py: a key in the code, the sentence here)."""

TEXTS = {
    # the catalogue (commands.py, cmdargs.py and the group modules): wrong arguments, and replies of an unexpected shape (a
    # conversion's TypeError, which the future's ProtocolError quotes)
    "_true": "a status reply was expected",
    "_two": "a 2-element array was expected",
    "_scan": "a list of keys was expected",
    "_digits": "a number as a string was expected",
    "getex": "getex takes only one of ex, px, exat, pxat, persist",
    "_expire": "nx excludes xx/gt/lt, and gt excludes lt",
    "hset": "hset needs field and value, or mapping",
    "_bpop": "timeout must be a finite number of seconds >= 0 (0: block forever)",
    "int": "%s must be an int",
    "num": "%s must be an int or a float",
    "_many": "%s must not be empty",
    "dict": "%s must be a dict",
    "_entries": "stream entries must be [id, fields]",
    "_list": "an array was expected",
    "_float": "a number was expected",
    "minid": "maxlen and minid are mutually exclusive",
    "maxlen": "maxlen must be >= 0",
    "limit": "limit needs maxlen or minid",
    "approximate": "limit needs approximate=True",
    "nx": "nx and xx are mutually exclusive",
    "gt": "only one of nx, gt, lt may be set",
    "incr": "incr takes exactly one member",
    "bylex": "byscore and bylex are mutually exclusive",
    "offset": "offset and num go together, with byscore or bylex",
    "withscores": "withscores does not apply to bylex",
    "xtrim": "xtrim needs maxlen or minid",
    "_need": "at least one argument is required",
    "to_bool": "an integer was expected",
    "to_dict": "an even number of elements was expected",
    "to_pairs": "[member, score] pairs were expected",
    # stream reads and consumer groups (xgroups.py)
    "_count": "count must be an int >= 1",
    "block": "block must be an int >= 0 (ms; 0: block forever)",
    "_nonneg": "%s must be an int >= 0",
    "message_ids": "message_ids must be a list or tuple of IDs",
    "xpending_range": "xpending_range needs min, max and count (xpending() gives the summary)",
    "_summary": "an XPENDING summary [count, min, max, consumers] was expected",
    "_detail": "XPENDING entries [id, consumer, idle ms, deliveries] were expected",
    "_claimed": "an XAUTOCLAIM reply [next ID, entries, ...] was expected",
    # the cluster client (cluster.py)
    "startup_nodes": "Cluster needs at least one (host, port) startup node",
    "max_connections": "max_connections must be an int >= 1",
    "CROSSSLOT": "the keys of one command must map to one cluster slot (%r and %r do not): give them a common "
                 "{hash tag}, e.g. b'{dev42}:temp' and b'{dev42}:hum' (only the part in braces is hashed)",
    "partial": "node %s:%s gave a slot map that does not cover all 16384 slots (not adopted)",
    "refresh": "no cluster node gave a whole slot map (%d asked; last: %s)",
    "nodes": "more than 255 cluster node addresses met",
    # the Outbox (outbox.py), the Inbox (inbox.py, with "_count") and its asyncio form (aio_inbox.py)
    "capacity": "capacity must be an int >= 1",
    "max_bytes": "max_bytes must be None or an int >= 1",
    "maxlen_none": "maxlen must be None or an int >= 1",
    "fields": "a reading is a dict {field: value} with at least one field",
    "size": "the reading (%d bytes) is larger than max_bytes",
    "damaged": "outbox: %d damaged stretch(es) of %s skipped, %d reading(s) lost",
    "_lose_head": "outbox: reading %d is damaged on flash and was dropped",
    "block_ms": "block_ms must be an int >= 0",
    "max_deliveries": "max_deliveries must be an int >= 1",
    "client_kind": "%s reads on %s client: pass that kind as client=",
}
