"""SQL of the `seller_members` and `seller_invites` tables."""

from __future__ import annotations

from uuid import UUID

import asyncpg


async def add_member(conn: asyncpg.Connection, seller_id: UUID, user_id: UUID, role: str) -> bool:
    """False when the person is a member already (their role stays)."""
    added = await conn.fetchval(
        """
        INSERT INTO seller_members (seller_id, user_id, role) VALUES ($1, $2, $3)
        ON CONFLICT (seller_id, user_id) DO NOTHING
        RETURNING true
        """,
        seller_id,
        user_id,
        role,
    )
    return bool(added)


async def role_of(
    conn: asyncpg.Connection | asyncpg.Pool, seller_id: UUID, user_id: UUID
) -> str | None:
    role: str | None = await conn.fetchval(
        "SELECT role FROM seller_members WHERE seller_id = $1 AND user_id = $2",
        seller_id,
        user_id,
    )
    return role


async def sellers_of(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: UUID
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT s.id, s.slug, s.name, s.signup_policy, s.status, m.role, m.created_at AS joined_at
          FROM seller_members m JOIN sellers s ON s.id = m.seller_id
         WHERE m.user_id = $1
         ORDER BY m.created_at, s.slug
        """,
        user_id,
    )
    return rows


async def members_of(
    conn: asyncpg.Connection | asyncpg.Pool, seller_id: UUID
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT m.user_id, u.email, m.role, m.created_at AS joined_at
          FROM seller_members m JOIN users u ON u.id = m.user_id
         WHERE m.seller_id = $1
         ORDER BY m.created_at, u.email
        """,
        seller_id,
    )
    return rows


async def lock_members(conn: asyncpg.Connection, seller_id: UUID) -> list[asyncpg.Record]:
    """The seller's members, locked: two owners removing each other cannot both succeed."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT user_id, role FROM seller_members WHERE seller_id = $1 FOR UPDATE", seller_id
    )
    return rows


async def remove_member(conn: asyncpg.Connection, seller_id: UUID, user_id: UUID) -> bool:
    removed = await conn.fetchval(
        "DELETE FROM seller_members WHERE seller_id = $1 AND user_id = $2 RETURNING true",
        seller_id,
        user_id,
    )
    return bool(removed)


async def revoke_open_invites_for(conn: asyncpg.Connection, seller_id: UUID, email: str) -> None:
    await conn.execute(
        """
        UPDATE seller_invites SET revoked_at = clock_timestamp()
         WHERE seller_id = $1 AND lower(email) = lower($2)
           AND accepted_at IS NULL AND revoked_at IS NULL
        """,
        seller_id,
        email,
    )


async def insert_invite(
    conn: asyncpg.Connection,
    invite_id: UUID,
    seller_id: UUID,
    email: str,
    role: str,
    invited_by: UUID,
    ttl_seconds: int,
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        """
        INSERT INTO seller_invites (id, seller_id, email, role, invited_by, expires_at)
        VALUES ($1, $2, $3, $4, $5, clock_timestamp() + make_interval(secs => $6))
        RETURNING id, email, role, created_at, expires_at
        """,
        invite_id,
        seller_id,
        email,
        role,
        invited_by,
        float(ttl_seconds),
    )
    return row


async def open_invites(
    conn: asyncpg.Connection | asyncpg.Pool, seller_id: UUID
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT id, email, role, created_at, expires_at FROM seller_invites
         WHERE seller_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL
           AND expires_at > clock_timestamp()
         ORDER BY created_at
        """,
        seller_id,
    )
    return rows


async def revoke_invite(conn: asyncpg.Connection, seller_id: UUID, invite_id: UUID) -> bool:
    revoked = await conn.fetchval(
        """
        UPDATE seller_invites SET revoked_at = clock_timestamp()
         WHERE id = $1 AND seller_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL
        RETURNING true
        """,
        invite_id,
        seller_id,
    )
    return bool(revoked)


async def set_invite_token(
    conn: asyncpg.Connection | asyncpg.Pool, invite_id: UUID, token_hash: str
) -> asyncpg.Record | None:
    """Give an open invite a new token (its mail is being sent); None if it is not open."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        UPDATE seller_invites AS i SET token_hash = $2
          FROM sellers AS s
         WHERE i.id = $1 AND s.id = i.seller_id
           AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > clock_timestamp()
        RETURNING i.role, s.name AS seller_name
        """,
        invite_id,
        token_hash,
    )
    return row


async def take_invite(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    """The open, unexpired invite with this token, marked accepted (in the caller's
    transaction); None otherwise."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        UPDATE seller_invites SET accepted_at = clock_timestamp()
         WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL
           AND expires_at > clock_timestamp()
        RETURNING id, seller_id, email, role, invited_by
        """,
        token_hash,
    )
    return row


async def active_owner_emails(conn: asyncpg.Connection, seller_id: UUID) -> list[str]:
    """The addresses of the seller's owners whose users are not disabled."""
    rows = await conn.fetch(
        """
        SELECT u.email FROM seller_members m JOIN users u ON u.id = m.user_id
         WHERE m.seller_id = $1 AND m.role = 'owner' AND u.disabled_at IS NULL
         ORDER BY u.email
        """,
        seller_id,
    )
    return [row["email"] for row in rows]
