"""The schema of an agreement's structured terms, checked field by field.

Terms are a JSON object; every error names the field it is about
(``terms.cost_sharing.shares.NL: ...``). Decimals are strings, so that what was signed
is exact. The sections:

``parties`` (required)
    Member codes, each once.
``required`` (optional; default: every party)
    The parties whose signatures the agreement needs before it enters into force.
``effective`` (required)
    ``{"from": "YYYY-MM-DD", "until": "YYYY-MM-DD" | null}``: the agreement is in force
    from the start of ``from`` (UTC) until the end of ``until``.
``accounting_unit``
    ISO 4217 code the agreement keeps its accounts in.
``exchange_rates``
    ``{currency: rate}``: one unit of ``currency`` in the accounting unit, fixed by the terms.
``cost_sharing``
    How the fixed cost is shared among the parties:
    ``{"method": "scale", "shares": {party: fraction}}`` (fractions sum to 1),
    ``{"method": "figure", "figure": name, "cap": fraction}`` (in proportion to a member
    figure such as gni, no party above ``cap``), or
    ``{"method": "pledged", "pledges": {party: amount in the accounting unit}}``.
``valuation``
    ``{"version": n, "unit": str, "weights": {accelerator type: weight}, "unit_price":
    {amount, currency}, "data_price": {amount, currency, per_tokens}}``: reference
    accelerator-hours per hour of each accelerator type, and (optionally) what a
    reference unit and a dataset's tokens are worth.
``access``
    ``[{"scope": "full_weights" | "inference_only" | "evaluation", "tier": str,
    "min_balance_ratio": decimal (optional), "embargo_days": int (optional)}]``
``data_use``
    ``{"permission": DUO permission, "modifiers": [DUO modifiers],
    "residency": ISO 3166-1 alpha-2 (optional),
    "access_mode": "transferred" | "federated" | "remote"}``: each term its plain code,
    or, for a term DUO couples with a value, an object holding it
    (``{"code": "DUO:0000007", "disease": "MONDO:0005015"}``; ``DUO_PARAMETERS``).
``release``
    ``{"requires_proposal": bool, "requires_evaluation": bool}``: what a checkpoint
    release under this agreement needs.
``balance_thresholds``
    ``{"behind": "1.0", "critical": "0.4"}``: a member whose delivered/obligation ratio is
    under ``behind`` is behind its share, under ``critical`` critically behind.
``treasurer``
    ``"secretariat"`` (the default) or a party's member code: who confirms the parties'
    payments against its books before they count (a treaty's; the secretariat confirms
    the treasurer's own).

Which sections a kind of agreement needs is ``REQUIRED_BY_KIND``.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

import pycountry

from consortium.governance.changes import GovernanceError
from consortium.governance.validators import COUNTRY_RE, DECIMAL_RE, TAG_RE

# GA4GH Data Use Ontology (DUO): the data use permissions and the modifiers.
DUO_PERMISSIONS = {
    "DUO:0000004": "no restriction",
    "DUO:0000042": "general research use",
    "DUO:0000006": "health or medical or biomedical research",
    "DUO:0000007": "disease specific research",
    "DUO:0000011": "population origins or ancestry research only",
}
DUO_MODIFIERS = {
    "DUO:0000012": "research specific restrictions",
    "DUO:0000015": "no general methods research",
    "DUO:0000016": "genetic studies only",
    "DUO:0000018": "not for profit, non commercial use only",
    "DUO:0000019": "publication required",
    "DUO:0000020": "collaboration required",
    "DUO:0000021": "ethics approval required",
    "DUO:0000022": "geographical restriction",
    "DUO:0000024": "publication moratorium",
    "DUO:0000025": "time limit on use",
    "DUO:0000026": "user specific restriction",
    "DUO:0000027": "project specific restriction",
    "DUO:0000028": "institution specific restriction",
    "DUO:0000029": "return to database or resource",
    "DUO:0000043": "clinical care use",
    "DUO:0000044": "population origins or ancestry research prohibited",
    "DUO:0000045": "not for profit organisation use only",
    "DUO:0000046": "non-commercial use only",
}
ACCESS_SCOPES = ("full_weights", "inference_only", "evaluation")
ACCESS_MODES = ("transferred", "federated", "remote")
SECTIONS = (
    "parties",
    "required",
    "effective",
    "accounting_unit",
    "exchange_rates",
    "cost_sharing",
    "valuation",
    "access",
    "data_use",
    "release",
    "balance_thresholds",
    "treasurer",
)
REQUIRED_BY_KIND = {
    "treaty": ("parties", "effective", "accounting_unit", "cost_sharing"),
    "data_sharing": ("parties", "effective", "data_use"),
    "compute_pledge": ("parties", "effective", "accounting_unit", "cost_sharing"),
    "model_licence": ("parties", "effective", "access"),
}
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")


def _fail(path: str, message: str):
    raise GovernanceError(f"{path}: {message}")


def _object(value, path: str, keys: set[str], optional: set[str] = frozenset()) -> dict:
    if not isinstance(value, dict):
        _fail(path, "must be an object")
    missing = keys - optional - set(value)
    unknown = set(value) - keys
    if missing:
        _fail(path, f"missing {', '.join(sorted(missing))}")
    if unknown:
        _fail(path, f"unknown field {', '.join(sorted(unknown))}")
    return value


def decimal_string(value, path: str, *, positive: bool = False, at_most: Decimal | None = None):
    """A decimal written as a string of digits ("0.25", "1200"): no sign, exponent or
    spaces, at most 18 digits before the point and 18 after, so sums are exact."""
    if not isinstance(value, str):
        _fail(path, 'must be a decimal written as a string, such as "0.25"')
    if not DECIMAL_RE.fullmatch(value):
        _fail(path, f"{value!r} is not a decimal number written as digits, such as 0.25")
    try:
        number = Decimal(value)
    except InvalidOperation:
        _fail(path, f"{value!r} is not a decimal number")
    if not number.is_finite() or number < 0 or (positive and number == 0):
        _fail(path, "must be a positive number" if positive else "must not be negative")
    if at_most is not None and number > at_most:
        _fail(path, f"must be at most {at_most}")
    return number


def parse_date(value, path: str) -> date:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        _fail(path, "must be a date, YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(path, f"{value} is not a calendar date")


def currency_code(value, path: str) -> str:
    if (
        not isinstance(value, str)
        or not _CURRENCY_RE.fullmatch(value)
        or pycountry.currencies.get(alpha_3=value) is None
    ):
        _fail(path, f"{value!r} is not an ISO 4217 currency code")
    return value


def _codes(value, path: str, known: set[str]) -> list[str]:
    if not isinstance(value, list) or not value:
        _fail(path, "must list at least one member code")
    if not all(isinstance(c, str) for c in value):
        _fail(path, "member codes are strings")
    if len(set(value)) != len(value):
        _fail(path, "names a member twice")
    unknown = [c for c in value if c not in known]
    if unknown:
        _fail(path, f"not members of the consortium: {', '.join(unknown)}")
    return value


def _party_map(value, path: str, parties: list[str]) -> dict:
    if not isinstance(value, dict):
        _fail(path, "must be an object keyed by party")
    if set(value) != set(parties):
        missing, extra = set(parties) - set(value), set(value) - set(parties)
        detail = []
        if missing:
            detail.append(f"missing {', '.join(sorted(missing))}")
        if extra:
            detail.append(f"not parties: {', '.join(sorted(extra))}")
        _fail(path, "must name every party, and only parties (" + "; ".join(detail) + ")")
    return value


def check_terms(kind: str, terms, members: set[str]) -> dict:
    """Check ``terms`` for an agreement of ``kind`` among ``members`` (member codes that
    may be parties). Returns them unchanged; raises :class:`GovernanceError`."""
    try:
        return _check_terms(kind, terms, members)
    except (TypeError, AttributeError, ValueError) as exc:
        # A value of a type no check expected: still the caller's error, never ours.
        raise GovernanceError(f"terms: malformed ({exc})") from exc


def _check_terms(kind: str, terms, members: set[str]) -> dict:
    if not isinstance(kind, str) or kind not in REQUIRED_BY_KIND:
        raise GovernanceError(f"kind must be one of {', '.join(REQUIRED_BY_KIND)}")
    terms = _object(terms, "terms", set(SECTIONS), set(SECTIONS) - set(REQUIRED_BY_KIND[kind]))
    parties = _codes(terms["parties"], "terms.parties", members)
    if "required" in terms:
        _codes(terms["required"], "terms.required", set(parties))
    _check_effective(terms["effective"])
    unit = terms.get("accounting_unit")
    if unit is not None:
        currency_code(unit, "terms.accounting_unit")
    if "exchange_rates" in terms:
        _check_exchange_rates(terms["exchange_rates"], unit)
    if "cost_sharing" in terms:
        _check_cost_sharing(terms["cost_sharing"], parties, unit)
    if "valuation" in terms:
        check_valuation(terms["valuation"], "terms.valuation")
    if "access" in terms:
        _check_access(terms["access"])
    if "data_use" in terms:
        check_data_use(terms["data_use"], "terms.data_use")
    if "balance_thresholds" in terms:
        _check_balance_thresholds(terms["balance_thresholds"])
    if "treasurer" in terms:
        treasurer = terms["treasurer"]
        if not isinstance(treasurer, str) or (
            treasurer != "secretariat" and treasurer not in parties
        ):
            _fail("terms.treasurer", 'must be "secretariat" or a party\'s member code')
    if "release" in terms:
        release = _object(
            terms["release"], "terms.release", {"requires_proposal", "requires_evaluation"}
        )
        for field, value in release.items():
            if not isinstance(value, bool):
                _fail(f"terms.release.{field}", "must be true or false")
    return terms


def _check_effective(value) -> None:
    effective = _object(value, "terms.effective", {"from", "until"})
    start = parse_date(effective["from"], "terms.effective.from")
    if effective["until"] is not None:
        until = parse_date(effective["until"], "terms.effective.until")
        if until < start:
            _fail("terms.effective.until", "comes before terms.effective.from")


def _check_exchange_rates(rates, unit: str | None) -> None:
    if unit is None:
        _fail("terms.exchange_rates", "needs terms.accounting_unit")
    if not isinstance(rates, dict):
        _fail("terms.exchange_rates", "must be an object {currency: rate}")
    for currency, rate in rates.items():
        currency_code(currency, f"terms.exchange_rates.{currency}")
        if currency == unit:
            _fail(f"terms.exchange_rates.{currency}", "is the accounting unit itself")
        decimal_string(rate, f"terms.exchange_rates.{currency}", positive=True)


def _check_balance_thresholds(value) -> None:
    t = _object(value, "terms.balance_thresholds", {"behind", "critical"})
    behind = decimal_string(t["behind"], "terms.balance_thresholds.behind", positive=True)
    critical = decimal_string(t["critical"], "terms.balance_thresholds.critical")
    if critical >= behind:
        _fail("terms.balance_thresholds.critical", "must be below behind")


def _check_cost_sharing(value, parties: list[str], unit: str | None) -> None:
    path = "terms.cost_sharing"
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("method"), str)
        or value["method"] not in ("scale", "figure", "pledged")
    ):
        _fail(f"{path}.method", "must be scale, figure or pledged")
    method = value["method"]
    if method == "scale":
        _object(value, path, {"method", "shares"})
        shares = _party_map(value["shares"], f"{path}.shares", parties)
        total = sum(
            decimal_string(v, f"{path}.shares.{k}", at_most=Decimal(1)) for k, v in shares.items()
        )
        if total != 1:
            _fail(f"{path}.shares", f"must add up to 1 (they add up to {total})")
    elif method == "figure":
        _object(value, path, {"method", "figure", "cap"}, {"cap"})
        if not isinstance(value["figure"], str) or not TAG_RE.fullmatch(value["figure"]):
            _fail(f"{path}.figure", "names a member figure, such as gni")
        if "cap" in value:
            cap = decimal_string(value["cap"], f"{path}.cap", positive=True, at_most=Decimal(1))
            if cap * len(parties) < 1:
                _fail(
                    f"{path}.cap", f"leaves part of the cost unshared among {len(parties)} parties"
                )
    else:
        _object(value, path, {"method", "pledges"})
        if unit is None:
            _fail(path, "pledged amounts need terms.accounting_unit")
        pledges = _party_map(value["pledges"], f"{path}.pledges", parties)
        for k, v in pledges.items():
            decimal_string(v, f"{path}.pledges.{k}")


def _price(value, path: str, *, per_tokens: bool = False) -> dict:
    fields = {"amount", "currency", "per_tokens"} if per_tokens else {"amount", "currency"}
    price = _object(value, path, fields)
    decimal_string(price["amount"], f"{path}.amount")
    currency_code(price["currency"], f"{path}.currency")
    if per_tokens:
        n = price["per_tokens"]
        if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= 10**12:
            _fail(f"{path}.per_tokens", "a whole number of tokens, such as 1000000")
    return price


def check_valuation(value, path: str) -> dict:
    """A valuation table: ``{"version", "unit", "weights": {accelerator: weight}}``, and
    optionally what a unit and a dataset's tokens are worth: ``"unit_price": {amount,
    currency}``, ``"data_price": {amount, currency, per_tokens}``."""
    table = _object(
        value,
        path,
        {"version", "unit", "weights", "unit_price", "data_price"},
        {"unit_price", "data_price"},
    )
    if "unit_price" in table:
        _price(table["unit_price"], f"{path}.unit_price")
    if "data_price" in table:
        _price(table["data_price"], f"{path}.data_price", per_tokens=True)
    version = table["version"]
    if isinstance(version, bool) or not isinstance(version, int) or not 0 < version < 2**31:
        _fail(f"{path}.version", "must be a positive integer (under 2^31)")
    if not isinstance(table["unit"], str) or not 0 < len(table["unit"]) <= 100:
        _fail(f"{path}.unit", "must name the reference unit (1-100 characters)")
    weights = table["weights"]
    if not isinstance(weights, dict) or not weights:
        _fail(f"{path}.weights", "must weigh at least one accelerator type")
    for accelerator, weight in weights.items():
        if not TAG_RE.fullmatch(accelerator):
            _fail(f"{path}.weights", f"{accelerator!r} is not an accelerator type (such as h100)")
        decimal_string(weight, f"{path}.weights.{accelerator}", positive=True)
    return table


def _check_access(value) -> None:
    if not isinstance(value, list) or not value:
        _fail("terms.access", "must list at least one access rule")
    seen = set()
    for i, rule in enumerate(value):
        path = f"terms.access[{i}]"
        _object(
            rule,
            path,
            {"scope", "tier", "min_balance_ratio", "embargo_days"},
            {"min_balance_ratio", "embargo_days"},
        )
        if not isinstance(rule["scope"], str) or rule["scope"] not in ACCESS_SCOPES:
            _fail(f"{path}.scope", f"must be one of {', '.join(ACCESS_SCOPES)}")
        if not isinstance(rule["tier"], str) or not TAG_RE.fullmatch(rule["tier"]):
            _fail(f"{path}.tier", "names a tier: lowercase letters, digits, _ . -")
        if (rule["scope"], rule["tier"]) in seen:
            _fail(path, f"a second rule for {rule['scope']} / {rule['tier']}")
        seen.add((rule["scope"], rule["tier"]))
        if "min_balance_ratio" in rule:
            decimal_string(rule["min_balance_ratio"], f"{path}.min_balance_ratio")
        days = rule.get("embargo_days", 0)
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3660:
            _fail(f"{path}.embargo_days", "must be a whole number of days, 0-3660")


def check_data_use(value, path: str, duo_path: str | None = None) -> dict:
    """GA4GH DUO data use: one permission and its modifiers, residency and access mode.
    A term that DUO couples with a value (``DUO_PARAMETERS``) is an object holding it,
    ``{"code": "DUO:0000022", "region": "EU"}``; every other term is its plain code.
    Errors about the terms name ``duo_path`` (default ``path``)."""
    duo_path = duo_path or path
    use = _object(
        value, path, {"permission", "modifiers", "residency", "access_mode"}, {"residency"}
    )
    _duo_term(use["permission"], f"{duo_path}.permission", DUO_PERMISSIONS, "permission")
    modifiers = use["modifiers"]
    if not isinstance(modifiers, list):
        _fail(f"{duo_path}.modifiers", "must be a list of DUO modifiers (it may be empty)")
    codes = [
        _duo_term(term, f"{duo_path}.modifiers[{i}]", DUO_MODIFIERS, "modifier")
        for i, term in enumerate(modifiers)
    ]
    if len(set(codes)) != len(codes):
        _fail(f"{duo_path}.modifiers", "names a modifier twice")
    residency = use.get("residency")
    if residency is not None and (
        not isinstance(residency, str)
        or not COUNTRY_RE.fullmatch(residency)
        or pycountry.countries.get(alpha_2=residency) is None
    ):
        _fail(f"{path}.residency", f"{residency!r} is not an ISO 3166-1 alpha-2 country code")
    if not isinstance(use["access_mode"], str) or use["access_mode"] not in ACCESS_MODES:
        _fail(f"{path}.access_mode", f"must be one of {', '.join(ACCESS_MODES)}")
    return use


def _duo_term(term, path: str, known: dict[str, str], what: str) -> str:
    """One DUO term: its plain code, or for a term DUO couples with a value, an object
    ``{"code", <parameter>}``. Returns the code."""
    code = term.get("code") if isinstance(term, dict) else term
    if not isinstance(code, str) or code not in known:
        _fail(path, f"{code!r} is not a DUO data use {what}")
    parameter = DUO_PARAMETERS.get(code)
    if parameter is None:
        if isinstance(term, dict):
            _fail(path, f"{code} ({known[code]}) takes no parameter: write the plain code {code!r}")
        return code
    name, check, example = parameter
    if not isinstance(term, dict) or name not in term:
        _fail(
            path,
            f"{code} ({known[code]}) needs its {name}: write "
            f'{{"code": "{code}", "{name}": {example}}}',
        )
    unknown = set(term) - {"code", name}
    if unknown:
        _fail(path, f"{code} takes only {name}, not {', '.join(sorted(unknown))}")
    check(term[name], f"{path}.{name}")
    return code


def _duo_text(value, path: str) -> None:
    if not isinstance(value, str) or not 0 < len(value.strip()) <= 200:
        _fail(path, "must be text of 1-200 characters")


def _duo_disease(value, path: str) -> None:
    if not isinstance(value, str) or not _MONDO_RE.fullmatch(value):
        _fail(path, f"{value!r} is not a MONDO disease id such as MONDO:0005015")


def _duo_region(value, path: str) -> None:
    regions = value if isinstance(value, list) else [value]
    if not regions or not all(
        isinstance(r, str)
        and (
            r in REGIONS
            or (COUNTRY_RE.fullmatch(r) and pycountry.countries.get(alpha_2=r) is not None)
        )
        for r in regions
    ):
        _fail(
            path,
            f"{value!r} is not a region: an ISO 3166-1 alpha-2 country code, "
            f"{' or '.join(sorted(REGIONS))}, or a list of those",
        )
    if len(set(regions)) != len(regions):
        _fail(path, "names a region twice")


def _duo_date(value, path: str) -> None:
    parse_date(value, path)


def _duo_months(value, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1200:
        _fail(path, "must be a whole number of months, 1-1200")


def _duo_users(value, path: str) -> None:
    if not isinstance(value, list) or not value:
        _fail(path, "must list the approved users' identifiers")
    for i, user in enumerate(value):
        _duo_text(user, f"{path}[{i}]")
    if len(set(value)) != len(value):
        _fail(path, "names a user twice")


# Groupings a geographical restriction may name besides countries.
REGIONS = {"EU": "the European Union", "EEA": "the European Economic Area"}
_MONDO_RE = re.compile(r"MONDO:[0-9]{7}")
# The DUO terms whose definition couples them with a value: the value's name in the
# term's object, its check, and an example for messages.
DUO_PARAMETERS = {
    "DUO:0000007": ("disease", _duo_disease, '"MONDO:0005015"'),
    "DUO:0000012": ("research_type", _duo_text, '"cancer genomics"'),
    "DUO:0000022": ("region", _duo_region, '"EU"'),
    "DUO:0000024": ("date", _duo_date, '"2027-06-30"'),
    "DUO:0000025": ("months", _duo_months, "24"),
    "DUO:0000026": ("users", _duo_users, '["orcid:0000-0002-1825-0097"]'),
    "DUO:0000027": ("project", _duo_text, '"NordicLM-2"'),
    "DUO:0000028": ("institution", _duo_text, '"https://ror.org/040af2s02"'),
}


def required_parties(terms: dict) -> list[str]:
    return terms.get("required", terms["parties"])
