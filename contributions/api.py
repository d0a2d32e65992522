"""REST endpoints for facilities, contributions, imports, disputes, valuation tables and
the cost-share report.

A member's delegates see their own member's contributions; the secretariat and auditors
see every member's. The cost-share report (aggregates per member) is read by every seat
holder, like the agreements it reports on.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from datetime import date

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from consortium.governance import agreements
from consortium.governance.agreements_api import RawBodyParser
from consortium.governance.api import IDEMPOTENCY, PROBLEMS, WRITE_PROBLEMS, act
from consortium.governance.members import visible_members_of
from consortium.governance.models import ValuationTable
from consortium.web.idempotency import ApiView
from consortium.web.problems import ProblemException, bad_request, not_found
from contributions import services
from contributions.models import Contribution, Dispute, Facility, SacctImport
from contributions.report import ReportError, cost_share_report
from ledger.api.serializers import EmptyBody, StrictSerializer

# --- serializers ------------------------------------------------------------------------------


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


# --- helpers ----------------------------------------------------------------------------------


def _facility(code) -> Facility:
    facility = Facility.objects.filter(code=code).first()
    if facility is None:
        raise not_found(f"no facility {code}")
    return facility


def _visible_contributions(request):
    members = visible_members_of(request.user)
    qs = Contribution.objects.all()
    return qs if members is None else qs.filter(member__in=members)


def _contribution(request, pk) -> Contribution:
    c = _visible_contributions(request).filter(id=pk).first()
    if c is None:
        # Disputing or confirming needs only the contribution's id: a member may dispute
        # another's, or confirm it as treasurer, which it reads on the ledger, without
        # reading the others' private list.
        c = Contribution.objects.filter(id=pk).first()
    if c is None:
        raise not_found(f"no contribution {pk}")
    return c


def _day(request, name) -> date | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise bad_request(f"{name} is a date, YYYY-MM-DD") from exc


# --- facilities ---------------------------------------------------------------------------------


class FacilityListView(ApiView):
    @extend_schema(
        operation_id="facilities_list",
        summary="Facilities",
        responses={200: FacilitySerializer(many=True), **PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        return Response(FacilitySerializer(Facility.objects.order_by("code"), many=True).data)

    @extend_schema(
        operation_id="facilities_register",
        summary="Register a facility and its key (the secretariat)",
        parameters=[IDEMPOTENCY],
        request=FacilityCreateSerializer,
        responses={201: FacilitySerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request) -> Response:
        body = FacilityCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        record = dict(body.validated_data)
        raw = None
        if "public_key" in record:
            try:
                raw = base64.b64decode(record.pop("public_key"), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise bad_request("public_key must be base64") from exc
        facility = act(request, services.facility_register, record=record, public_key=raw)
        return Response(FacilitySerializer(facility).data, status=201)


class FacilityDetailView(ApiView):
    @extend_schema(
        operation_id="facilities_retrieve",
        summary="One facility",
        responses={200: FacilitySerializer, **PROBLEMS},
    )
    def get(self, request: Request, code: str) -> Response:
        return Response(FacilitySerializer(_facility(code)).data)


class FacilityChangesView(ApiView):
    @extend_schema(
        operation_id="facilities_change",
        summary="Change the tables a facility keeps (its operator's delegates, or the secretariat)",
        parameters=[IDEMPOTENCY],
        request=FacilityChangesSerializer,
        responses={200: FacilitySerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request, code: str) -> Response:
        body = FacilityChangesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        facility = act(
            request,
            services.facility_update,
            facility=_facility(code),
            changes=body.validated_data["changes"],
        )
        return Response(FacilitySerializer(facility).data)


class ImportView(ApiView):
    parser_classes = [RawBodyParser]
    max_body_setting = "SACCT_IMPORT_MAX_BYTES"

    @extend_schema(
        operation_id="facilities_import_sacct",
        summary="Import a SLURM accounting export (the facility's operator's delegates)",
        description=(
            "The body is `sacct --parsable2` (or `--parsable`) output. Recorded as one entry "
            "of aggregates with the export's SHA-256, attested when the facility's key is "
            "hosted. `dry_run=true` records nothing and answers what would be recorded."
        ),
        parameters=[
            IDEMPOTENCY,
            OpenApiParameter("fields", str, description="Field list for an export without header."),
            OpenApiParameter(
                "tz", str, description="Zone of the export's times (default: the facility's)."
            ),
            OpenApiParameter("dry_run", bool),
        ],
        request={"text/plain": OpenApiTypes.BINARY},
        responses={
            201: OpenApiTypes.OBJECT,
            200: OpenApiTypes.OBJECT,
            **WRITE_PROBLEMS,
            413: OpenApiResponse(description="Larger than SACCT_IMPORT_MAX_BYTES."),
        },
    )
    def post(self, request: Request, code: str) -> Response:
        query = ImportQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        q = query.validated_data
        facility = _facility(code)
        data = request.data if isinstance(request.data, bytes) else b""
        fields = q.get("fields")
        reading, rows, imported = act(
            request,
            services.sacct_import,
            facility=facility,
            data=data,
            fields=[f.strip() for f in fields.replace("|", ",").split(",")] if fields else None,
            tz=q.get("tz") or None,
            dry_run=q["dry_run"] == "true",
        )
        body = {
            "export_sha256": reading.sha256,
            "lines": reading.lines,
            "steps": reading.steps,
            "duplicates": reading.duplicates,
            "accounts": services.by_account(reading),
            "contributions": [
                {
                    "member": r["member"],
                    "accelerator": r["accelerator"],
                    "allocations": r["allocations"],
                    "gpu_hours": str(services.gpu_hours(r["gpu_seconds"])),
                }
                for r in rows
            ],
            "left_out": dict(sorted(reading.left_out_counts.items())),
            "unmapped_accounts": dict(sorted(reading.unmapped.items())),
            "left_out_examples": [
                {"line": x.line, "job": x.job, "reason": x.reason} for x in reading.left_out
            ],
            "import": None if imported is None else ImportSerializer(imported).data,
        }
        return Response(body, status=200 if imported is None else 201)


class ImportListView(ApiView):
    @extend_schema(
        operation_id="imports_list",
        summary="Accounting exports imported",
        parameters=[OpenApiParameter("facility", str)],
        responses={200: ImportSerializer(many=True), **PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        qs = SacctImport.objects.all()
        if request.query_params.get("facility"):
            qs = qs.filter(facility_id=request.query_params["facility"])
        return Response(ImportSerializer(qs, many=True).data)


class AttestationView(ApiView):
    @extend_schema(
        operation_id="imports_attest",
        summary="The facility attests a reported import (its operator's delegates, hosted key)",
        description="A facility holding its own key submits compute.attested to POST /api/v1/ledger/entries.",
        parameters=[IDEMPOTENCY],
        request=None,
        responses={200: ImportSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request, pk) -> Response:
        EmptyBody(data=request.data).is_valid(raise_exception=True)
        imported = SacctImport.objects.filter(id=pk).first()
        if imported is None:
            raise not_found(f"no import {pk}")
        imported = act(request, services.import_attest, sacct_import=imported)
        return Response(ImportSerializer(imported).data)


# --- contributions --------------------------------------------------------------------------------


class ContributionListView(ApiView):
    @extend_schema(
        operation_id="contributions_list",
        summary="Contributions: your member's (all of them for the secretariat and auditors)",
        parameters=[
            OpenApiParameter("member", str),
            OpenApiParameter("kind", str, enum=Contribution.Kind.values),
            OpenApiParameter("state", str, enum=[*Contribution.State.values, "disputed"]),
            OpenApiParameter("from", OpenApiTypes.DATE),
            OpenApiParameter("to", OpenApiTypes.DATE),
        ],
        responses={200: ContributionSerializer(many=True), 400: WRITE_PROBLEMS[400], **PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        qs = _visible_contributions(request)
        states = [*Contribution.State.values, "disputed"]
        for name, values in (("kind", Contribution.Kind.values), ("state", states)):
            value = request.query_params.get(name)
            if value:
                if value not in values:
                    raise bad_request(f"{name} must be one of {', '.join(values)}")
                # disputed: under an open dispute, whatever its state
                qs = qs.filter(disputed=True) if value == "disputed" else qs.filter(**{name: value})
        if request.query_params.get("member"):
            qs = qs.filter(member_id=request.query_params["member"])
        start, end = _day(request, "from"), _day(request, "to")
        if start:
            qs = qs.filter(delivered_on__gte=start)
        if end:
            qs = qs.filter(delivered_on__lte=end)
        return Response(ContributionSerializer(qs[:1000], many=True).data)


class DataContributionView(ApiView):
    @extend_schema(
        operation_id="contributions_data",
        summary="Record a dataset your member contributes (a recorder or signatory)",
        parameters=[IDEMPOTENCY],
        request=DataSerializer,
        responses={201: ContributionSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request) -> Response:
        body = DataSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        c = act(request, services.data_contribute, dataset=body.validated_data["dataset"])
        return Response(ContributionSerializer(c).data, status=201)


class FundsContributionView(ApiView):
    @extend_schema(
        operation_id="contributions_funds",
        summary="Record funds your member paid (a recorder or signatory)",
        parameters=[IDEMPOTENCY],
        request=FundsSerializer,
        responses={201: ContributionSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request) -> Response:
        body = FundsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        d = body.validated_data
        c = act(
            request,
            services.funds_contribute,
            amount=d["amount"],
            currency=d["currency"],
            date_paid=d["date"],
            reference=d["reference"],
        )
        return Response(ContributionSerializer(c).data, status=201)


class ConfirmationView(ApiView):
    @extend_schema(
        operation_id="contributions_confirm",
        summary="Confirm or reject a pending payment against the treasurer's books",
        description="The secretariat, or the member the treaty names as `treasurer` (its "
        "recorders and signatories; never for its own payments, which the secretariat "
        "confirms). Confirmed funds count with the amount, currency and day confirmed.",
        parameters=[IDEMPOTENCY],
        request=ConfirmationSerializer,
        responses={200: ContributionSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request, pk) -> Response:
        body = ConfirmationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        d = body.validated_data
        contribution = _contribution(request, pk)
        if d["outcome"] == "rejected":
            if set(d) & {"amount", "currency", "date"}:
                raise bad_request("a rejection gives a reason, not an amount, currency or date")
            if not d.get("reason"):
                raise bad_request("reason: say why the payment is rejected")
            c = act(request, services.funds_reject, contribution=contribution, reason=d["reason"])
        else:
            if "reason" in d:
                raise bad_request("a confirmation gives the amount, currency and date, no reason")
            c = act(
                request,
                services.funds_confirm,
                contribution=contribution,
                amount=d.get("amount"),
                currency=d.get("currency"),
                date_paid=d.get("date"),
            )
        return Response(ContributionSerializer(c).data)


class DisputeView(ApiView):
    @extend_schema(
        operation_id="contributions_dispute",
        summary="Dispute a contribution (a signatory of a member bound with it by an agreement "
        "in force that shares cost): it counts until the dispute is upheld",
        parameters=[IDEMPOTENCY],
        request=DisputeCreateSerializer,
        responses={201: DisputeSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request, pk) -> Response:
        body = DisputeCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        d = act(
            request,
            services.contribution_dispute,
            contribution=_contribution(request, pk),
            reason=body.validated_data["reason"],
        )
        return Response(DisputeSerializer(d).data, status=201)


class ResolutionView(ApiView):
    @extend_schema(
        operation_id="disputes_resolve",
        summary="Resolve a dispute (the secretariat): upheld voids the contribution",
        parameters=[IDEMPOTENCY],
        request=ResolutionSerializer,
        responses={200: DisputeSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request, pk) -> Response:
        body = ResolutionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dispute = Dispute.objects.filter(id=pk).first()
        if dispute is None:
            raise not_found(f"no dispute {pk}")
        d = act(request, services.dispute_resolve, dispute=dispute, **body.validated_data)
        return Response(DisputeSerializer(d).data)


class ValuationTableListView(ApiView):
    @extend_schema(
        operation_id="valuation_tables_list",
        summary="Valuation tables adopted by vote",
        responses={200: ValuationTableSerializer(many=True), **PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        return Response(ValuationTableSerializer(ValuationTable.objects.all(), many=True).data)


class CostShareView(ApiView):
    @extend_schema(
        operation_id="agreements_cost_shares",
        summary="The cost-share report of an agreement: value delivered against each share",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE),
            OpenApiParameter("to", OpenApiTypes.DATE),
            OpenApiParameter("output", str, enum=["json", "csv"]),
        ],
        responses={
            200: OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiTypes.STR,
            400: WRITE_PROBLEMS[400],
            409: OpenApiResponse(description="No cost sharing."),
            **PROBLEMS,
        },
    )
    def get(self, request: Request, pk):
        agreement = agreements.visible_agreements(request.user).filter(id=pk).first()
        if agreement is None:
            raise not_found(f"no agreement {pk}")
        fmt = request.query_params.get("output", "json")
        if fmt not in ("json", "csv"):
            raise bad_request("output is json or csv")
        try:
            report = cost_share_report(agreement, _day(request, "from"), _day(request, "to"))
        except ReportError as exc:
            raise ProblemException(409, str(exc)) from exc
        if fmt == "json":
            return Response(report.as_dict())
        out = io.StringIO()
        csv.writer(out).writerows(report.csv_rows())
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="cost-shares-{agreement.id}.csv"'
        return response
