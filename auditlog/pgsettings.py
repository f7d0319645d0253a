"""PostgreSQL settings for one block of the read path's queries, then put back.

Two reads bound their cost with a setting of PostgreSQL's own: the activity chart's count
(``statement_timeout``) and the admin search (``enable_seqscan = off``, so that a search
is answered from the indexes led by the tenant even when a ``LIMIT`` makes a sequential
scan look cheap). ``set_config(…, true)`` is ``SET LOCAL``: it lasts until the end of the
transaction, and a released savepoint does not end it, so the previous values are put
back; a block that fails rolls its savepoint back and the settings with it. Other
databases have no such settings: the block just runs.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections, transaction


@contextmanager
def local_settings(alias: str, **values: str) -> Iterator[None]:
    """Run the block with PostgreSQL settings ``values`` on database ``alias``."""
    connection = connections[alias]
    if connection.vendor != "postgresql" or not values:
        yield
        return
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        previous = {}
        for name, value in values.items():
            cursor.execute(
                "SELECT current_setting(%s), set_config(%s, %s, true)", [name, name, value]
            )
            previous[name] = cursor.fetchone()[0]
        yield
        for name, value in previous.items():
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
