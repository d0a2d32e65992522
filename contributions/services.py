"""The public contribution services in one namespace, as ``contributions.api`` and the
demo command call them. Each service lives beside its applier in the module of the
change it makes: ``facilities``, ``compute``, ``data``, ``funds`` and ``disputes``."""

from contributions.compute import by_account, import_attest, sacct_import
from contributions.data import data_contribute
from contributions.disputes import contribution_dispute, dispute_resolve
from contributions.facilities import facility_register, facility_update
from contributions.funds import funds_confirm, funds_contribute, funds_reject
from contributions.sacct import gpu_hours

__all__ = [
    "by_account",
    "contribution_dispute",
    "data_contribute",
    "dispute_resolve",
    "facility_register",
    "facility_update",
    "funds_confirm",
    "funds_contribute",
    "funds_reject",
    "gpu_hours",
    "import_attest",
    "sacct_import",
]
