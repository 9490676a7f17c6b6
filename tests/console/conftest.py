"""Fixtures of the browser tests: see tests/console/browsing.py."""

from tests.console.browsing import (
    browser,
    console,
    console_settings,
    open_page,
    page_problems,
    playwright,
)

__all__ = ["browser", "console", "console_settings", "open_page", "page_problems", "playwright"]
