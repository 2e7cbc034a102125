"""Benchmarks: authchain measured side by side with its floor and its peers (issue 10).

Scripts, not timed tests. Each ``bench_*`` module measures one or more rows
of the issue's table, always together with its baseline in the same process
and the same run, and reports medians of repeated, interleaved rounds and
the ratio between them. ``python -m benchmarks.run`` runs them all (each in
its own process) and prints one table; ``--quick`` is a smoke mode that runs
every code path once with few repetitions (the test suite uses it).

Timing uses the standard library's ``timeit`` (see ``_harness.py`` for why
not pyperf). Every server is started here on 127.0.0.1 and stopped here;
every secret value is generated and never printed.
"""
