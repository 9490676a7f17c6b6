"""The ASGI entry point for servers: `uvicorn gateway.asgi:app`."""

from gateway.app import create_app

app = create_app()
