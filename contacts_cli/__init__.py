"""Command-line tools for integrators: CSV import through the bulk endpoint."""
