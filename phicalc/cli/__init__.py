"""Command-line interface: ``phicalc <command>``; each command lives in its own module."""
