"""The protocol as code, pure (no I/O): task messages, result records, names of subjects,
streams and buckets, time fields, and validation of untrusted input. See docs/protocol.md."""
