"""The protocol as code, pure (no I/O): task messages, result records, task ids, names of
subjects, streams and buckets, time fields, and validation of untrusted input. See
docs/protocol.md."""
