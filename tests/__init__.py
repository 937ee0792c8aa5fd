"""jaxpool test suite."""
