"""C2SP tlog-policy (ledger.core.policy): the text, and checkpoints really cosigned by
ledger.witness cosigners (Ed25519 cosignature/v1 and ML-DSA-44) checked against it."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from ledger.core.note import Signer, split_note
from ledger.core.policy import PolicyError, PolicyResult, parse_policy
from ledger.witness import mldsa
from ledger.witness.cosignature import CosignatureVerifier, generate_cosigner
from tests.steps.witness import TestLog

T = 1_700_000_000
NAMES = ("X1", "X2", "X3", "Y1", "Y2", "Y3")


@pytest.fixture(scope="module")
def log():
    return TestLog("example.org/policy-log")


@pytest.fixture(scope="module")
def cosigners():
    return {n: generate_cosigner(f"{n.lower()}.witness.example") for n in NAMES}


def witness_lines(cosigners, names=NAMES):
    return "".join(f"witness {n} {cosigners[n].verifier.vkey()}\n" for n in names)


def cosign(note: str, *cosigners, timestamp: int = T) -> str:
    body, _ = split_note(note)
    return note + "".join(c.cosign(body, timestamp) for c in cosigners)


@pytest.fixture(scope="module")
def spec_policy(log, cosigners):
    """The example of the spec, with real keys: 2 of X, any of Y, and both groups."""
    return parse_policy(
        f"log {log.vkey}\n\n"
        + witness_lines(cosigners, ("X1", "X2", "X3"))
        + "group X-witnesses 2 X1 X2 X3\n\n"
        + witness_lines(cosigners, ("Y1", "Y2", "Y3"))
        + "group Y-witnesses any Y1 Y2 Y3\n\n"
        + "group X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n"
    )


def test_the_spec_example_accepts_two_xs_and_a_y(spec_policy, log, cosigners):
    note = cosign(log.checkpoint(7), cosigners["X3"], cosigners["Y2"], cosigners["X1"])
    got = spec_policy.check(note, log.origin)
    assert (got.ok, got.cosigned_by, got.why) == (True, ["X1", "X3", "Y2"], "")
    assert got.checkpoint.size == 7 and got.checkpoint.root == log.root(7)


def test_the_spec_example_names_what_is_missing_down_the_groups(spec_policy, log, cosigners):
    note = cosign(log.checkpoint(7), cosigners["X1"], cosigners["Y1"], cosigners["Y3"])
    got = spec_policy.check(note, log.origin)
    assert got == PolicyResult(
        False,
        ["X1", "Y1", "Y3"],
        "quorum X-and-Y not met: group X-and-Y: 1 of 2 needed (missing: X-witnesses); "
        "group X-witnesses: 1 of 2 needed (missing: X2, X3)",
        got.checkpoint,
    )
    only_xs = spec_policy.check(
        cosign(log.checkpoint(7), *(cosigners[n] for n in NAMES[:3])), log.origin
    )
    assert not only_xs.ok
    assert only_xs.why == (
        "quorum X-and-Y not met: group X-and-Y: 1 of 2 needed (missing: Y-witnesses); "
        "group Y-witnesses: 0 of 1 needed (missing: Y1, Y2, Y3)"
    )


@pytest.mark.parametrize(
    ("k", "signed", "ok"),
    [
        ("any", ["X2"], True),
        ("any", [], False),
        ("all", ["X1", "X2", "X3"], True),
        ("all", ["X1", "X3"], False),
        ("2", ["X1", "X3"], True),
        ("2", ["X3"], False),
        ("3", ["X1", "X2", "X3"], True),
        ("1", ["X1"], True),
    ],
)
def test_thresholds(log, cosigners, k, signed, ok):
    policy = parse_policy(
        f"log {log.vkey}\n" + witness_lines(cosigners, NAMES[:3]) + f"group G {k} X1 X2 X3\n"
        "quorum G\n"
    )
    got = policy.check(cosign(log.checkpoint(3), *(cosigners[n] for n in signed)), log.origin)
    assert got.ok is ok
    assert got.cosigned_by == signed
    assert (got.why == "") is ok


def test_a_witness_cosigning_twice_counts_once(log, cosigners):
    policy = parse_policy(
        f"log {log.vkey}\n" + witness_lines(cosigners, NAMES[:2]) + "group G 2 X1 X2\nquorum G\n"
    )
    note = cosign(log.checkpoint(4), cosigners["X1"])
    note = cosign(note, cosigners["X1"], timestamp=T + 5)
    got = policy.check(note, log.origin)
    assert not got.ok and got.cosigned_by == ["X1"]
    assert got.why == "quorum G not met: group G: 1 of 2 needed (missing: X2)"


def test_a_single_witness_quorum_and_quorum_none(log, cosigners):
    single = parse_policy(f"log {log.vkey}\n" + witness_lines(cosigners, ["Y1"]) + "quorum Y1\n")
    assert single.check(cosign(log.checkpoint(2), cosigners["Y1"]), log.origin).ok
    missing = single.check(cosign(log.checkpoint(2), cosigners["Y2"]), log.origin)
    assert (missing.ok, missing.why) == (False, "quorum Y1 not met: witness Y1 did not cosign")
    none = parse_policy(f"log {log.vkey}\nquorum none\n")
    assert none.check(log.checkpoint(2), log.origin) == PolicyResult(
        True, [], "", none.check(log.checkpoint(2), log.origin).checkpoint
    )


def test_a_cosignature_on_another_checkpoint_does_not_count(log, cosigners):
    policy = parse_policy(f"log {log.vkey}\n" + witness_lines(cosigners, ["X1"]) + "quorum X1\n")
    on_eight = cosign(log.checkpoint(8), cosigners["X1"])
    line = on_eight[on_eight.rindex("\u2014 x1.") :]
    got = policy.check(log.checkpoint(9) + line, log.origin)
    assert not got.ok and got.cosigned_by == []
    assert got.why == (
        "quorum X1 not met: witness X1 did not cosign; "
        "witness X1's cosignature does not verify on this checkpoint"
    )
    # The same root at another size, and another root at the same size, likewise.
    forked = log.checkpoint(8, root=bytes(32)) + line
    assert not policy.check(forked, log.origin).ok
    assert policy.check(on_eight, log.origin).ok


def test_a_witness_key_under_the_right_name_but_another_key_does_not_count(log, cosigners):
    policy = parse_policy(f"log {log.vkey}\n" + witness_lines(cosigners, ["X1"]) + "quorum X1\n")
    impostor = generate_cosigner(cosigners["X1"].name)
    got = policy.check(cosign(log.checkpoint(5), impostor), log.origin)
    assert (got.ok, got.why) == (False, "quorum X1 not met: witness X1 did not cosign")


def test_the_log_signature_is_checked_against_the_policy_log_lines(log, cosigners):
    policy = parse_policy(f"log {log.vkey}\n" + witness_lines(cosigners, ["X1"]) + "quorum X1\n")
    other_key = Signer(log.origin, SigningKey.generate())
    note = cosign(log.checkpoint(5, signer=other_key), cosigners["X1"])
    got = policy.check(note, log.origin)
    assert (got.ok, got.why) == (
        False,
        "no signature by the policy's log key for 'example.org/policy-log'",
    )
    # A line with the log's key id whose signature is forged, or not 64 bytes long.
    good = log.checkpoint(5)
    sig = good.split(" ")[-1]
    for forged in (sig[:6] + "A" * 85 + "=\n", sig[:6] + "A" * 90 + "\n"):
        _, (line,) = split_note(good.replace(sig, forged))
        assert line.key_id == log.signer.key_id and len(line.signature) in (64, 68)
        got = policy.check(good.replace(sig, forged), log.origin)
        assert got.why == f"invalid log signature by {log.origin}"
    # The origin asked for must be the checkpoint's, and the policy must list its log.
    assert policy.check(cosign(good, cosigners["X1"]), "example.org/other").why == (
        "the checkpoint's origin is 'example.org/policy-log', not 'example.org/other'"
    )
    other_log = TestLog("example.org/other")
    assert policy.check(other_log.checkpoint(1), other_log.origin).why == (
        "the policy names no log key for origin 'example.org/other'"
    )
    assert policy.check("not a note", log.origin).why.startswith("the checkpoint is malformed")


def test_a_policy_without_log_lines_takes_the_log_key_from_the_caller(log, cosigners):
    policy = parse_policy(witness_lines(cosigners, ["X1"]) + "quorum X1\n")
    note = cosign(log.checkpoint(6), cosigners["X1"])
    assert not policy.check(note, log.origin).ok
    assert policy.check(note, log.origin, log_vkeys=(log.vkey,)).ok
    assert policy.check(note, log.origin, log_vkeys=("not a key",)).why == (
        "the log key given beside the policy: a verifier key is name+hex8+base64"
    )


def test_several_log_keys_for_one_origin_each_sign_valid_checkpoints(log, cosigners):
    rotated = Signer(log.origin, SigningKey.generate())
    policy = parse_policy(
        f"log {log.vkey} https://log.example/\nlog {rotated.verifier_key()}\n"
        + witness_lines(cosigners, ["X1"])
        + "quorum X1\n"
    )
    for signer in (log.signer, rotated):
        assert policy.check(
            cosign(log.checkpoint(6, signer=signer), cosigners["X1"]), log.origin
        ).ok


def test_ml_dsa_44_and_ed25519_witnesses_together(log, cosigners):
    assert mldsa.AVAILABLE, "the project's environment provides ML-DSA-44 (cryptography 50)"
    pq = mldsa.generate_mldsa_cosigner("pq.witness.example")
    policy = parse_policy(
        f"log {log.vkey}\n"
        + witness_lines(cosigners, ["X1"])
        + f"witness PQ {pq.verifier.vkey()} https://pq.witness.example/\n"
        "group both all X1 PQ\nquorum both\n"
    )
    assert policy.witnesses["PQ"].url == "https://pq.witness.example/"
    note = cosign(log.checkpoint(11), cosigners["X1"], pq)
    got = policy.check(note, log.origin)
    assert (got.ok, got.cosigned_by) == (True, ["X1", "PQ"])
    other = cosign(log.checkpoint(12), pq)
    pq_line = other[other.rindex("\u2014 pq.") :]
    moved = policy.check(cosign(log.checkpoint(11), cosigners["X1"]) + pq_line, log.origin)
    assert not moved.ok and moved.cosigned_by == ["X1"]
    assert "witness PQ's cosignature does not verify on this checkpoint" in moved.why


def test_cosignatures_by_witnesses_the_policy_does_not_name_are_ignored(log, cosigners):
    policy = parse_policy(f"log {log.vkey}\n" + witness_lines(cosigners, ["X1"]) + "quorum X1\n")
    stranger = generate_cosigner("stranger.example")
    got = policy.check(cosign(log.checkpoint(3), stranger, cosigners["X1"]), log.origin)
    assert (got.ok, got.cosigned_by) == (True, ["X1"])


def test_the_text_allows_tabs_comments_urls_and_opaque_bytes(log, cosigners):
    text = (
        "# a member's policy \xe2\x80\x94 comments may hold any octet: \xff\n"
        f"  log\t{log.vkey}   https://ledger.example/api/v1/ledger/tlog  \n"
        "\t\n"
        f"witness\tX1 {cosigners['X1'].verifier.vkey()}\n"
        f"   # indented comment\nwitness X2 {cosigners['X2'].verifier.vkey()} https://w2.example/\n"
        "group\tG\tany X1\tX2\n"
        "quorum G"  # no final newline
    ).encode("latin-1")
    policy = parse_policy(text)
    assert [(entry.vkey, entry.url, entry.origin) for entry in policy.logs] == [
        (log.vkey, "https://ledger.example/api/v1/ledger/tlog", log.origin)
    ]
    vkey, url = policy.witnesses["X2"]
    assert (vkey, url) == (cosigners["X2"].verifier.vkey(), "https://w2.example/")
    assert policy.witnesses["X1"].url is None
    assert policy.groups["G"] == (1, ("X1", "X2"))
    assert policy.quorum == "G"


def test_errors_name_their_line(log, cosigners):
    x1, x2 = cosigners["X1"].verifier.vkey(), cosigners["X2"].verifier.vkey()
    same_key = CosignatureVerifier("renamed.example", cosigners["X1"].verifier.public_key).vkey()
    head = f"log {log.vkey}\nwitness X1 {x1}\nwitness X2 {x2}\n"
    cases = {
        head + "group G 2 X1 X1\nquorum G\n": "line 4: group G lists 'X1' twice",
        head
        + "group G 3 X1 X2\nquorum G\n": "line 4: group G: a threshold is from 1 to the 2 members, not 3",
        head
        + "group G 0 X1 X2\nquorum G\n": "line 4: group G: a threshold is from 1 to the 2 members, not 0",
        head
        + "group G two X1 X2\nquorum G\n": "line 4: group G: the threshold is 'all', 'any' or a decimal k",
        head
        + "group G any X1 X3\nquorum G\n": "line 4: group G: 'X3' is not defined on an earlier line",
        head + "group G any X1 none\nquorum G\n": "line 4: 'none' cannot be a group member",
        head
        + "group G any\nquorum G\n": "line 4: a group line is 'group <name> all|any|<k> <name>...'",
        head
        + "group X1 any X2\nquorum X1\n": "line 4: 'X1' is already defined (witnesses and groups share names)",
        head + "quorum G\ngroup G any X1\n": "line 4: quorum 'G' is not defined on an earlier line",
        head + "quorum X1\nquorum X2\n": "line 5: a second quorum line (a policy has exactly one)",
        head + "quorum X1 X2\n": "line 4: a quorum line is 'quorum <name>'",
        head: "the policy has no quorum line (use 'quorum none' for none)",
        head + f"witness none {cosigners['X3'].verifier.vkey()}\nquorum X1\n": (
            "line 4: the name 'none' is reserved for 'quorum none'"
        ),
        head + f"witness X3 {same_key}\nquorum X1\n": (
            "line 4: witness X3 has the same public key as witness X1"
        ),
        head + f"log {log.vkey} https://again.example/\nquorum X1\n": (
            "line 4: a second log line with the same public key"
        ),
        head + f"witness X3 {log.vkey}\nquorum X1\n": (
            "line 4: witness X3's key: a witness key is a cosignature/v1 key (type 0x04) "
            "or an ML-DSA-44 key (type 0x06)"
        ),
        f"log {x1}\nquorum none\n": (
            "line 1: the log's key: only Ed25519 verifier keys (algorithm 0x01, 32 bytes) "
            "are supported"
        ),
        f"log {log.vkey} https://a.example/ extra\nquorum none\n": (
            "line 1: a log line is 'log <vkey> [<url>]'"
        ),
        "witness X1\nquorum none\n": "line 1: a witness line is 'witness <name> <vkey> [<url>]'",
        f"log {log.vkey[:-4]}AAAA\nquorum none\n": (
            "line 1: the log's key: the key id does not match the verifier key's name and key"
        ),
        "logs x\nquorum none\n": (
            "line 1: 'logs' is not a policy keyword (log, witness, group, quorum)"
        ),
        f"log {log.vkey}\r\nquorum none\n": (
            "line 1: character 0x0d is not allowed (the only control characters are tab "
            "and newline)"
        ),
        "quorum none\n# \x7f\n": (
            "line 2: character 0x7f is not allowed (the only control characters are tab "
            "and newline)"
        ),
    }
    for text, message in cases.items():
        with pytest.raises(PolicyError) as caught:
            parse_policy(text)
        assert str(caught.value) == message, text
    assert issubclass(PolicyError, ValueError)


def test_without_ml_dsa_here_an_ml_dsa_witness_counts_as_not_cosigned_and_says_why(
    log, cosigners, monkeypatch
):
    """The one-file verifier on a machine with PyNaCl alone: ML-DSA-44 keys still parse,
    and their cosignatures are reported as not checked rather than trusted."""
    pq = mldsa.generate_mldsa_cosigner("pq.witness.example")
    policy = parse_policy(
        f"log {log.vkey}\n"
        + witness_lines(cosigners, ["X1"])
        + f"witness PQ {pq.verifier.vkey()}\ngroup g any X1 PQ\nquorum g\n"
    )
    note = cosign(log.checkpoint(11), pq)
    monkeypatch.setattr(mldsa, "AVAILABLE", False)
    got = policy.check(note, log.origin)
    assert (got.ok, got.cosigned_by) == (False, [])
    assert got.why == (
        "quorum g not met: group g: 0 of 1 needed (missing: X1, PQ); "
        "witness PQ's ML-DSA-44 cosignature not checked here"
    )
    assert policy.check(cosign(note, cosigners["X1"]), log.origin).ok
