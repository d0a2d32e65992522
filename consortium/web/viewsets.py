"""The base of the API's resources, and what every operation's schema says.

Each resource is a viewset on :class:`ApiViewSet`: DRF's generic views (a queryset per
caller, django-filter's ``FilterSet`` and cursor pagination for each list, settings
``DEFAULT_FILTER_BACKENDS`` and ``DEFAULT_PAGINATION_CLASS``), with :class:`ApiView`'s
idempotent POSTs and problem+json errors. Reads are ``list`` and ``retrieve``; each write
is an action whose explicit input serializer refuses unknown fields, and which calls the
service that makes the change.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import generics, routers, viewsets

from consortium.web.idempotency import HEADER, ApiView
from consortium.web.problems import not_found
from ledger.api.serializers import ProblemSerializer

IDEMPOTENCY = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Makes a retry safe: the same key returns what the first request did.",
)
PROBLEMS = {
    401: OpenApiResponse(ProblemSerializer, description="Not authenticated (problem+json)."),
    404: OpenApiResponse(ProblemSerializer, description="Not found (problem+json)."),
}
WRITE_PROBLEMS = {
    400: OpenApiResponse(ProblemSerializer, description="Bad request (problem+json)."),
    401: PROBLEMS[401],
    403: OpenApiResponse(ProblemSerializer, description="Not allowed (problem+json)."),
    404: PROBLEMS[404],
    409: OpenApiResponse(ProblemSerializer, description="Conflict (problem+json)."),
    413: OpenApiResponse(
        ProblemSerializer,
        description=(
            "Body too large, or an entry it would make over the 65,535 bytes a ledger "
            "leaf may hold (problem+json)."
        ),
    ),
}
LIST_PROBLEMS = {400: WRITE_PROBLEMS[400], 401: PROBLEMS[401]}


class ApiSchema(AutoSchema):
    """Every POST of an :class:`ApiView` takes an ``Idempotency-Key``, and says so."""

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if self.method == "POST" and isinstance(self.view, ApiView):
            parameters = [*parameters, IDEMPOTENCY]
        return parameters


class ApiViewSet(viewsets.ViewSetMixin, ApiView, generics.GenericAPIView):
    """A resource of the API (see the module): its ``queryset``, of which the caller sees
    what :meth:`visible` keeps. ``not_found`` is the detail of the 404 for an object not
    found, formatted with the URL's parameters (``"no member {code}"``)."""

    not_found = "not found"

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset  # the schema generator's view: there is no caller
        return self.visible(queryset)

    def visible(self, queryset):
        """What the caller may see of ``queryset`` (for this action): all of it unless the
        resource says otherwise."""
        return queryset

    def get_object(self, value=None):
        """The object the URL names (or ``value`` names), among those the caller may see;
        the list's filters do not apply to it."""
        lookup = self.lookup_url_kwarg or self.lookup_field
        value = self.kwargs[lookup] if value is None else value
        found = self.get_queryset().filter(**{self.lookup_field: value}).first()
        if found is None:
            raise not_found(self.not_found.format(**{**self.kwargs, lookup: value}))
        self.check_object_permissions(self.request, found)
        return found

    def validated(self, serializer_class, data=None) -> dict:
        """The request's body (or ``data``, its query), checked by ``serializer_class``."""
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class ApiRouter(routers.SimpleRouter):
    """The URLs of viewsets, as the API writes them: no trailing slash, and each lookup
    through its viewset's path converter (``lookup_value_converter``)."""

    def __init__(self):
        super().__init__(trailing_slash=False, use_regex_path=False)
