"""Trade history: an embedded SQLite database fed from the audit file (docs/design.md §6).

:mod:`cexnode.storage.tradedb` holds the schema, the ingestion of audit records and the queries;
:mod:`cexnode.storage.feeder` the node component whose thread keeps the database current.
"""
from cexnode.storage.tradedb import TradeDB, TradeDBError

__all__ = ["TradeDB", "TradeDBError"]
