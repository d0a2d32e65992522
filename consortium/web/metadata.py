"""What OPTIONS answers for every view of the API."""

from __future__ import annotations

from rest_framework.metadata import SimpleMetadata


class Metadata(SimpleMetadata):
    """The view's name and media types. The bodies the writes take are the OpenAPI
    schema's to describe: a viewset's serializer is what it answers, not what an action
    takes."""

    def determine_actions(self, request, view) -> dict:
        return {}
