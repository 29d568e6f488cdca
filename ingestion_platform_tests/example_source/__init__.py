"""A minimal source built on the source contract, as docs/ADDING_A_SOURCE.md describes it.

Two external systems, so two source declarations (one raw-store folder each):

* ``example_weather`` (``fetch_unit="window"``): a paged JSON API of daily weather observations,
  fetched once for the run's range -> ``example.observation`` and the ``example.station`` dimension.
* ``example_rain`` (``fetch_unit="day"``): rain-gauge networks drop one CSV export per network and
  day (``<drop dir>/<day>/<network>.csv``, ``;``-separated, decimal commas) -> ``example.rain``.

It lives in the tests, not under ``ingestion_platform/defs``: the code location never loads it, and
only ``test_example_source.py`` imports it (its declarations join the global ``SOURCES`` and
``CONTRACTS`` registries, so that test removes them again when it is done).
"""
