"""TokenCipher: round trips, tamper and misplacement detection, rotation that survives a kill."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import accounts, identity
from storage.crypto import (
    DecryptionError,
    KeyConfigError,
    Location,
    TokenCipher,
    envelope_kid,
    generate_key_spec,
    load_or_create_local_keys,
    parse_keys,
)

KEY_A = generate_key_spec("a")
KEY_B = generate_key_spec("b")
HERE = Location("linked_accounts", "42", "token")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096), st.text(max_size=20), st.text(max_size=20))
def test_round_trip_arbitrary_bytes(data: bytes, table: str, row: str) -> None:
    cipher = TokenCipher(parse_keys(KEY_A))
    where = Location(table or "t", row, "c")
    envelope = cipher.encrypt(data, where)
    assert len(data) < 16 or data not in envelope
    assert cipher.decrypt(envelope, where) == data


def test_flipped_bit_fails() -> None:
    cipher = TokenCipher(parse_keys(KEY_A))
    envelope = bytearray(cipher.encrypt(b"refresh-token-value", HERE))
    for index in range(len(envelope)):
        tampered = bytearray(envelope)
        tampered[index] ^= 0x01
        with pytest.raises(DecryptionError):
            cipher.decrypt(bytes(tampered), HERE)


def test_other_row_table_or_column_fails() -> None:
    cipher = TokenCipher(parse_keys(KEY_A))
    envelope = cipher.encrypt(b"secret", HERE)
    for where in (
        Location("linked_accounts", "43", "token"),
        Location("workspaces", "42", "token"),
        Location("linked_accounts", "42", "upload_session"),
    ):
        with pytest.raises(DecryptionError):
            cipher.decrypt(envelope, where)


def test_old_key_still_decrypts_and_unknown_key_is_refused() -> None:
    old = TokenCipher(parse_keys(KEY_A))
    envelope = old.encrypt(b"x", HERE)
    both = TokenCipher(parse_keys(f"{KEY_B},{KEY_A}"))
    assert both.decrypt(envelope, HERE) == b"x"
    assert envelope_kid(envelope) != both.primary_kid  # `rotate-keys` would re-encrypt it
    with pytest.raises(DecryptionError):
        TokenCipher(parse_keys(KEY_B)).decrypt(envelope, HERE)


@pytest.mark.parametrize(
    "spec", ["", "nokey", "a:not-base64!", f"a:{base64.b64encode(b'short').decode()}"]
)
def test_bad_key_config_is_a_clear_error(spec: str) -> None:
    with pytest.raises(KeyConfigError):
        TokenCipher(parse_keys(spec))


def test_local_key_file_is_0600_and_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = load_or_create_local_keys(tmp_path)
    mode = stat.S_IMODE(os.stat(tmp_path / "token-encryption.key").st_mode)
    assert mode == 0o600
    assert "local use only" in caplog.text
    assert load_or_create_local_keys(tmp_path) == first


def test_processes_creating_the_local_key_at_once_all_get_the_same_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replicas starting together on a fresh data dir: the one that loses the race to
    create the key file reads the winner's key instead of failing (or reading it half-written)."""
    import storage.crypto as crypto

    real = crypto.generate_key_spec
    others: list[list[tuple[str, bytes]]] = []

    def racing(kid: str) -> str:
        # Another process creates the file between our existence check and our write.
        if not others:
            monkeypatch.setattr(crypto, "generate_key_spec", real)
            others.append(load_or_create_local_keys(tmp_path))
        return real(kid)

    monkeypatch.setattr(crypto, "generate_key_spec", racing)
    mine = load_or_create_local_keys(tmp_path)
    assert others == [mine]
    assert [p.name for p in tmp_path.iterdir()] == ["token-encryption.key"]
    assert stat.S_IMODE(os.stat(tmp_path / "token-encryption.key").st_mode) == 0o600


async def _make_accounts(pool: asyncpg.Pool, cipher: TokenCipher, n: int) -> list[int]:
    ident = await identity.resolve(
        pool,
        frontend="slack",
        workspace_external_id=f"T{os.urandom(4).hex()}",
        user_external_id="U1",
    )
    ids = []
    async with pool.acquire() as conn:
        for i in range(n):
            acct = await accounts.upsert_linked(
                conn,
                cipher=cipher,
                workspace_id=ident.workspace_id,
                owner_id=ident.chat_user_id,
                platform="youtube",
                external_id=f"UC{i}",
                handle=f"chan{i}",
                scopes=["s"],
                token={"access_token": f"at-{i}", "refresh_token": f"rt-{i}"},
                expires_at=None,
            )
            ids.append(acct.id)
    return ids


async def test_swapped_row_marks_account_for_relink(pool: asyncpg.Pool) -> None:
    cipher = TokenCipher(parse_keys(KEY_A))
    first, second = await _make_accounts(pool, cipher, 2)
    await pool.execute(
        "UPDATE linked_accounts SET token = (SELECT token FROM linked_accounts WHERE id = $1)"
        " WHERE id = $2",
        first,
        second,
    )
    account = await accounts.get_by_id(pool, second)
    assert account is not None
    with pytest.raises(accounts.TokenUnavailable):
        await accounts.load_token(pool, cipher=cipher, account=account)
    assert (await accounts.get_by_id(pool, second)).status == "needs_relink"  # type: ignore[union-attr]
    good = await accounts.get_by_id(pool, first)
    assert (await accounts.load_token(pool, cipher=cipher, account=good))["access_token"] == "at-0"  # type: ignore[arg-type]


async def test_rotation_killed_halfway_resumes_and_leaves_rows_readable_with_new_key_only(
    empty_db: str, fresh_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    pool = fresh_pool
    cipher_a = TokenCipher(parse_keys(KEY_A))
    ids = await _make_accounts(pool, cipher_a, 60)
    env = {
        **os.environ,
        "DATABASE_URL": empty_db,
        "SOCIALOPS_DATA_DIR": str(tmp_path),
        "TOKEN_ENCRYPTION_KEYS": f"{KEY_B},{KEY_A}",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
    }
    # First run: kill it as soon as it has committed its first batch.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "rotate-keys",
        "--batch-size",
        "5",
        "--pause",
        "0.5",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    while True:
        line = await asyncio.wait_for(proc.stderr.readline(), timeout=60)
        assert line, "rotation ended before its first batch"
        if b"rotated a batch" in line:
            break
    proc.kill()
    await proc.wait()
    on_b = await pool.fetchval(
        "SELECT count(*) FROM linked_accounts WHERE id = ANY($1) AND token_kid = 'b'", ids
    )
    assert 0 < on_b < len(ids)
    # Second run completes.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "rotate-keys",
        "--batch-size",
        "5",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err
    only_b = TokenCipher(parse_keys(KEY_B))
    for index, account_id in enumerate(ids):
        account = await accounts.get_by_id(pool, account_id)
        assert account is not None
        token = await accounts.load_token(pool, cipher=only_b, account=account)
        assert token["refresh_token"] == f"rt-{index}"
