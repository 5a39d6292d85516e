"""Judges on the host side: LLM-judge machinery (rubrics, retries, budget, cache), agreement."""
