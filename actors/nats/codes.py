"""The JetStream API error codes actors acts on (``err_code`` in nats-server's errors.json)."""

NO_SUITABLE_PEERS = 10005
"""No suitable peers for placement: a replica's node is offline or not caught up yet (a
cluster just started or restarted a node); placing the stream again later succeeds."""

JS_UNAVAILABLE = 10008
"""JetStream system temporarily unavailable: no stream or meta leader yet."""

NO_MESSAGE_FOUND = 10037
"""No message found: the stream holds no message on the subject asked for."""

STREAM_NAME_IN_USE = 10058
"""Stream name already in use with a different configuration."""

WRONG_LAST_SEQUENCE = 10071
"""Wrong last sequence: an expected-sequence write lost (a create-only key exists)."""

WRONG_LAST_SEQUENCE_CONSTANT = 10164
"""The same refusal, as newer servers word it for some writes."""

WRONG_LAST_SEQUENCES = frozenset({WRONG_LAST_SEQUENCE, WRONG_LAST_SEQUENCE_CONSTANT})
"""Every code meaning a compare-and-set write found another revision."""

MAX_CONSUMERS = 10026
"""Maximum consumers limit reached (nats-server allows 1,000 per stream by default)."""

CONSUMER_NOT_UNIQUE = 10100
"""Filtered consumer not unique on a work-queue stream: another consumer has that subject."""
