"""Slow, obviously-correct NumPy references; they never import jaxpool.

One module per op family. Layout matches jaxpool: (*batch, *spatial, C).
"""
