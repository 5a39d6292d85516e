"""Jinja2 templates of rho-audit's report cards (installed as the ``rho_audit_reports`` package).

``*.html.j2`` render with HTML autoescaping on; ``*.md.j2`` render with every ``{{ }}`` output
escaped for Markdown (see :func:`rho_audit.report.render.make_environment`). Cards: ``audit``,
``comparison`` and ``sweep``; ``sections/`` holds the per-dimension sections chosen by the shape
of a dimension's records (pair, generation, numeric, generic); ``partials/`` the shared pieces.
"""
