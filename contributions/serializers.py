"""Shapes of the contributions API: what the endpoints answer, and the bodies (and the
query of an import) they take, each refusing a field it does not name."""

from __future__ import annotations

from rest_framework import serializers

from consortium.governance.models import ValuationTable
from contributions.models import Contribution, Dispute, Facility, SacctImport
from ledger.api.serializers import StrictSerializer


class FacilitySerializer(serializers.ModelSerializer):
    operator = serializers.CharField(source="operator_id")

    class Meta:
        model = Facility
        fields = [
            "code",
            "name",
            "operator",
            "country",
            "timezone",
            "default_accelerator",
            "partitions",
            "accounts",
            "registered_in",
            "changed_in",
        ]


class FacilityCreateSerializer(StrictSerializer):
    code = serializers.CharField()
    name = serializers.CharField()
    operator = serializers.CharField(help_text="The member that runs it.")
    country = serializers.CharField()
    timezone = serializers.CharField(default="UTC")
    default_accelerator = serializers.CharField()
    partitions = serializers.DictField(child=serializers.CharField(), default=dict)
    accounts = serializers.DictField(child=serializers.CharField(), default=dict)
    public_key = serializers.CharField(
        required=False,
        help_text="Base64 Ed25519 key the facility holds; leave out for a hosted key.",
    )


class FacilityChangesSerializer(StrictSerializer):
    changes = serializers.DictField(
        help_text="Some of timezone, default_accelerator, partitions, accounts."
    )


class ContributionSerializer(serializers.ModelSerializer):
    member = serializers.CharField(source="member_id")
    facility = serializers.CharField(source="facility_id", allow_null=True)

    class Meta:
        model = Contribution
        fields = [
            "id",
            "kind",
            "member",
            "state",
            "disputed",
            "delivered_on",
            "recorded_in",
            "recorded_at",
            "facility",
            "import_id",
            "accelerator",
            "allocations",
            "gpu_hours",
            "period_start",
            "period_end",
            "evidence_sha256",
            "attested_in",
            "dataset",
            "tokens",
            "amount",
            "currency",
            "date",
            "confirmed_in",
            "claimed",
        ]


class ImportSerializer(serializers.ModelSerializer):
    facility = serializers.CharField(source="facility_id")

    class Meta:
        model = SacctImport
        fields = [
            "id",
            "facility",
            "export_sha256",
            "lines",
            "allocations",
            "left_out",
            "recorded_in",
            "attested_in",
        ]


class DisputeSerializer(serializers.ModelSerializer):
    member = serializers.CharField(source="member_id")
    contribution = serializers.UUIDField(source="contribution_id")

    class Meta:
        model = Dispute
        fields = [
            "id",
            "contribution",
            "member",
            "reason",
            "opened_in",
            "outcome",
            "resolution",
            "resolved_in",
        ]


class ValuationTableSerializer(serializers.ModelSerializer):
    class Meta:
        model = ValuationTable
        fields = ["version", "unit", "weights", "unit_price", "data_price", "adopted_in"]


class DataSerializer(StrictSerializer):
    dataset = serializers.DictField(help_text="See docs/contributions.md.")


class FundsSerializer(StrictSerializer):
    amount = serializers.CharField(help_text='Exact decimal as a string, e.g. "250000.00".')
    currency = serializers.CharField(help_text="ISO 4217.")
    date = serializers.CharField(help_text="The day paid, YYYY-MM-DD.")
    reference = serializers.CharField(required=False, allow_blank=True, default="")


class ConfirmationSerializer(StrictSerializer):
    outcome = serializers.ChoiceField(
        choices=["confirmed", "rejected"],
        help_text="confirmed: the payment is in the treasurer's books; rejected: it is not.",
    )
    amount = serializers.CharField(required=False, help_text="As received (default: as recorded).")
    currency = serializers.CharField(
        required=False, help_text="As received (default: as recorded)."
    )
    date = serializers.CharField(
        required=False, help_text="The day received (default: as recorded)."
    )
    reason = serializers.CharField(
        required=False, max_length=500, help_text="Why it is rejected (required to reject)."
    )


class ImportQuery(StrictSerializer):
    """The query of a SLURM import (its body is the export)."""

    fields = serializers.CharField(required=False, allow_blank=True)
    tz = serializers.CharField(required=False, allow_blank=True)
    dry_run = serializers.ChoiceField(
        choices=["true", "false"],
        required=False,
        default="false",
        error_messages={"invalid_choice": "dry_run is true or false"},
    )


class DisputeCreateSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=500)


class ResolutionSerializer(StrictSerializer):
    outcome = serializers.ChoiceField(choices=["upheld", "dismissed"])
    resolution = serializers.CharField(max_length=500)
