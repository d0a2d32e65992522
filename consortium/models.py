"""The models of the ``consortium`` app, defined by domain (governance, access, audit,
web) and gathered here for Django's app registry. Code imports them from their domain."""

from consortium.access.models import *  # noqa: F403
from consortium.audit.models import *  # noqa: F403
from consortium.governance.models import *  # noqa: F403
from consortium.web.models import *  # noqa: F403
