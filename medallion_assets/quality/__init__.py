"""Data quality: expectations and integrity checks, each declared on the table it guards."""
