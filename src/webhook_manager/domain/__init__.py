"""The shared, pure core: domain values, ids, time formats, the error tree and the address rules."""
