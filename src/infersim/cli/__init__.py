"""The ``infersim`` command line."""
