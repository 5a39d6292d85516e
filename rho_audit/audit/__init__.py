"""Running an audit: the runner (plan, isolate, store), the scoring of each dimension kind, metrics."""
