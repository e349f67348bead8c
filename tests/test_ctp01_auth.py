"""The pure CTP01 authorize check: each mode's proof, right and wrong, compared in constant time."""

from __future__ import annotations

import pytest

from chronotrack.accounts import ctp01_auth
from chronotrack.accounts.ctp01_auth import (
    authentication_settings,
    expected_proof,
    needs_seed,
    new_seed,
    verify_authorization,
)
from chronotrack.simulator import authorization_string

# Known answers: RFC 2202 for the HMACs (key "Jefe"), FIPS 180 / RFC 1321 "abc" for the hashes.
RFC2202_MESSAGE = "what do ya want for nothing?"
KNOWN = [
    ("hmac-sha1", "Jefe", RFC2202_MESSAGE, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    ("hmac-md5", "Jefe", RFC2202_MESSAGE, "750c783e6ab0b503eaa86e310a5db738"),
    ("seed-sha1", "c", "ab", "a9993e364706816aba3e25717850c26c9cd0d89d"),  # sha1(seed + password)
    ("seed-md5", "c", "ab", "900150983cd24fb0d6963f7d28e17f72"),
    ("plaintext", "s3cret~pass", "ignored", "s3cret~pass"),
]
MODES = ("plaintext", "hmac-sha1", "hmac-md5", "seed-sha1", "seed-md5")


@pytest.mark.parametrize("mode, password, seed, proof", KNOWN)
def test_each_mode_accepts_its_known_proof(mode, password, seed, proof):
    assert expected_proof(mode, password, seed) == proof
    assert verify_authorization(mode, password, seed, proof)


@pytest.mark.parametrize("mode, password, seed, proof", KNOWN)
def test_each_mode_refuses_a_wrong_password(mode, password, seed, proof):
    assert not verify_authorization(mode, password + "x", seed, proof)
    assert not verify_authorization(mode, password, seed, "")


@pytest.mark.parametrize("mode", ("hmac-sha1", "hmac-md5", "seed-sha1", "seed-md5"))
def test_seeded_modes_refuse_a_proof_made_for_another_seed(mode):
    proof = expected_proof(mode, "s3cret", "seed-one")
    assert verify_authorization(mode, "s3cret", "seed-one", proof)
    assert not verify_authorization(mode, "s3cret", "seed-two", proof)


@pytest.mark.parametrize("mode", ("hmac-sha1", "hmac-md5", "seed-sha1", "seed-md5"))
def test_uppercase_hex_digests_are_accepted(mode):
    proof = expected_proof(mode, "s3cret", "abc123")
    assert proof == proof.lower()
    assert verify_authorization(mode, "s3cret", "abc123", proof.upper())


def test_plaintext_password_is_compared_exactly():
    assert not verify_authorization("plaintext", "Secret", "", "SECRET")
    assert not verify_authorization("plaintext", "Secret", "", "Secret ")


@pytest.mark.parametrize("mode", MODES)
def test_the_comparison_is_constant_time(mode, monkeypatch):
    """hmac.compare_digest decides, whatever the mode, right proof or wrong."""
    calls = []
    real = ctp01_auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(ctp01_auth.hmac, "compare_digest", spy)
    assert verify_authorization(mode, "pw", "seed", expected_proof(mode, "pw", "seed"))
    assert not verify_authorization(mode, "pw", "seed", "wrong")
    assert len(calls) == 2


@pytest.mark.parametrize("mode", MODES)
def test_the_simulator_proof_is_accepted(mode):
    """The simulator (our stand-in controller) and the check agree on every mode."""
    seed = new_seed()
    assert verify_authorization(mode, "pässword", seed, authorization_string(mode, "pässword", seed))


def test_overlong_proof_is_refused_without_hashing():
    assert not verify_authorization("plaintext", "x" * 2000, "", "x" * 2000)


def test_unknown_mode_is_an_error_not_a_pass():
    with pytest.raises(ValueError):
        verify_authorization("rot13", "pw", "seed", "pw")


def test_seeds_are_fresh_random_hex():
    seeds = {new_seed() for _ in range(100)}
    assert len(seeds) == 100
    assert all(len(seed) == 32 and int(seed, 16) >= 0 for seed in seeds)


def test_setting_lines_per_mode():
    assert authentication_settings("none", None) == []
    assert authentication_settings("plaintext", None) == ["authentication=plaintext"]
    assert authentication_settings("hmac-md5", "ab12") == [
        "authentication=hmac-md5", "authentication-seed=ab12"]
    assert [needs_seed(mode) for mode in MODES] == [False, True, True, True, True]
    with pytest.raises(ValueError):
        authentication_settings("seed-sha1", None)
