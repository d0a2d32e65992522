"""The interface in French: the catalogue is complete and compiled, and the pages a
delegate reads every day speak French (words, dates and numbers) when French is chosen,
in the header's form or by the browser.

Built from the published LUMI world: Sweden's signatory (sig_se) reads its dashboard, the
treaty in force, a proposal to suspend the Netherlands, its member's contributions and its
own security page. English stays the default (LANGUAGE_CODE en-gb)."""

from __future__ import annotations

import ast
import gettext
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from consortium.governance import proposals
from consortium.governance.models import Agreement
from tests import worlds
from tests.steps.signin import sign_in

lumi, checkpoint = (worlds.shared(n, world="published") for n in ("lumi", "checkpoint"))

MESSAGES = Path(settings.BASE_DIR) / "locale" / "fr" / "LC_MESSAGES"
PO, MO = MESSAGES / "django.po", MESSAGES / "django.mo"

# "5 déc. 2026, 14:03 UTC": Django's French month abbreviations, our day-month-year order.
FRENCH_MOMENT = re.compile(
    r"\b\d{1,2} (janv\.|févr\.|mars|avril|mai|juin|juil\.|août|sept\.|oct\.|nov\.|déc\.) "
    r"\d{4}, \d\d:\d\d UTC"
)
ENGLISH_MOMENT = re.compile(
    r"\b\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}, \d\d:\d\d UTC"
)


# --- the catalogue -------------------------------------------------------------------------


def read_po(path: Path) -> list[dict]:
    """The entries of a .po file: each a dict of its msgctxt, msgid, msgid_plural, msgstr
    or msgstr[n] (unquoted, continuation lines joined) and its flags."""
    entries, entry, key = [], None, None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if entry is not None:
                entries.append(entry)
            entry = None
            continue
        if entry is None:
            entry = {"flags": set()}
        if line.startswith("#,"):
            entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            entry[key] += ast.literal_eval(line)
        else:
            key, _, text = line.partition(" ")
            entry[key] = ast.literal_eval(text)
    return entries


def catalogue(mo: Path) -> dict:
    """A compiled catalogue's messages, without its header."""
    with mo.open("rb") as f:
        messages = gettext.GNUTranslations(f)._catalog
    return {k: v for k, v in messages.items() if k != ""}


def test_every_message_of_the_french_catalogue_is_translated():
    entries = read_po(PO)
    header, messages = entries[0], entries[1:]
    assert header["msgid"] == "" and "fuzzy" not in header["flags"]
    assert "Plural-Forms: nplurals=2; plural=(n > 1);" in header["msgstr"]
    assert len(messages) > 500
    for e in messages:
        assert "fuzzy" not in e["flags"], e["msgid"]
        if "msgid_plural" in e:
            assert e["msgstr[0]"] and e["msgstr[1]"], e["msgid"]
        else:
            assert e["msgstr"], e["msgid"]
        # Every placeholder of the English is in the French, and no other.
        source = e["msgid"] + e.get("msgid_plural", "")
        for text in [v for k, v in e.items() if k.startswith("msgstr")]:
            assert set(re.findall(r"%\(\w+\)[sd]", text)) <= set(
                re.findall(r"%\(\w+\)[sd]", source)
            ), e["msgid"]
        if "python-format" in e["flags"] and "msgid_plural" not in e:
            assert sorted(re.findall(r"%\(\w+\)[sd]", e["msgid"])) == sorted(
                re.findall(r"%\(\w+\)[sd]", e["msgstr"])
            ), e["msgid"]


def test_the_compiled_catalogue_holds_what_the_po_says(tmp_path):
    """The .mo shipped (a machine without gettext shows French from it) says what the .po
    says: compiled again here, the two catalogues are the same."""
    if shutil.which("msgfmt") is None:
        assert not os.environ.get("CI"), "CI installs gettext: msgfmt must be there"
        pytest.skip("msgfmt (gettext) is not installed here, so the .po cannot be compiled")
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check-format", "-o", str(fresh), str(PO)], check=True)
    assert catalogue(MO) == catalogue(fresh)


def test_the_compiled_catalogue_answers_in_french():
    with MO.open("rb") as f:
        french = gettext.GNUTranslations(f)
    assert french.gettext("Dashboard") == "Tableau de bord"
    assert french.ngettext("%(n)s alarm", "%(n)s alarms", 1) == "%(n)s alerte"
    assert french.ngettext("%(n)s alarm", "%(n)s alarms", 2) == "%(n)s alertes"


# --- the pages -------------------------------------------------------------------------------


def in_french(client, who):
    """``who`` signed in, with a browser that asks for French first."""
    sign_in(client, who)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "fr-FR,fr;q=0.9,en;q=0.5"
    return client


def get(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_the_dashboard_speaks_french_with_french_dates(client, lumi, checkpoint):
    page = get(in_french(client, lumi["people"]["sig_se"]), "/admin/")
    assert '<html lang="fr"' in page
    for french in (
        "Tableau de bord",
        "Contributions au regard de votre quote-part",
        "Points de contrôle de modèles que vous pouvez télécharger",
        "Dernières entrées du registre concernant votre membre",
        "Vos jetons d'API",
        "Registre du consortium",
    ):
        assert french in page.replace("&#x27;", "'"), french
    for english in (
        "Contributions against your share",
        "Model checkpoints you may download",
        "Latest ledger entries about your member",
        "Cost-share reports",
        "System of record",
    ):
        assert english not in page, english
    # The latest entries' times, as French people write them; none the English way.
    assert FRENCH_MOMENT.search(page)
    assert not ENGLISH_MOMENT.search(page)


def test_the_same_dashboard_stays_english_by_default(client, lumi, checkpoint):
    page = get(sign_in(client, lumi["people"]["sig_se"]), "/admin/")
    assert "Contributions against your share" in page and "Tableau de bord" not in page
    assert ENGLISH_MOMENT.search(page) and not FRENCH_MOMENT.search(page)


def test_the_treaty_reads_in_french(client, lumi, checkpoint):
    treaty = Agreement.objects.get(kind="treaty", state="in_force")
    page = get(
        in_french(client, lumi["people"]["sig_se"]),
        f"/admin/consortium/agreement/{treaty.pk}/change/",
    )
    page = page.replace("&#x27;", "'")
    for french in ("Parties", "Période d'effet", "Le document", "Au registre", "en vigueur"):
        assert french in page, french
    # The cost shares in words, from in_words: "pays 30% of the fixed cost" in English.
    assert "du coût fixe" in page or "au prorata" in page or "s'engage à fournir" in page
    for english in ("Effective period", "The document", "On the ledger", "in force"):
        assert english not in page, english


def test_a_proposal_reads_in_french(client, lumi, checkpoint):
    ops = lumi["people"]["ops"]
    p = proposals.proposal_open(
        actor=ops,
        title="Suspend the Netherlands",
        deadline=datetime.now(UTC) + timedelta(days=2),
        actions=[{"type": "member.suspend", "code": "NL"}],
    )
    page = get(
        in_french(client, lumi["people"]["sig_se"]), f"/admin/consortium/proposal/{p.id}/change/"
    )
    page = page.replace("&#x27;", "'")
    for french in (
        "Effets en cas d'acceptation",
        "La règle",
        "Le décompte à ce stade",
        "pas encore",
        "Majorité simple",
        "expirée : pas de quorum",  # if nobody votes
        "Voter pour SE :",
    ):
        assert french in page, french
    for english in ("What it does if accepted", "The tally so far", "not yet", "Simple majority"):
        assert english not in page, english
    # The deadline, and what is left of it, the French way.
    assert FRENCH_MOMENT.search(page) and re.search(r"\d+ j \d+ h restants", page)


def test_the_contributions_and_the_cost_shares_read_in_french(client, lumi, checkpoint):
    client = in_french(client, lumi["people"]["sig_se"])
    page = get(client, "/admin/contributions/contribution/")
    # Django's own words (the admin's) and ours: the states in the filter, the app's name.
    assert "Sélectionnez l\u2019objet contribution à afficher" in page
    assert ">comptabilisée</a>" in page and ">counted</a>" not in page
    assert "Registre du consortium" in page and "Consortium ledger" not in page
    treaty = Agreement.objects.get(kind="treaty", state="in_force")
    page = get(client, reverse("contributions_cost_shares", args=[treaty.pk]))
    for french in ("Partage des coûts", "Quote-part", "Obligation", "Solde", "calcul", "fonds"):
        assert french in page, french
    for english in ("Value delivered against each obligation", "Valuation tables:", "Balance"):
        assert english not in page, english
    # Amounts with a decimal comma (and a non-breaking space between thousands), never
    # 40.14; each member's standing in French.
    assert re.search(r'class="number">-?\d+,\d\d<', page)
    assert not re.search(r'class="number">-?[\d,]+\.\d\d<', page)
    assert "<td>en bonne voie</td>" in page and "<td>on track</td>" not in page


def test_the_security_page_reads_in_french(client, lumi, checkpoint):
    page = get(in_french(client, lumi["people"]["sig_se"]), reverse("security"))
    page = page.replace("&#x27;", "'")
    for french in (
        "Vos clés d'accès et applications",
        "Ajouter une clé d'accès",
        "Codes de secours",
        "Sécurité",
        "Se déconnecter",
    ):
        assert french in page, french
    for english in ("Your passkeys and apps", "Add a passkey", "Recovery codes"):
        assert english not in page, english
    # When the device was added: "5 déc. 2026, 14:03 UTC".
    assert FRENCH_MOMENT.search(page)


def test_choosing_french_in_the_header_switches_the_pages(client, lumi, checkpoint):
    sign_in(client, lumi["people"]["sig_se"])
    page = get(client, "/admin/")
    # The header's form offers the languages, English chosen.
    assert 'action="/i18n/setlang/"' in page and '<option value="fr" lang="fr">' in page
    assert "Contributions against your share" in page
    response = client.post("/i18n/setlang/", {"language": "fr", "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    page = get(client, "/admin/")
    assert "Contributions au regard de votre quote-part" in page
    assert '<option value="fr" lang="fr" selected>' in page
    # It holds for the next pages too, and choosing English again switches back.
    assert "Vos clés d" in get(client, reverse("security"))
    client.post("/i18n/setlang/", {"language": "en-gb", "next": "/admin/"})
    assert "Contributions against your share" in get(client, "/admin/")


def test_figures_and_moments_follow_the_language():
    """The filters the pages use: "5 déc. 2026, 14:03 UTC" and "1 234 567,89" in French,
    "5 Dec 2026, 14:03 UTC" and "1,234,567.89" in English."""
    from django.utils import translation

    from consortium.templatetags.consortium_format import thousands, utc
    from consortium.templatetags.people import amount

    moment = datetime(2026, 12, 5, 14, 3, 7, 123456, tzinfo=UTC)
    with translation.override("fr"):
        assert utc(moment) == "5 déc. 2026, 14:03 UTC"
        assert amount("1234567.89") == "1\xa0234\xa0567,89"
        assert thousands(1234567) == "1\xa0234\xa0567"
    with translation.override("en-gb"):
        assert utc(moment) == "5 Dec 2026, 14:03 UTC"
        assert amount("1234567.89") == "1,234,567.89"
        assert thousands(1234567) == "1,234,567"


def test_the_models_and_their_columns_are_named_in_french(client, lumi, checkpoint):
    """Django's own sentences name the models, and the columns are the fields' names: both
    in French, from the models' and fields' verbose names."""
    client = in_french(client, lumi["people"]["sig_se"])
    page = get(client, "/admin/ledger/entry/").replace("&#x27;", "'")
    assert "Sélectionnez l\u2019objet entrée à afficher" in page
    assert "&rsaquo; Entrées" in page  # the breadcrumbs
    # The columns named after fields: the entry id, the kind.
    for french in (">Identifiant de l'entrée</a>", ">Type</a>"):
        assert french in page, french
    for english in ("Select entry to view", ">Entry id</a>", ">Kind</a>"):
        assert english not in page, english
    # The app's index and the home page list the models by their French plural names.
    page = get(client, "/admin/ledger/").replace("&#x27;", "'")
    for french in (">Entrées</a>", ">Points de contrôle</a>", ">Témoins enregistrés</a>"):
        assert french in page, french
    for english in (">Entries</a>", ">Checkpoints</a>", ">Registered witnesses</a>"):
        assert english not in page, english
    # A contribution's columns: when it was delivered, the entry that recorded it.
    page = get(client, "/admin/contributions/contribution/").replace("&#x27;", "'")
    for french in (">Fournie le</a>", ">Entrée d'enregistrement</a>", ">Membre</a>"):
        assert french in page, french
    for english in (">Delivered on</a>", ">Recorded in</a>", ">Member</a>"):
        assert english not in page, english


def test_the_same_models_and_columns_keep_their_english_names(client, lumi, checkpoint):
    sign_in(client, lumi["people"]["sig_se"])
    page = get(client, "/admin/ledger/entry/")
    assert "Select entry to view" in page
    assert ">Entry id</a>" in page and ">Kind</a>" in page
    page = get(client, "/admin/ledger/")
    assert ">Entries</a>" in page and ">Registered witnesses</a>" in page
    page = get(client, "/admin/contributions/contribution/")
    assert ">Delivered on</a>" in page and ">Recorded in</a>" in page
