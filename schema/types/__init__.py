"""One Strawberry type per module, each with a `from_model()` converter."""
