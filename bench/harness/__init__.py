"""The benches' harness: what bench/pipeline.py and bench/capture.py share, so that a scenario only says what it
measures.

- :mod:`.limits`: :class:`~.limits.BenchError` (the one error a bench stops on, one line saying why), the global
  :class:`~.limits.Deadline` (``--timeout``) and :class:`~.limits.Watch` (a wait's stall limit and progress lines);
- :mod:`.report`: ``log()`` (progress on stderr), ``out()`` (a figure on stdout), verdicts, tables, the JSON line;
- :mod:`.processes`: child processes with a log file each (die with the bench, SIGTERM then SIGKILL), their
  descendants, CPU time, RSS sampling, one-shot commands;
- :mod:`.databases`: PostgreSQL and MySQL/MariaDB connections, URL helpers and redaction, and the registry of the
  databases a bench creates (dropped on exit);
- :mod:`.service`: ``webhook-manager`` itself: its environment, the bench's account, ``serve`` / ``api`` +
  ``worker`` processes and their readiness, ``capture`` commands and ``[[capture]]`` sections;
- :mod:`.api`: the service's HTTP API as a user sees it (login, configurations, events);
- :mod:`.receiver_client`: starting bench/receiver.py in a process of its own and reading its counts;
- :mod:`.lifecycle`: :class:`~.lifecycle.Run` (what every scenario of a run gets: deadline, command, temporary
  folder, resources), :class:`~.lifecycle.Resources` (everything started or created, to clean up) and
  :func:`~.lifecycle.run_main` (a temporary folder, the run, the cleanup on any exit, the exit status).

A run: the entry point parses its options and calls ``run_main``, which makes the :class:`~.lifecycle.Run`; the
entry point wraps it in its bench's context (``bench.scenarios.<bench>.context.Context``), prints its header, calls
each chosen scenario in order with that context, and prints the summary and the JSON line from
``context.results``.

The targets are in bench/targets.py; the scenarios in bench/scenarios/. See bench/README.md.
"""
