"""Fixtures of the replica tests: the pair must be there, streaming, and caught up."""

import pytest

from . import pair


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database is created on the primary; wait until the replica has it too."""
    if pair.CONFIGURED:
        with django_db_blocker.unblock():
            pair.wait_until_caught_up()


@pytest.fixture(autouse=True)
def _replica(request, settings):
    """Each test starts with a streaming replica that has caught up, and no read pins.

    Without a replica the test is skipped with the reason, or fails in CI: a CI run that
    could not start the pair must not look green.
    """
    if not pair.CONFIGURED:
        if pair.in_ci():
            pytest.fail(pair.MISSING)
        pytest.skip(pair.MISSING)
    request.getfixturevalue("transactional_db")
    if not pair.is_standby():
        pytest.fail(
            "DATABASE_REPLICA_URL does not point at a standby (pg_is_in_recovery() is false)"
        )
    pair.resume()
    pair.wait_until_caught_up()
    # Pins are switched on where a test is about them.
    settings.AUDIT_LOG_READ_YOUR_WRITES_SECONDS = 0
    yield
    pair.resume()
