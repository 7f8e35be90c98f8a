"""The book's tooling: the chapter runner (papermill), the one-page renderer (Sphinx) and the
`superpose` command line. Needs the `book` extra.
"""

__all__ = []
