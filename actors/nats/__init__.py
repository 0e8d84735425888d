"""The only package that imports nats-py: the connection, streams and consumers, publishing,
KV buckets, pull consumers and the embedded server."""
