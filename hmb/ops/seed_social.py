"""Demo social data: people who follow each other, posts with likes, and an avatar."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib

import asyncpg

from hmb.config import Settings, StorageSettings
from hmb.store import files, follows, posts, users
from hmb.store.storage import new_key, open_storage

# (author email, body, emails of the people who like it)
DEMO_POSTS = [
    ("ava.rolle@example.com", "Spent the morning surveying the reef off Rose Island. Coral recovery is real!",
     ["marcus.knowles@example.com", "sasha.ferguson@example.com", "devon.pinder@example.com"]),
    ("marcus.knowles@example.com", "Shipped a booking system for a Freeport dive shop this week. Happy to share lessons learned.",
     ["ava.rolle@example.com", "conch.tech@example.com"]),
    ("island.resorts@example.com", "We're hiring front-desk and guest-experience staff across the Family Islands.",
     ["sasha.ferguson@example.com"]),
    ("sasha.ferguson@example.com", "Ten years in hospitality taught me one thing: guests remember how you made them feel.",
     ["island.resorts@example.com", "ava.rolle@example.com"]),
    ("conch.tech@example.com", "Our apprenticeship for junior developers opens next month. Watch this space.",
     ["marcus.knowles@example.com", "devon.pinder@example.com"]),
    ("devon.pinder@example.com", "Finished the solar install at a school in Nassau. Proud of this crew.",
     ["ava.rolle@example.com"]),
]


async def seed_social(conn: asyncpg.Connection, people: dict[str, int]) -> None:
    """Everyone follows everyone else, so each newcomer's first feed is full; plus posts, likes, an avatar."""
    ids = list(people.values())
    for follower in ids:
        for followee in ids:
            if follower != followee:
                await follows.follow(conn, follower, followee)
    for author, body, likers in DEMO_POSTS:
        post_id = (await posts.create_post(conn, people[author], body, None))["id"]
        for liker in likers:
            await posts.like(conn, post_id, people[liker])
    async with open_storage(_storage_settings()) as storage:
        avatar = await _store(conn, storage, people["ava.rolle@example.com"], "avatar", _png(48, (0x1E, 0x90, 0xC8)))
        await users.set_avatar(conn, people["ava.rolle@example.com"], avatar)
        for user_id in ids:
            person = await users.get_public(conn, user_id)
            if person["role"] == "seeker":
                await _store(conn, storage, user_id, "resume", _pdf(f"{person['name']} - {person['headline']}"))


def _storage_settings() -> StorageSettings:
    """The storage section from the environment (STORAGE_BACKEND, STORAGE_DIR, S3_*), as `hmb serve` reads it.

    Steps get only a connection; the other sections need not be configured to seed files.
    """
    return Settings.from_env({"DATABASE_URL": "postgresql://unused", **os.environ}).storage


async def _store(conn: asyncpg.Connection, storage, owner_id: int, purpose: str, data: bytes) -> int:
    content_type, extension = ("image/png", ".png") if purpose == "avatar" else ("application/pdf", ".pdf")
    key = new_key(purpose, extension)
    staged = storage.staging_dir() / f"seed-{owner_id}-{purpose}.part"
    staged.write_bytes(data)
    await storage.save(key, staged, content_type)
    row = await files.insert_file(conn, owner_id, purpose, content_type, len(data), key, hashlib.sha256(data).digest())
    return row["id"]


def _png(size: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid, solid-colour PNG (no imaging library needed)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack("!I", len(payload)) + kind + payload + struct.pack("!I", zlib.crc32(kind + payload))

    row = b"\x00" + bytes(rgb) * size
    header = struct.pack("!IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b"")


def _pdf(text: str) -> bytes:
    """A valid one-page PDF showing one line of text."""
    safe = text.replace("\\", "").replace("(", "").replace(")", "")
    stream = f"BT /F1 18 Tf 72 720 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
