"""Built-in experiment trackers (``--track NAME`` / ``RHO_AUDIT_TRACKING``): ``mlflow``."""
