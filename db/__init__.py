"""Persistence and the business rules; imports neither door (no starlette, strawberry, aiohttp)."""
