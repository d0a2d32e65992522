"""Pages that refuse or find nothing speak in the site's frame, in the person's language."""

from __future__ import annotations

from tests.steps.signin import sign_in


def test_a_missing_page_says_so_in_the_sites_frame(client, delegates):
    sign_in(client, delegates["fr"])
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404
    body = missing.content.decode()
    assert "There is nothing here" in body and "Back to your dashboard" in body
    french = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="fr")
    assert french.status_code == 404 and "Retour à votre tableau de bord" in french.content.decode()


def test_the_api_still_answers_problem_details(client, delegates):
    sign_in(client, delegates["fr"])
    missing = client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing["Content-Type"].startswith("application/problem+json")
