"""The tiles the writer stored, served by a real nginx with deploy/nginx/tiles.conf in
front of the application (gunicorn), and read by a tlog-tiles client
(``ledger.core.tiles``): the checkpoint and tiles from disk, with the spec's content types
and caching; what is not on disk from the application; access decided by the
application (auth_request), refusals answered by it as problem+json.

nginx must be installed (apt-get install -y nginx-light): without it these tests fail,
saying so."""

from __future__ import annotations

import gzip
import random
import shutil
import urllib.error
import urllib.request

import pytest
from django.contrib.auth import get_user_model

from consortium.governance.models import ApiToken
from ledger import proofs, services, tile_store
from ledger.checkpoints import publish_checkpoint
from ledger.core import merkle, tiles
from ledger.core.note import open_checkpoint, parse_verifier_key
from ledger.models import Checkpoint, Entry
from ledger.services import Draft
from tests.steps.ledger import child_env, log_vkey, wipe_database
from tests.steps.nginx import app_server, nginx, readable_dir


def _get(url: str, token: str | None = None, **headers) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - a local server
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:  # noqa: S310 - a local server
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@pytest.fixture(scope="module")
def served(django_db_setup, django_db_blocker):
    """A log with checkpoints at 300 and 700 whose tiles are on disk, one at 705 whose
    tiles are not (yet), a superuser's token and a seatless user's; the application under
    gunicorn and nginx in front of it."""
    from django.conf import settings
    from django.test import override_settings

    tiles_dir = readable_dir("consortium-tiles-")
    tiles_storage = {
        "BACKEND": "ledger.tile_storage.TileFileStorage",
        "OPTIONS": {"location": tiles_dir},
    }
    with (
        override_settings(STORAGES={**settings.STORAGES, "tiles": tiles_storage}),
        django_db_blocker.unblock(),
    ):
        wipe_database()
        try:
            services.ledger_init()
            _, sampler = services.key_register(
                signer=services.log_signer(), kind="service", owner="sampler", name="sampler"
            )
            for size in (300, 700):
                services.entries_append(
                    signer=sampler,
                    drafts=[
                        Draft("test.sample", {"n": i}) for i in range(proofs.tree_size(), size)
                    ],
                )
                publish_checkpoint()
            assert tile_store.write_tiles().size == 700
            rng = random.Random(3)
            expected = {
                "inclusion": {
                    i: proofs.inclusion_proof(i, 700)
                    for i in (rng.randrange(700) for _ in range(50))
                },
                "consistency": proofs.consistency_proof(300, 700),
                "leaves": [
                    bytes(e.leaf) for e in Entry.objects.filter(index__lt=256).order_by("index")
                ],
                "root_300": bytes(Checkpoint.objects.get(tree_size=300).root_hash),
            }
            services.entries_append(
                signer=sampler, drafts=[Draft("test.sample", {"n": -i}) for i in range(5)]
            )
            publish_checkpoint()
            User = get_user_model()
            admin = User.objects.create_superuser("ops", password="unused-pass-123")
            outsider = User.objects.create_user("partner", password="unused-pass-123")
            tokens = {
                "admin": ApiToken.issue(user=admin, days=1)[1],
                "outsider": ApiToken.issue(user=outsider, days=1)[1],
                "revocable": ApiToken.issue(user=admin, days=1)[1],
            }
            env = {**child_env(), "ALLOWED_HOSTS": "127.0.0.1", "DEBUG": "0"}
            with app_server(env) as app_port, nginx(tiles_dir, app_port) as base:
                yield {
                    "base": base + "/api/v1/ledger/tlog",
                    "app": f"http://127.0.0.1:{app_port}/api/v1/ledger/tlog",
                    "tokens": tokens,
                    "dir": tiles_dir,
                    "vkey": log_vkey(),
                    "expected": expected,
                }
        finally:
            wipe_database()
            shutil.rmtree(tiles_dir, ignore_errors=True)


def test_a_tiles_client_reads_the_log_from_the_files_nginx_serves(served):
    base, token = served["base"], served["tokens"]["admin"]
    status, headers, note = _get(f"{base}/checkpoint", token)
    assert status == 200 and note == (served["dir"] / "checkpoint").read_bytes()
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    checkpoint = open_checkpoint(note, parse_verifier_key(served["vkey"]))
    assert checkpoint.size == 700  # the stored one; the application's latest is 705
    fetched = []

    def read_tile(level: int, n: int) -> list[bytes]:
        width = tiles.width_at(level, n, checkpoint.size)
        path = tiles.tile_path(level, n, width)
        status, headers, body = _get(f"{base}/{path}", token)
        assert status == 200, (path, body)
        assert headers["content-type"] == "application/octet-stream"
        assert headers["cache-control"] == "private, max-age=31536000, immutable"
        assert "last-modified" in headers and "etag" in headers  # nginx's, from the file
        fetched.append(path)
        return tiles.split_tile(body, width)

    from_tiles = tiles.hash_reader(read_tile)
    assert merkle.tree_root(checkpoint.size, from_tiles) == checkpoint.root
    expected = served["expected"]
    for index, proof in expected["inclusion"].items():
        assert merkle.prove_inclusion(index, 700, from_tiles) == proof
    assert merkle.prove_consistency(300, 700, from_tiles) == expected["consistency"]
    assert "tile/0/002.p/188" in fetched and "tile/1/000.p/2" in fetched
    # The partial tiles of the older checkpoint stay on disk for a client that holds it.
    older = tiles.hash_reader(
        lambda level, n: tiles.split_tile(
            _get(f"{base}/{tiles.tile_path(level, n, tiles.width_at(level, n, 300))}", token)[2],
            tiles.width_at(level, n, 300),
        )
    )
    assert merkle.tree_root(300, older) == expected["root_300"]
    status, headers, body = _get(f"{base}/tile/entries/000", token, **{"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("content-encoding") == "gzip"
    assert tiles.read_entry_bundle(gzip.decompress(body)) == expected["leaves"]


def test_what_is_not_on_disk_comes_from_the_application(served):
    base, token = served["base"], served["tokens"]["admin"]
    path = "tile/0/002.p/193"  # of the checkpoint at 705, whose tiles are not written
    assert not (served["dir"] / path).exists()
    status, headers, body = _get(f"{base}/{path}", token)
    assert status == 200 and "last-modified" not in headers  # the view's answer
    assert headers["cache-control"] == "private, max-age=31536000, immutable"
    assert body == _get(f"{served['app']}/{path}", token)[2]
    assert len(body) == 193 * 32
    status, headers, _ = _get(f"{base}/tile/0/002.p/194", token)
    assert status == 404 and headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("who", "status", "detail"),
    [
        (None, 401, "Authentication credentials were not provided"),
        ("outsider", 403, "you hold no seat"),
        ("clt_000000000000_" + "x" * 30, 401, "invalid bearer token"),
    ],
)
def test_only_the_ledgers_readers_get_tiles_from_disk(served, who, status, detail):
    token = served["tokens"].get(who, who)
    for path in ("checkpoint", "tile/0/000", "tile/entries/001"):
        assert (served["dir"] / path).exists()
        got, headers, body = _get(f"{served['base']}/{path}", token)
        assert got == status, (path, body)
        assert headers["content-type"] == "application/problem+json"
        assert detail in body.decode()


def test_a_readers_yes_is_remembered_for_seconds_and_then_asked_again(served, django_db_blocker):
    """The documented trade: nginx keeps the application's yes for a token 10 s, so a
    token revoked meanwhile still reads tiles from disk until then (and nothing else)."""
    from django.utils import timezone

    token = served["tokens"]["revocable"]
    assert _get(f"{served['base']}/tile/0/000", token)[0] == 200
    with django_db_blocker.unblock():
        key_id = token.split("_")[1]
        assert ApiToken.objects.filter(key_id=key_id).update(revoked_at=timezone.now()) == 1
    assert _get(f"{served['base']}/tile/0/001", token)[0] == 200  # the cached yes
    status, _, body = _get(f"{served['base']}/tile/0/002.p/193", token)  # not on disk
    assert status == 401 and b"revoked" in body
    status, _, body = _get(served["base"].replace("/tlog", "/checkpoint"), token)
    assert status == 401 and b"revoked" in body
