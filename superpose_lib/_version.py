"""The library's version (one home: the package, the sweep cache and the book's footer read it)."""

__version__ = "0.1.0"
