"""pytest configuration shared by the test modules.

Hypothesis profiles (tests/test_properties.py, tests/test_fuzz.py):

- ``ci`` (the default): derandomized and without an example database, so every
  run draws the same examples and a failure reproduces from the test alone;
  bounded example counts, no deadline (timings vary between machines).
- ``dev``: random examples, more of them, with the local database, for hunting
  bugs by hand: ``HYPOTHESIS_PROFILE=dev python -m pytest tests/test_fuzz.py``.
"""
import os

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is a test extra; the modules that need it skip
    settings = None

if settings is not None:
    _common = dict(deadline=None, print_blob=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.register_profile("ci", max_examples=200, derandomize=True, database=None, **_common)
    settings.register_profile("dev", max_examples=2000, **_common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_runtest_makereport(item, call):
    """When a hypothesis test fails, hypothesis's pytest plugin imports its patch
    writer (hypothesis.extra._patching, which imports libcst) after this hook;
    with libcst's DeprecationWarning turned into an error by filterwarnings=error,
    that import is an INTERNALERROR that hides the failure.  Import it here first,
    with the warning ignored (only on failure: the import takes about a second)."""
    if getattr(item, "_hypothesis_failing_examples", None):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                import hypothesis.extra._patching  # noqa: F401
            except ImportError:
                pass
