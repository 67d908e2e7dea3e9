"""Helpers shared by the test suite (tests/ is on sys.path; the checkout is not)."""

# The stores the tests share check answers, not latency: on a loaded CI machine a server
# (a private cluster node above all) can stall past a store's default deadline, as can the
# last of many writers queued on one SQLite file, and a test of what a session holds would
# then fail on an outage it never asked for. The outage and deadline tests set their own
# short deadlines.
ANSWER_TIMEOUT = 5.0
