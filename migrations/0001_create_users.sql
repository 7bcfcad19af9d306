-- Accounts and public profiles. Emails are stored normalised (trimmed, lowercased) by the app.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          text NOT NULL,
    password_hash  text NOT NULL,
    name           text NOT NULL,
    role           text NOT NULL CHECK (role IN ('seeker', 'employer')),
    headline       text NOT NULL DEFAULT '',
    bio            text NOT NULL DEFAULT '',
    location       text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_key ON users (email);
-- Name search (`GET /api/users?q=`) by substring, case-insensitive.
CREATE INDEX users_name_trgm ON users USING gin (lower(name) gin_trgm_ops);
