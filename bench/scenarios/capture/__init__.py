"""The parts of bench/capture.py, one module each, run for every source (``sqlite``, ``postgres-logical``,
``postgres-trigger``, ``mysql``) in this order:

- :mod:`.throughput` (a): changes/s captured from one big UPDATE by ``webhook-manager capture`` running alone;
- :mod:`.raw_read` (r): the bare read of the same changes, in the same run as (a), after it (called by (a));
- :mod:`.latency` (c): commit → receipt p50/p99 at a steady rate, through ``webhook-manager serve`` with a
  ``[[capture]]`` section and the receiver.

What they share is in :mod:`.context` (the options, the :class:`~.context.Context` of a run, a fresh application
database, store and capture set-up per part) and :mod:`.apps` (the application databases the bench writes to).

To add a part: a module here with ``def run(ctx: Context, source: str) -> dict[str, Any]`` that makes what it
needs with ``new_app`` / ``new_store`` / ``set_up_capture``, notes every process it starts in
``ctx.res.processes``, and returns its figures (bench/capture.py keeps them in ``results[source]["<letter>"]`` of
the JSON line); then give it to ``PARTS`` in bench/capture.py, its line to ``print_source`` there, its target to
bench/targets.py and, if it has one, a column to the summary table.
"""
