"""Built-in trainers (arrive with the trainers issue)."""
