"""Built-in judges, one module (and one entry point) each."""
