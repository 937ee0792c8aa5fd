"""Sphinx configuration for the jaxpool documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors;
``tests/test_docs.py`` runs the same build).
"""

import inspect
import os
import sys

sys.path.insert(0, os.path.abspath('..'))

import flax.linen as nn
from flax import nnx

import jaxpool

project = 'jaxpool'
author = 'the jaxpool authors'
copyright = '2026, the jaxpool authors'  # noqa: A001 (Sphinx's name)
release = jaxpool.__version__
version = release

extensions = [
  'sphinx.ext.autodoc',
  'sphinx.ext.napoleon',
  'sphinx.ext.mathjax',
  'myst_parser',  # the Markdown pages (design, performance, contributing) and included results
]
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
# Links to a section (``design.md#large-windows``) resolve to the heading's anchor.
myst_heading_anchors = 3

# Google-style docstrings (Args:, Returns:, Example:).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

autodoc_member_order = 'bysource'
autodoc_typehints = 'signature'
autodoc_default_options = {'show-inheritance': False}
# Flax modules: document the call, not the framework's own methods.
autodoc_inherit_docstrings = False

exclude_patterns = ['_build']
html_theme = 'alabaster'
html_theme_options = {
  'description': 'Every pooling operator, as pure JAX functions and Flax modules',
  'fixed_sidebar': True,
}
html_static_path = []


def _default_repr(default, owner) -> str:
  """Defaults as written in code: initialisers by name, not as ``<function ... at 0x...>``."""
  if callable(default):
    for name, value in vars(sys.modules[owner.__module__]).items():
      if value is default:
        return name
    return getattr(default, '__name__', repr(default))
  return repr(default)


def _module_signature(app, what, name, obj, options, signature, return_annotation):
  """Module classes are shown with their fields: linen without ``parent``/``name``, NNX's
  ``__init__`` (not the metaclass's ``*args, **kwargs``); types are in the functions' docs."""
  del app, name, options, signature, return_annotation
  if what != 'class' or not isinstance(obj, type):
    return None
  if issubclass(obj, nnx.Module):
    params = list(inspect.signature(obj.__init__).parameters.values())[1:]
  elif issubclass(obj, nn.Module):
    params = [
      p for p in inspect.signature(obj).parameters.values() if p.name not in ('parent', 'name')
    ]
  else:
    return None
  parts, star = [], False
  for p in params:
    if p.kind == p.KEYWORD_ONLY and not star:
      parts.append('*')
      star = True
    parts.append(p.name if p.default is p.empty else f'{p.name}={_default_repr(p.default, obj)}')
  return f'({", ".join(parts)})', None


def setup(app):
  app.connect('autodoc-process-signature', _module_signature)
