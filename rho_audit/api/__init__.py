"""The plugin API: everything a third-party dimension, judge, trainer or probe-set package uses.

Imports no MLX, Textual or SDK: a plugin package (and its tests) can import it anywhere.
"""
