-- Job listings, searched by full text (title A, company B, description C) plus filters.
-- depends: 0001_create_users

CREATE TABLE jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    employer_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title            text NOT NULL,
    company          text NOT NULL,
    description      text NOT NULL,
    location         text NOT NULL DEFAULT '',
    employment_type  text NOT NULL
        CHECK (employment_type IN ('full_time', 'part_time', 'contract', 'internship', 'temporary')),
    remote           boolean NOT NULL DEFAULT false,
    -- Yearly pay in `currency`; either end may be unknown.
    salary_min       integer CHECK (salary_min >= 0),
    salary_max       integer CHECK (salary_max >= 0),
    currency         text NOT NULL DEFAULT 'BSD' CHECK (currency ~ '^[A-Z]{3}$'),
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    closed_at        timestamptz,
    search           tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A')
        || setweight(to_tsvector('english', company), 'B')
        || setweight(to_tsvector('english', description), 'C')
    ) STORED,
    CONSTRAINT jobs_salary_range CHECK (salary_min IS NULL OR salary_max IS NULL OR salary_min <= salary_max)
);

CREATE INDEX jobs_search ON jobs USING gin (search);
-- Browsing without a query: newest open listings first.
CREATE INDEX jobs_status_id ON jobs (status, id DESC);
CREATE INDEX jobs_employer ON jobs (employer_id, id DESC);
-- `location=` matches a case-insensitive part of the location.
CREATE INDEX jobs_location_trgm ON jobs USING gin (lower(location) gin_trgm_ops);
