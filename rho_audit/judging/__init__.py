"""Host-side judging: the pre-run checks of a judge, its usage line, and agreement between judges.

What a judge plugin uses (the Judge and LLMJudge base classes, rubrics, budget and retries) is
part of the plugin API, in :mod:`rho_audit.api`.
"""
