"""REST endpoints for facilities, contributions, imports, disputes, valuation tables and
the cost-share report.

A member's delegates see their own member's contributions; the secretariat and auditors
see every member's. The cost-share report (aggregates per member) is read by every seat
holder, like the agreements it reports on.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import django_filters
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from consortium.governance.agreements_api import RawBodyParser
from consortium.governance.api import act, public_key
from consortium.governance.models import ValuationTable
from consortium.governance.selectors import visible_agreements, visible_members_of
from consortium.web.filters import FilterSet, IsoDateFilter, choices
from consortium.web.idempotency import ApiView
from consortium.web.problems import ProblemException, bad_request, not_found
from consortium.web.viewsets import PROBLEMS, WRITE_PROBLEMS, ApiViewSet
from contributions.compute import import_attest, reading_summary, sacct_import
from contributions.data import data_contribute
from contributions.disputes import contribution_dispute, dispute_resolve
from contributions.facilities import facility_register, facility_update
from contributions.funds import funds_confirm, funds_contribute, funds_reject
from contributions.models import Contribution, Dispute, Facility, SacctImport
from contributions.report import ReportError, cost_share_report
from contributions.serializers import (
    ConfirmationSerializer,
    ContributionSerializer,
    DataSerializer,
    DisputeCreateSerializer,
    DisputeSerializer,
    FacilityChangesSerializer,
    FacilityCreateSerializer,
    FacilitySerializer,
    FundsSerializer,
    ImportQuery,
    ImportSerializer,
    ResolutionSerializer,
    ValuationTableSerializer,
)
from ledger.api.serializers import EmptyBody

# --- helpers ----------------------------------------------------------------------------------


def _day(request, name) -> date | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise bad_request(f"{name} is a date, YYYY-MM-DD") from exc


def _import_answer(reading, rows, imported) -> dict:
    """What an import (or its dry run) read, and what it recorded."""
    return {
        **reading_summary(reading, rows),
        "import": None if imported is None else ImportSerializer(imported).data,
    }


# --- facilities and imports ---------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(operation_id="facilities_list", summary="Facilities"),
    retrieve=extend_schema(
        operation_id="facilities_retrieve",
        summary="One facility",
        responses={200: FacilitySerializer, **PROBLEMS},
    ),
)
class FacilityViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Facility.objects.all()
    serializer_class = FacilitySerializer
    ordering = ("code",)
    lookup_field = "code"
    lookup_value_converter = "str"
    not_found = "no facility {code}"
    # The limit of the raw body of an import (RawBodyParser).
    max_body_setting = "SACCT_IMPORT_MAX_BYTES"

    @extend_schema(
        operation_id="facilities_register",
        summary="Register a facility and its key (the secretariat)",
        request=FacilityCreateSerializer,
        responses={201: FacilitySerializer, **WRITE_PROBLEMS},
    )
    def create(self, request: Request) -> Response:
        record = dict(self.validated(FacilityCreateSerializer))
        raw = public_key(record.pop("public_key", None))
        facility = act(request, facility_register, record=record, public_key=raw)
        return Response(FacilitySerializer(facility).data, status=201)

    @extend_schema(
        operation_id="facilities_change",
        summary="Change the tables a facility keeps (its operator's delegates, or the secretariat)",
        request=FacilityChangesSerializer,
        responses={200: FacilitySerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def changes(self, request: Request, code: str) -> Response:
        changes = self.validated(FacilityChangesSerializer)["changes"]
        facility = act(request, facility_update, facility=self.get_object(), changes=changes)
        return Response(FacilitySerializer(facility).data)

    @extend_schema(
        operation_id="facilities_import_sacct",
        summary="Import a SLURM accounting export (the facility's operator's delegates)",
        description=(
            "The body is `sacct --parsable2` (or `--parsable`) output. Recorded as one entry "
            "of aggregates with the export's SHA-256, attested when the facility's key is "
            "hosted. `dry_run=true` records nothing and answers what would be recorded."
        ),
        parameters=[
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
    @action(detail=True, methods=["post"], parser_classes=[RawBodyParser])
    def imports(self, request: Request, code: str) -> Response:
        q = self.validated(ImportQuery, request.query_params.dict())
        facility = self.get_object()
        fields = q.get("fields")
        reading, rows, imported = act(
            request,
            sacct_import,
            facility=facility,
            data=request.data if isinstance(request.data, bytes) else b"",
            fields=[f.strip() for f in fields.replace("|", ",").split(",")] if fields else None,
            tz=q.get("tz") or None,
            dry_run=q["dry_run"] == "true",
        )
        return Response(
            _import_answer(reading, rows, imported), status=200 if imported is None else 201
        )


class ImportFilter(FilterSet):
    facility = django_filters.CharFilter()


@extend_schema_view(
    list=extend_schema(operation_id="imports_list", summary="Accounting exports imported")
)
class ImportViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = SacctImport.objects.all()
    serializer_class = ImportSerializer
    filterset_class = ImportFilter
    ordering = ("-recorded_in", "id")
    lookup_value_converter = "uuid"
    not_found = "no import {pk}"

    @extend_schema(
        operation_id="imports_attest",
        summary="The facility attests a reported import (its operator's delegates, hosted key)",
        description="A facility holding its own key submits compute.attested to POST /api/v1/ledger/entries.",
        request=None,
        responses={200: ImportSerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def attestation(self, request: Request, pk) -> Response:
        self.validated(EmptyBody)
        imported = act(request, import_attest, sacct_import=self.get_object())
        return Response(ImportSerializer(imported).data)


# --- contributions and disputes ------------------------------------------------------------------


class ContributionFilter(FilterSet):
    member = django_filters.CharFilter()
    kind = django_filters.ChoiceFilter(choices=Contribution.Kind.choices)
    state = django_filters.ChoiceFilter(
        choices=choices([*Contribution.State.values, "disputed"]), method="in_state"
    )
    from_ = IsoDateFilter(field_name="delivered_on", lookup_expr="gte")
    to = IsoDateFilter(field_name="delivered_on", lookup_expr="lte")

    def in_state(self, queryset, name, value):
        # disputed: under an open dispute, whatever its state
        return (
            queryset.filter(disputed=True) if value == "disputed" else queryset.filter(state=value)
        )


@extend_schema_view(
    list=extend_schema(
        operation_id="contributions_list",
        summary="Contributions: your member's (all of them for the secretariat and auditors)",
    )
)
class ContributionViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = Contribution.objects.all()
    serializer_class = ContributionSerializer
    filterset_class = ContributionFilter
    ordering = ("-recorded_in", "id")
    lookup_value_converter = "uuid"
    not_found = "no contribution {pk}"

    def visible(self, queryset):
        if self.action != "list":
            # Disputing or confirming needs only the contribution's id: a member may
            # dispute another's, or confirm it as treasurer, which it reads on the ledger,
            # without reading the others' private list.
            return queryset
        members = visible_members_of(self.request.user)
        return queryset if members is None else queryset.filter(member__in=members)

    @extend_schema(
        operation_id="contributions_data",
        summary="Record a dataset your member contributes (a recorder or signatory)",
        request=DataSerializer,
        responses={201: ContributionSerializer, **WRITE_PROBLEMS},
    )
    @action(detail=False, methods=["post"])
    def data(self, request: Request) -> Response:
        dataset = self.validated(DataSerializer)["dataset"]
        c = act(request, data_contribute, dataset=dataset)
        return Response(ContributionSerializer(c).data, status=201)

    @extend_schema(
        operation_id="contributions_funds",
        summary="Record funds your member paid (a recorder or signatory)",
        request=FundsSerializer,
        responses={201: ContributionSerializer, **WRITE_PROBLEMS},
    )
    @action(detail=False, methods=["post"])
    def funds(self, request: Request) -> Response:
        d = self.validated(FundsSerializer)
        c = act(
            request,
            funds_contribute,
            amount=d["amount"],
            currency=d["currency"],
            date_paid=d["date"],
            reference=d["reference"],
        )
        return Response(ContributionSerializer(c).data, status=201)

    @extend_schema(
        operation_id="contributions_confirm",
        summary="Confirm or reject a pending payment against the treasurer's books",
        description="The secretariat, or the member the treaty names as `treasurer` (its "
        "recorders and signatories; never for its own payments, which the secretariat "
        "confirms). Confirmed funds count with the amount, currency and day confirmed.",
        request=ConfirmationSerializer,
        responses={200: ContributionSerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def confirmation(self, request: Request, pk) -> Response:
        d = self.validated(ConfirmationSerializer)
        contribution = self.get_object()
        if d["outcome"] == "rejected":
            if set(d) & {"amount", "currency", "date"}:
                raise bad_request("a rejection gives a reason, not an amount, currency or date")
            if not d.get("reason"):
                raise bad_request("reason: say why the payment is rejected")
            c = act(request, funds_reject, contribution=contribution, reason=d["reason"])
        else:
            if "reason" in d:
                raise bad_request("a confirmation gives the amount, currency and date, no reason")
            c = act(
                request,
                funds_confirm,
                contribution=contribution,
                amount=d.get("amount"),
                currency=d.get("currency"),
                date_paid=d.get("date"),
            )
        return Response(ContributionSerializer(c).data)

    @extend_schema(
        operation_id="contributions_dispute",
        summary="Dispute a contribution (a signatory of a member bound with it by an agreement "
        "in force that shares cost): it counts until the dispute is upheld",
        request=DisputeCreateSerializer,
        responses={201: DisputeSerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def disputes(self, request: Request, pk) -> Response:
        reason = self.validated(DisputeCreateSerializer)["reason"]
        d = act(request, contribution_dispute, contribution=self.get_object(), reason=reason)
        return Response(DisputeSerializer(d).data, status=201)


class DisputeViewSet(ApiViewSet):
    queryset = Dispute.objects.all()
    serializer_class = DisputeSerializer
    lookup_value_converter = "uuid"
    not_found = "no dispute {pk}"

    @extend_schema(
        operation_id="disputes_resolve",
        summary="Resolve a dispute (the secretariat): upheld voids the contribution",
        request=ResolutionSerializer,
        responses={200: DisputeSerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def resolution(self, request: Request, pk) -> Response:
        d = self.validated(ResolutionSerializer)
        dispute = act(request, dispute_resolve, dispute=self.get_object(), **d)
        return Response(DisputeSerializer(dispute).data)


# --- valuation and the cost-share report ----------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        operation_id="valuation_tables_list", summary="Valuation tables adopted by vote"
    )
)
class ValuationTableViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = ValuationTable.objects.all()
    serializer_class = ValuationTableSerializer
    ordering = ("-version",)


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
        agreement = visible_agreements(request.user).filter(id=pk).first()
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
