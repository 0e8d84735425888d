"""The ``actors`` command line."""
