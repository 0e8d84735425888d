"""The only package that imports nats-py: the connection and its reply inbox (connection),
publishing and direct reads (broker), stream and consumer set-up (streams), KV buckets and
counters (bucket), pull consumers (consumer), the embedded server (server)."""
