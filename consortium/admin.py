"""The admin of the ``consortium`` app, registered by domain."""

from consortium.access import admin as access_admin
from consortium.audit import admin as audit_admin
from consortium.governance import admin as governance_admin
from consortium.governance import agreements_admin, tokens_admin

__all__ = ["access_admin", "agreements_admin", "audit_admin", "governance_admin", "tokens_admin"]
