"""Fixtures shared by this folder: real server processes."""

from tests.servers import servers

__all__ = ["servers"]
