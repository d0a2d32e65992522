"""E-mail to members' delegates when something awaits or concerns their member: a
signature (an agreement proposed with it as a party), a vote (a proposal opened), a
decision (to every member), a dispute naming it, a download refused.

The appliers and services call the ``on_*`` functions where those facts are applied; the
mail leaves only after the transaction commits (``transaction.on_commit``), through a
Celery task, and never during a replay (which re-applies old entries). Recipients are the
e-mail addresses of the active holders of the member's seats, read when the task runs.
Notices are written in LANGUAGE_CODE. Bodies are plain text with a link to the page
(``SITE_URL``), and carry no secret: no token, no key, nothing a reader of the ledger
could not see.
"""

from __future__ import annotations

import functools
import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from ledger.services import replaying

log = logging.getLogger(__name__)


def recipients(members: list[str]) -> list[tuple[str, str]]:
    """``(member, e-mail)`` of every active, reachable holder of an active seat of
    ``members``."""
    from consortium.governance.models import SeatHolder

    return sorted(
        SeatHolder.objects.filter(
            seat__member_id__in=members,
            seat__vacated_in__isnull=True,
            user__is_active=True,
        )
        .exclude(user__email="")
        .values_list("seat__member_id", "user__email")
        .distinct()
    )


@shared_task(name="consortium.send_notice", ignore_result=True)
def send_notice(members: list[str], subject: str, body: str, path: str) -> int:
    """Mail ``subject`` and ``body`` (with a link to ``path``) to each delegate of
    ``members``, one message per address (no delegate sees another's); return how many."""
    link = f"{settings.SITE_URL}{path}"
    messages = [
        EmailMessage(
            subject=f"{settings.EMAIL_SUBJECT_PREFIX}{subject}",
            body=f"{body}\n\n{link}\n",
            to=[email],
        )
        for _member, email in recipients(members)
    ]
    if not messages:
        return 0
    with get_connection() as connection:
        return connection.send_messages(messages) or 0


def notify(members, subject: str, body: str, path: str) -> None:
    """Send, once the current transaction commits, ``subject`` and ``body`` to the
    delegates of ``members``."""
    members = sorted(set(members))
    if not members or replaying():
        return

    def send():
        try:
            send_notice.delay(members, str(subject), str(body), path)
        except Exception:
            # Telling people is not worth failing what was recorded: it is on the ledger.
            log.exception("could not send the notice %r", subject)

    transaction.on_commit(send)


def _admin(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


def in_site_language(on_fact):
    """Write the notice in LANGUAGE_CODE, whatever the language of the request that
    recorded the fact: one mail goes to delegates of several members, and who reads it
    in which language is not known."""

    @functools.wraps(on_fact)
    def written(*args, **kwargs):
        with translation.override(settings.LANGUAGE_CODE):
            return on_fact(*args, **kwargs)

    return written


# --- the facts ---------------------------------------------------------------------------


@in_site_language
def on_agreement_proposed(agreement) -> None:
    """Each party is asked to sign."""
    parties = list(agreement.parties.values_list("member_id", flat=True))
    notify(
        parties,
        _("Signature awaited: %(title)s") % {"title": agreement.title},
        _(
            "The %(kind)s “%(title)s” (version %(version)s) was proposed with your member as "
            "a party. Its signatory may read and sign it in the admin."
        )
        % {
            "kind": agreement.get_kind_display(),
            "title": agreement.title,
            "version": agreement.version,
        },
        _admin("consortium_agreement_change", agreement.pk),
    )


@in_site_language
def on_proposal_opened(proposal) -> None:
    """Each member that may vote is asked to."""
    notify(
        list(proposal.eligible),
        _("Vote awaited: %(title)s") % {"title": proposal.title},
        _("A proposal is open for your member's vote until %(deadline)s: “%(title)s”.")
        % {"deadline": proposal.deadline, "title": proposal.title},
        _admin("consortium_proposal_change", proposal.pk),
    )


@in_site_language
def on_proposal_decided(proposal) -> None:
    """Every member in good standing hears the outcome."""
    from consortium.governance.selectors import members_in_standing

    notify(
        members_in_standing() | set(proposal.eligible),
        _("Proposal %(outcome)s: %(title)s")
        % {"outcome": proposal.get_state_display(), "title": proposal.title},
        _("The proposal “%(title)s” was decided: %(outcome)s.")
        % {"title": proposal.title, "outcome": proposal.get_state_display()},
        _admin("consortium_proposal_change", proposal.pk),
    )


@in_site_language
def on_dispute_opened(dispute) -> None:
    """The member whose contribution is disputed is told (the disputing member knows)."""
    contribution = dispute.contribution
    notify(
        [contribution.member_id],
        _("A contribution of your member is disputed"),
        _("%(by)s disputes the contribution “%(what)s”: %(reason)s")
        % {"by": dispute.member_id, "what": str(contribution), "reason": dispute.reason},
        _admin("contributions_dispute_change", dispute.pk),
    )


@in_site_language
def on_download_refused(member: str, checkpoint, reason: str) -> None:
    """The member's delegates hear that a request for its download was refused, and why."""
    notify(
        [member],
        _("Download refused: %(checkpoint)s") % {"checkpoint": str(checkpoint)},
        _("A request of your member to download %(checkpoint)s was refused: %(reason)s.")
        % {"checkpoint": str(checkpoint), "reason": reason},
        _admin("consortium_modelcheckpoint_access", checkpoint.digest),
    )
