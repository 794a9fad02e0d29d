"""The ``smarttrip`` command line: one sub-command group per module."""
