-- One application per seeker per job, moved along a state machine by the job's owner.
-- depends: 0010_create_jobs 0005_create_files

CREATE TABLE applications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    applicant_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The résumé the applicant owns (checked by the app); hmb.store.files lets the job's owner read it.
    resume_file_id  bigint REFERENCES files (id) ON DELETE SET NULL,
    cover_letter    text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'submitted'
        CHECK (status IN ('submitted', 'reviewing', 'interview', 'offered', 'rejected', 'withdrawn')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX applications_job_applicant ON applications (job_id, applicant_id);
-- The owner's list per job, and each seeker's own list, newest first.
CREATE INDEX applications_job_id ON applications (job_id, id DESC);
CREATE INDEX applications_applicant_id ON applications (applicant_id, id DESC);
-- Résumé access checks look applications up by file.
CREATE INDEX applications_resume ON applications (resume_file_id) WHERE resume_file_id IS NOT NULL;
