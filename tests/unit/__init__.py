import pytest

pytest.register_assert_rewrite("tests.unit.checks")  # its shared checks report their values as a test's asserts do
