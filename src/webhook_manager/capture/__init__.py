"""Database change capture (docs/capture.md): inserts, updates and deletes in an application's tables become
events, exactly once. :mod:`.runner` runs a source; :mod:`.sqlite`, :mod:`.postgres_logical` and
:mod:`.postgres_trigger` are the sources."""
