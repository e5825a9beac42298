-- effect-event-store: the lifecycle of streams — metadata, soft delete,
-- tombstones, retention, archiving and erasure (docs/lifecycle.md).
--
-- Names are unqualified: the migrator runs this file with search_path set to the
-- store's schema. To apply it by hand:
--   SET search_path TO event_store;
--   \i migrations/0004_lifecycle.sql

-- A stream's metadata and state live on its streams row, the row that every
-- append to the stream claims: a delete, tombstone, archive or metadata write
-- takes the same row lock, so it queues with appends instead of racing them.
--   metadata_version  writes of the metadata so far (0: never written)
--   max_count, max_age_ms, truncate_before
--                     what readStream hides and scavenge removes (NULL: not set)
--   custom_metadata   the caller's own keys
--   deleted_at        soft-deleted and not recreated since; version stays, so a
--                     new append continues after the last version
--   tombstoned_at     hard-deleted: no append, read or metadata write ever again
--   archived_version  versions up to this one were moved to events_archive
-- A row with version 0 is a stream that has metadata or a tombstone but no events.
ALTER TABLE streams
  ADD COLUMN metadata_version bigint NOT NULL DEFAULT 0 CHECK (metadata_version >= 0),
  ADD COLUMN max_count bigint CHECK (max_count >= 1),
  ADD COLUMN max_age_ms bigint CHECK (max_age_ms >= 1),
  ADD COLUMN truncate_before bigint CHECK (truncate_before >= 0),
  ADD COLUMN custom_metadata jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom_metadata) = 'object'),
  ADD COLUMN deleted_at timestamptz,
  ADD COLUMN tombstoned_at timestamptz,
  ADD COLUMN archived_version bigint NOT NULL DEFAULT 0 CHECK (archived_version >= 0);

-- The streams scavenge has to look at: those whose metadata can hide events.
CREATE INDEX streams_retention_idx ON streams (stream_id)
  WHERE truncate_before IS NOT NULL OR max_count IS NOT NULL OR max_age_ms IS NOT NULL OR tombstoned_at IS NOT NULL;

-- Set when eraseStream blanked the event's data and user metadata in place.
ALTER TABLE events ADD COLUMN erased_at timestamptz;

-- Archived events: moved out of the hot table by archiveStream, in the same
-- transaction that deletes them there, with the same positions. Positions are
-- never drawn here (rows only ever come from events), so the global-order rule
-- "positions come only from inserts into events" still holds.
CREATE TABLE events_archive (
  position       bigint PRIMARY KEY,
  event_id       uuid NOT NULL,
  stream_id      text COLLATE "C" NOT NULL,
  stream_version bigint NOT NULL CHECK (stream_version >= 1),
  category       text COLLATE "C" NOT NULL,
  event_type     text COLLATE "C" NOT NULL,
  schema_version integer NOT NULL CHECK (schema_version >= 1),
  data           jsonb NOT NULL,
  metadata       jsonb NOT NULL,
  recorded_at    timestamptz NOT NULL,
  erased_at      timestamptz,
  archived_at    timestamptz NOT NULL DEFAULT statement_timestamp(),
  CONSTRAINT events_archive_event_id_key UNIQUE (event_id),
  CONSTRAINT events_archive_stream_version_key UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_archive_event_type_idx ON events_archive (event_type, position);
CREATE INDEX events_archive_category_idx ON events_archive (category, position);

-- The archive is as append-only as the hot table: only scavenge and erasure,
-- with event_store.allow_rewrite = 'on' for their own transaction, rewrite it.
CREATE TRIGGER events_archive_append_only
  BEFORE UPDATE OR DELETE ON events_archive
  FOR EACH ROW EXECUTE FUNCTION forbid_event_rewrite();

CREATE TRIGGER events_archive_no_truncate
  BEFORE TRUNCATE ON events_archive
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_event_rewrite();
