"""Shapes of the ledger API: query parameters in, documents out."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers

from ledger.api.fields import AsciiIntegerField
from ledger.core.envelope import MAX_SAFE_INTEGER
from ledger.models import Entry, Key


class StrictSerializer(serializers.Serializer):
    """A request body that names only the fields it declares: any other field is a 400
    naming it, never silently dropped (a vote sent with ``"member": "NL"`` must not be
    recorded as the caller's own member's vote as if the field had not been there).

    Every write endpoint's body is one of these; a body-less write takes
    :class:`EmptyBody`, which refuses any field. A text field takes a JSON string, not a
    number that DRF would turn into one (``{"reason": 0}`` is a 400, as the schema says).
    """

    def to_internal_value(self, data):
        unknown, errors = [], {}
        if isinstance(data, Mapping):
            known = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(k)[:100] for k in data if k not in known)
            for name, field in self.fields.items():
                value = data.get(name)
                if _is_text(field) and value is not None and not isinstance(value, str):
                    errors[name] = ["must be a string"]
        if errors:
            raise serializers.ValidationError({**self._unknown_errors(unknown), **errors})
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not unknown or not isinstance(exc.detail, dict):
                raise
            raise serializers.ValidationError(
                {**self._unknown_errors(unknown), **exc.detail}
            ) from exc
        if unknown:
            raise serializers.ValidationError(self._unknown_errors(unknown))
        return value

    def _unknown_errors(self, unknown: list[str]) -> dict:
        known = [n for n, f in self.fields.items() if not f.read_only]
        takes = f"this request takes {', '.join(known)}" if known else "this request takes no body"
        return {name: [f"unknown field ({takes})"] for name in unknown}


def _is_text(field) -> bool:
    return isinstance(field, serializers.CharField | serializers.ChoiceField) and not isinstance(
        field, serializers.JSONField
    )


class EmptyBody(StrictSerializer):
    """The body of a write that takes none: absent, or ``{}``."""


class ProblemSerializer(serializers.Serializer):
    """An RFC 9457 problem details document."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    errors = serializers.DictField(required=False)


class EntrySubmissionSerializer(StrictSerializer):
    """An envelope its author signed with its own (external) key."""

    envelope = serializers.JSONField(
        help_text="The envelope: author, id, kind, payload, time (see docs/ledger-format.md)."
    )
    signature = serializers.CharField(
        help_text="Base64 Ed25519 signature over the context string and the canonical envelope."
    )


class EntriesQuery(serializers.Serializer):
    """The ledger's cursor over its entries (``ledger.api.pagination``)."""

    after = AsciiIntegerField(
        required=False,
        default=-1,
        min_value=-1,
        max_value=MAX_SAFE_INTEGER,
        help_text="Return entries with an index greater than this (default: from the start).",
    )
    limit = AsciiIntegerField(
        required=False,
        default=100,
        min_value=1,
        max_value=1000,
        help_text="How many entries at most (1-1000, default 100).",
    )


class InclusionQuery(serializers.Serializer):
    index = AsciiIntegerField(min_value=0, max_value=MAX_SAFE_INTEGER)
    tree_size = AsciiIntegerField(min_value=1, max_value=MAX_SAFE_INTEGER)

    def validate(self, attrs):
        if attrs["index"] >= attrs["tree_size"]:
            raise serializers.ValidationError({"index": "must be smaller than tree_size"})
        return attrs


class ConsistencyQuery(serializers.Serializer):
    # "from" is a Python keyword, so the field is renamed in to_internal_value.
    old = AsciiIntegerField(min_value=1, max_value=MAX_SAFE_INTEGER)
    new = AsciiIntegerField(min_value=1, max_value=MAX_SAFE_INTEGER)

    def to_internal_value(self, data):
        renamed = {"old": data.get("from"), "new": data.get("to")}
        try:
            return super().to_internal_value(renamed)
        except serializers.ValidationError as exc:
            names = {"old": "from", "new": "to"}
            raise serializers.ValidationError(
                {names.get(k, k): v for k, v in exc.detail.items()}
            ) from exc

    def validate(self, attrs):
        if attrs["old"] > attrs["new"]:
            raise serializers.ValidationError({"from": "must not be greater than to"})
        return attrs


class EntrySerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="entry_id")
    time = serializers.CharField(source="envelope.time", help_text="As the author signed it.")
    integrated_time = serializers.CharField(source="document.integrated_time")
    payload = serializers.JSONField(source="envelope.payload")
    signature = serializers.CharField(source="signature_b64", help_text="Base64 Ed25519.")
    leaf = serializers.CharField(source="leaf_b64", help_text="Base64 of the exact leaf bytes.")
    leaf_hash = serializers.CharField(
        source="leaf_hash_b64", help_text="Base64 RFC 9162 leaf hash."
    )

    class Meta:
        model = Entry
        fields = [
            "index",
            "id",
            "kind",
            "author",
            "time",
            "integrated_time",
            "payload",
            "signature",
            "leaf",
            "leaf_hash",
        ]


class InclusionProofSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    proof = serializers.ListField(child=serializers.CharField(), help_text="Base64 hashes.")


class ConsistencyProofSerializer(serializers.Serializer):
    # Serialised with the keys "from" and "to" (see the view).
    from_ = serializers.IntegerField()
    to = serializers.IntegerField()
    proof = serializers.ListField(child=serializers.CharField(), help_text="Base64 hashes.")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class KeySerializer(serializers.ModelSerializer):
    public_key = serializers.CharField(source="public_key_b64")
    verifier_key = serializers.CharField(help_text="name+hex8+base64, for signed notes.")

    class Meta:
        model = Key
        fields = [
            "fingerprint",
            "public_key",
            "verifier_key",
            "kind",
            "owner",
            "custody",
            "name",
            "registered_in",
            "valid_from",
            "revoked_at",
        ]
