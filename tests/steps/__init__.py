"""Steps the tests take, shared between directories: one module per layer (``ledger``,
``governance``, ``contributions``, ``access``, ``audit``), and ``api`` for calling the REST
API as a persona. The people and the worlds they act in are in tests/personas.py; the
fixtures that hand them to a test are in tests/conftest.py."""
