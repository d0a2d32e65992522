"""An agreement in words: its parties and their signatures, the period, cost sharing,
accounting, access, and the data-use terms, each DUO code with its label and meaning."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pycountry
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consortium.governance.in_words.people import (
    day,
    key_label,
    member_names,
    number,
    percent,
    when,
)
from consortium.governance.models import Agreement, Member
from consortium.governance.selectors import SIGNABLE_STATES, acting_for
from consortium.governance.terms import DUO_MODIFIERS, DUO_PARAMETERS, DUO_PERMISSIONS, REGIONS

# The GA4GH Data Use Ontology terms this project accepts (``terms.DUO_PERMISSIONS`` and
# ``DUO_MODIFIERS`` hold their official labels), each with a one-line meaning taken
# from the term's DUO definition, for the person who signs.
DUO_MEANINGS = {
    "DUO:0000004": gettext_lazy("The data may be used for any purpose, without restriction."),
    "DUO:0000042": gettext_lazy("The data may be used for any research purpose."),
    "DUO:0000006": gettext_lazy(
        "The data may be used for health, medical or biomedical research, not for the "
        "study of population origins or ancestry."
    ),
    "DUO:0000007": gettext_lazy("The data may be used only for research on the named disease."),
    "DUO:0000011": gettext_lazy(
        "The data may be used only for research on population origins or ancestry."
    ),
    "DUO:0000012": gettext_lazy("Use is limited to the named type of research."),
    "DUO:0000015": gettext_lazy(
        "The data may not be used to develop general methods (software, algorithms)."
    ),
    "DUO:0000016": gettext_lazy("Use is limited to genetic studies."),
    "DUO:0000018": gettext_lazy(
        "Use is limited to not-for-profit organisations and non-commercial purposes."
    ),
    "DUO:0000019": gettext_lazy(
        "The user must make the results available to the wider scientific community."
    ),
    "DUO:0000020": gettext_lazy("The user must collaborate with the study's investigators."),
    "DUO:0000021": gettext_lazy(
        "The user must show the approval of an ethics committee (IRB/ERB)."
    ),
    "DUO:0000022": gettext_lazy("Use is limited to the named geographical region."),
    "DUO:0000024": gettext_lazy("No results may be published before the named date."),
    "DUO:0000025": gettext_lazy("Use is approved for a limited time only."),
    "DUO:0000026": gettext_lazy("Use is limited to the approved users."),
    "DUO:0000027": gettext_lazy("Use is limited to the approved project."),
    "DUO:0000028": gettext_lazy("Use is limited to the approved institutions."),
    "DUO:0000029": gettext_lazy(
        "The user must return derived or enriched data to the database or resource."
    ),
    "DUO:0000043": gettext_lazy("The data may be used for clinical care and decision making."),
    "DUO:0000044": gettext_lazy(
        "The data may not be used for research on population origins or ancestry."
    ),
    "DUO:0000045": gettext_lazy("Use is limited to not-for-profit organisations."),
    "DUO:0000046": gettext_lazy("Use is limited to non-commercial purposes."),
}

ACCESS_SCOPE_WORDS = {
    "full_weights": gettext_lazy("the full model weights"),
    "inference_only": gettext_lazy("inference only"),
    "evaluation": gettext_lazy("evaluation only"),
}
ACCESS_MODE_WORDS = {
    "transferred": gettext_lazy("the data is transferred to the user"),
    "federated": gettext_lazy("the data stays with its holder (federated computation)"),
    "remote": gettext_lazy("the data is used remotely, in the holder's environment"),
}


@dataclass
class PartyLine:
    code: str
    name: str
    required: bool
    status: str  # "signed" | "withdrawn" | "not signed"
    signed_at: str = ""
    signed_in: int | None = None
    key: str = ""
    withdrawn_in: int | None = None
    withdrawal_reason: str = ""


@dataclass
class DuoLine:
    code: str
    label: str
    meaning: str
    detail: str = ""


@dataclass
class AgreementInWords:
    parties: list[PartyLine]
    effective: str
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    shares: list[tuple[str, str, str]] = field(default_factory=list)  # code, words, %
    permission: DuoLine | None = None
    modifiers: list[DuoLine] = field(default_factory=list)


def _duo_line(term, labels: dict[str, str]) -> DuoLine:
    code = term["code"] if isinstance(term, dict) else term
    detail = ""
    parameter = DUO_PARAMETERS.get(code)
    if parameter is not None and isinstance(term, dict):
        name = parameter[0]
        value = term.get(name)
        if name == "region":
            regions = value if isinstance(value, list) else [value]
            value = ", ".join(_region(r) for r in regions)
        elif name == "date":
            value = day(value)
        elif name == "months":
            value = _("%(n)s months") % {"n": value}
        elif isinstance(value, list):
            value = ", ".join(value)
        detail = f"{name.replace('_', ' ')}: {value}"
    return DuoLine(code, labels.get(code, code), str(DUO_MEANINGS.get(code, "")), detail)


def duo_in_words(duo: dict) -> tuple[DuoLine, list[DuoLine]]:
    """A data-use statement's permission and modifiers, each with its label and meaning."""
    return (
        _duo_line(duo["permission"], DUO_PERMISSIONS),
        [_duo_line(m, DUO_MODIFIERS) for m in duo.get("modifiers", [])],
    )


def _region(code: str) -> str:
    if code in REGIONS:
        return REGIONS[code]
    country = pycountry.countries.get(alpha_2=code)
    return country.name if country is not None else code


def agreement_in_words(agreement: Agreement) -> AgreementInWords:
    """The agreement's parties, signatures and terms, as people read them."""
    terms = agreement.terms
    names = member_names(terms["parties"])
    parties = []
    for p in agreement.parties.order_by("member_id"):
        line = PartyLine(p.member_id, names.get(p.member_id, p.member_id), p.required, "")
        if p.withdrawn_in is not None:
            line.status, line.withdrawn_in = "withdrawn", p.withdrawn_in
            line.withdrawal_reason = p.withdrawal_reason
        elif p.signed_in is not None:
            line.status, line.signed_in = "signed", p.signed_in
            line.signed_at, line.key = when(p.signed_at), key_label(p.signed_by)
        else:
            line.status = "not signed"
        parties.append(line)
    eff = terms["effective"]
    if eff["until"]:
        effective = _("from %(start)s to %(end)s inclusive (UTC)") % {
            "start": day(eff["from"]),
            "end": day(eff["until"]),
        }
    else:
        effective = _("from %(start)s (UTC), with no end date") % {"start": day(eff["from"])}
    words = AgreementInWords(parties=parties, effective=effective)
    unit = terms.get("accounting_unit")
    if "cost_sharing" in terms:
        words.shares = _shares(terms, names, unit)
    money = []
    if unit:
        money.append(_("Accounts are kept in %(unit)s.") % {"unit": _currency(unit)})
    for currency, rate in sorted(terms.get("exchange_rates", {}).items()):
        money.append(
            _("1 %(currency)s counts as %(rate)s %(unit)s.")
            % {"currency": currency, "rate": number(rate), "unit": unit}
        )
    if "treasurer" in terms:
        who = terms["treasurer"]
        money.append(
            _("Payments are confirmed by %(who)s.")
            % {"who": _("the secretariat") if who == "secretariat" else names.get(who, who)}
        )
    if "balance_thresholds" in terms:
        t = terms["balance_thresholds"]
        money.append(
            _(
                "A party that has delivered less than %(behind)s of its share is behind; "
                "under %(critical)s, critically behind."
            )
            % {"behind": percent(t["behind"]), "critical": percent(t["critical"])}
        )
    if money:
        words.sections.append((_("Accounting"), money))
    if "access" in terms:
        words.sections.append((_("Access to the models"), [_access(r) for r in terms["access"]]))
    if "release" in terms:
        r = terms["release"]
        words.sections.append(
            (
                _("Releasing a checkpoint"),
                [
                    _("needs an accepted proposal")
                    if r["requires_proposal"]
                    else _("needs no proposal"),
                    _("needs an evaluation")
                    if r["requires_evaluation"]
                    else _("needs no evaluation"),
                ],
            )
        )
    if "valuation" in terms:
        v = terms["valuation"]
        lines = [
            _("%(type)s: %(w)s %(unit)s per hour") % {"type": t, "w": number(w), "unit": v["unit"]}
            for t, w in sorted(v["weights"].items())
        ]
        words.sections.append((_("Valuation (version %(n)s)") % {"n": v["version"]}, lines))
    if "data_use" in terms:
        use = terms["data_use"]
        words.permission, words.modifiers = duo_in_words(use)
        lines = [str(ACCESS_MODE_WORDS.get(use["access_mode"], use["access_mode"]))]
        if use.get("residency"):
            lines.append(_("the data resides in %(c)s") % {"c": _region(use["residency"])})
        words.sections.append((_("How the data is used"), lines))
    return words


def _currency(code: str) -> str:
    currency = pycountry.currencies.get(alpha_3=code)
    return f"{currency.name} ({code})" if currency is not None else code


def _access(rule: dict) -> str:
    text = _("Tier %(tier)s: %(scope)s") % {
        "tier": rule["tier"],
        "scope": ACCESS_SCOPE_WORDS.get(rule["scope"], rule["scope"]),
    }
    if "min_balance_ratio" in rule:
        text += _(", for a member that has delivered at least %(r)s of its share") % {
            "r": percent(rule["min_balance_ratio"])
        }
    if rule.get("embargo_days"):
        text += _(", %(n)s days after a checkpoint is published") % {"n": rule["embargo_days"]}
    return text


def _shares(terms: dict, names: dict[str, str], unit: str | None) -> list[tuple[str, str, str]]:
    """(member, share in words, share in %) for each party."""
    sharing = terms["cost_sharing"]
    parties = terms["parties"]
    method = sharing["method"]
    if method == "scale":
        return [
            (
                names.get(c, c),
                _("pays %(p)s of the fixed cost") % {"p": percent(sharing["shares"][c])},
                percent(sharing["shares"][c]),
            )
            for c in parties
        ]
    if method == "pledged":
        total = sum((Decimal(sharing["pledges"][c]) for c in parties), Decimal(0))
        return [
            (
                names.get(c, c),
                _("pledges %(amount)s %(unit)s")
                % {"amount": number(sharing["pledges"][c]), "unit": unit},
                percent(Decimal(sharing["pledges"][c]) / total) if total else "-",
            )
            for c in parties
        ]
    # In proportion to a member figure: the figures as they stand today (the cost
    # shares page computes the shares, and the cap, over each period).
    figure = sharing["figure"]
    figures = dict(Member.objects.filter(code__in=parties).values_list("code", "figures"))
    values = {c: Decimal(str(figures.get(c, {}).get(figure, 0))) for c in parties}
    total = sum(values.values(), Decimal(0))
    cap = sharing.get("cap")
    rows = []
    for c in parties:
        words = _("in proportion to its %(figure)s (%(value)s)") % {
            "figure": figure,
            "value": number(values[c]),
        }
        if cap:
            words += _(", at most %(cap)s") % {"cap": percent(cap)}
        share = percent(values[c] / total) if total and not cap else "-"
        rows.append((names.get(c, c), words, share))
    return rows


def may_sign(user, agreement: Agreement) -> bool:
    """Whether ``user`` holds the signatory seat of a party that has not signed (nor
    withdrawn), while the agreement is open for signature."""
    member = acting_for(user)
    return (
        bool(member)
        and agreement.state in SIGNABLE_STATES
        and agreement.parties.filter(
            member_id=member, signed_in__isnull=True, withdrawn_in__isnull=True
        ).exists()
    )
