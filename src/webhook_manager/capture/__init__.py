"""Database change capture (docs/capture.md): inserts, updates and deletes in an application's tables become
events, exactly once. :mod:`.source` is the contract every source keeps and names the sources
(:mod:`.sqlite_outbox`, :mod:`.postgres_logical`, :mod:`.postgres_trigger`, :mod:`.mysql_binlog`);
:mod:`.pump` runs one, :mod:`.supervisor` keeps them running."""
