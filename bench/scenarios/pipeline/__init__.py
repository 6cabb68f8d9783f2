"""The parts of bench/pipeline.py, one module each, run in this order:

- :mod:`.ceiling` (e): the raw ceiling, a bare aiohttp client posting webhook-sized bodies to the receiver;
- :mod:`.throughput` (a): end-to-end events/s in full batches, and the recording rate alone;
- :mod:`.webhooks` (b): webhooks/s with one event per webhook;
- :mod:`.latency` (c): record → receipt p50/p99 at a steady rate;
- :mod:`.backlog` (d): the service's peak RSS while draining a backlog (measured in run (a) when it is the same).

What they share is in :mod:`.context` (the options, the :class:`~.context.Context` of a run, a fresh service per
part with :func:`~.context.running_service`, recording and waiting for webhooks) and :mod:`.measure` (the
"record N events, wait until the receiver has them all" measurement of (a), (b) and (d), and its output).

To add a part: a module here with ``async def run(ctx: Context) -> None`` that starts its service with
``async with running_service(ctx, "<letter>", {settings}) as running:``, puts its figures in
``ctx.results["<letter>"]`` and prints them with ``out()`` (``(<letter>) …`` lines); then give the letter to
``PARTS`` in bench/pipeline.py (the order there is the run order), its target, if any, to bench/targets.py, and
its figures to the summary (``figures`` and ``pass`` of the JSON line) in bench/pipeline.py.
"""
