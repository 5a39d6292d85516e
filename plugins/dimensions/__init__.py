"""Built-in behavioural dimensions, one module (and one entry point) each."""
