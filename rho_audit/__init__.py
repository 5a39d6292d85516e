"""rho-audit: audit and repair what fine-tuning did to a language model's behaviour."""

__version__ = "0.1.0"
