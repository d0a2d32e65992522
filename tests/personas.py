"""The people of the tests, what each may do and may not, and the worlds they act in.

A test that needs a consortium starts from one of these worlds, handed to it by the
fixtures of tests/conftest.py: ``delegates`` (governance: France, Germany, Italy), ``lumi``
(contributions: Finland runs LUMI; Sweden and the Netherlands contribute) and
``published`` (``lumi`` with a checkpoint published). A module whose every test starts
from the same world builds it once (tests/worlds.py). The consortium-wide seats are
assigned by the operator at the console (``actor=None``), every other seat by the
secretariat.

Outside the worlds: the *log operator* holds the log key and signs checkpoints and key
registrations (fixture ``log_key``); a *partner system* reads the API with a bearer token
and holds no seat (fixture ``partner``); an *outsider* has no credentials, or a bad token.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from consortium.access import checkpoints
from consortium.governance.members import consortium_found, member_record
from consortium.governance.seats import seat_assign
from contributions.facilities import facility_register
from tests.steps.access import WEIGHTS
from tests.steps.contributions import deliver, treaty

User = get_user_model()


def found_delegates() -> dict:
    """The consortium of France, Germany and Italy (population and GNI), and its people by
    username."""
    consortium_found(
        name="C",
        members=[
            member_record(code=c, figures={"population": p, "gni": g})
            for c, p, g in (("FR", 68, "3000"), ("DE", 84, "4200"), ("IT", 59, "2100"))
        ],
    )
    p = {
        n: User.objects.create_user(n)
        for n in ("ops", "fr", "de", "it", "rec_fr", "aud", "rec_de", "obs_de", "newcomer")
    }
    # ops, the secretariat: runs the system. Seats anyone, admits and suspends through
    # proposals it opens, proposes and terminates agreements, publishes checkpoints, all
    # signed with the secretariat's key. It casts no vote and signs no agreement: those
    # are the members' own.
    seat_assign(actor=None, user=p["ops"], role="secretariat")
    # aud, the auditor: reads everything and exports it; changes nothing.
    seat_assign(actor=None, user=p["aud"], role="auditor")
    # fr, de and it, the signatories of France, Germany and Italy: each votes, signs
    # agreements, rotates its member's keys and seats its own member's delegates, with its
    # member's key. None acts for another member.
    for code in ("fr", "de", "it"):
        seat_assign(actor=p["ops"], user=p[code], role="signatory", member=code.upper())
    # rec_fr and rec_de, recorders of France and Germany: record their member's
    # contributions and ask for its downloads; they neither vote, nor sign, nor seat anyone.
    seat_assign(actor=p["ops"], user=p["rec_fr"], role="recorder", member="FR")
    seat_assign(actor=p["ops"], user=p["rec_de"], role="recorder", member="DE")
    # obs_de, an observer of Germany: reads what concerns Germany and writes nothing.
    seat_assign(actor=p["ops"], user=p["obs_de"], role="observer", member="DE")
    # newcomer has an account and no seat: sees nothing and may do nothing until seated.
    return p


def found_lumi() -> dict:
    """The consortium of Finland, Sweden and the Netherlands (population), its people by
    username, and LUMI: ``{"people": ..., "facility": ...}``."""
    consortium_found(
        name="C",
        members=[
            member_record(code=c, figures={"population": p})
            for c, p in (("FI", 5), ("SE", 10), ("NL", 18))
        ],
    )
    people = {
        n: User.objects.create_user(n)
        for n in ("ops", "aud", "rec_fi", "sig_fi", "rec_se", "sig_se", "obs_nl", "sig_nl")
    }
    # ops, the secretariat: registers facilities, reports imports with its own key,
    # confirms funds (the treasurer unless a treaty names one) and resolves disputes.
    seat_assign(actor=None, user=people["ops"], role="secretariat")
    # aud, the auditor: reads every contribution and exports the ledger; changes nothing.
    seat_assign(actor=None, user=people["aud"], role="auditor")
    for name, role, member in (
        # rec_fi and sig_fi act for Finland, which runs LUMI: they import LUMI's SLURM
        # exports, which LUMI's hosted key attests; sig_fi also changes LUMI's tables.
        ("rec_fi", "recorder", "FI"),
        ("sig_fi", "signatory", "FI"),
        # rec_se and sig_se act for Sweden, which computes on LUMI (account project_se)
        # and pays in SEK; they record Sweden's contributions, not LUMI's imports.
        ("rec_se", "recorder", "SE"),
        ("sig_se", "signatory", "SE"),
        # obs_nl, an observer of the Netherlands: reads what concerns it, writes nothing.
        ("obs_nl", "observer", "NL"),
        # sig_nl, the Netherlands' signatory: signs, votes, disputes, records data and funds.
        ("sig_nl", "signatory", "NL"),
    ):
        seat_assign(actor=people["ops"], user=people[name], role=role, member=member)
    facility = facility_register(
        actor=people["ops"],
        record={
            "code": "lumi",
            "name": "LUMI",
            "operator": "FI",
            "country": "FI",
            "timezone": "Europe/Helsinki",
            "default_accelerator": "mi250x",
            "partitions": {"standard-g": "mi250x", "h100-g": "h100"},
            "accounts": {"project_fi": "FI", "project_se": "SE"},
        },
    )
    return {"people": people, "facility": facility}


# The access rules of the published checkpoint's treaty: full weights for a member at its
# share (a balance ratio of 0.8 or more), after a 90-day embargo for one behind; inference
# for every member at once.
ACCESS = [
    {"scope": "full_weights", "tier": "member", "min_balance_ratio": "0.8", "embargo_days": 90},
    {"scope": "inference_only", "tier": "member"},
]


def publish(lumi, directory, release=None):
    """A treaty with access rules (and ``release``, if given), contributions delivered, and
    a model's checkpoint published from ``directory``: Sweden (ratio 2.267) downloads the
    full weights at once; Finland (0.478) and the Netherlands (0.448) wait out the
    embargo."""
    extra = {"access": ACCESS, **({"release": release} if release else {})}
    a = treaty(lumi, **extra)
    deliver(lumi)  # ratios: FI 0.478, SE 2.267, NL 0.448
    model = checkpoints.model_register(actor=None, code="aurora", name="Aurora", agreement=a)
    (directory / "w").mkdir()
    (directory / "w" / "model.safetensors").write_bytes(WEIGHTS)
    return checkpoints.checkpoint_publish(
        actor=None, model=model, name="s1", directory=directory / "w", workers=1
    )
