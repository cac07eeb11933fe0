"""Asynchronous CSV imports (SPEC §9.5): jobs, their CSV stream, S3 files and queue."""
