"""The admin of the ``consortium`` app, registered by domain (``stock_admin`` replaces
two stock admins, registered before it: their apps come first in INSTALLED_APPS)."""

from consortium import stock_admin
from consortium.access import admin as access_admin
from consortium.audit import admin as audit_admin
from consortium.governance import admin as governance_admin
from consortium.governance import agreements_admin, tokens_admin

__all__ = [
    "access_admin",
    "agreements_admin",
    "audit_admin",
    "governance_admin",
    "stock_admin",
    "tokens_admin",
]
