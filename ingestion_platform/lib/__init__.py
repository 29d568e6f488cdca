"""Source-agnostic machinery: warehouse, ledger, HTTP client, raw store, check builders.

Nothing in this package defines Dagster assets; every source under ``ingestion_platform.defs``
builds on it.
"""
