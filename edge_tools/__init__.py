"""Tooling around the runtime: benchmarks, evaluations, the demo and the moving test scenes.

Kept out of the ``edge`` package, which is what runs on a door; the ``edge`` command reaches
these only for `edge bench`, `edge eval` and `edge demo`.
"""
