"""Built-in sweep executors (``rho-audit sweep --executor NAME``), registered through the
``rho_audit`` entry-point group like any third party's: ``local`` and ``ray``."""
