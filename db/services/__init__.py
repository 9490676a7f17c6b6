"""The business logic: one module per domain, verbs get/list/create/update/send."""
