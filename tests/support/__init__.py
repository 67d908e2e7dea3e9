"""Helpers shared by the test suite (tests/ is on sys.path; the checkout is not)."""
