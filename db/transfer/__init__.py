"""Moving a gateway's data between databases of either dialect (`chat-gateway db copy`)."""

from db.transfer.copy import BATCH_SIZE, TableCount, TransferRefused, copy_database
from db.transfer.tables import copied_tables

__all__ = ["BATCH_SIZE", "TableCount", "TransferRefused", "copied_tables", "copy_database"]
