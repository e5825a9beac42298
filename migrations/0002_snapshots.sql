-- effect-event-store: the latest snapshot of each stream.
--
-- A snapshot is a cache of an aggregate's state after the event at
-- stream_version, encoded as JSON with the state schema's schema_version. One
-- row per stream: a save replaces the row unless the row has the same
-- schema_version and a higher stream_version (see src/SnapshotStore.ts).
-- No foreign key to streams: snapshots never lock or slow down appends.
--
-- Names are unqualified: the migrator runs this file with search_path set to the
-- store's schema. To apply it by hand:
--   SET search_path TO event_store;
--   \i migrations/0002_snapshots.sql

CREATE TABLE snapshots (
  stream_id      text COLLATE "C" PRIMARY KEY,
  stream_version bigint NOT NULL CHECK (stream_version >= 1),
  schema_version integer NOT NULL CHECK (schema_version >= 1),
  state          jsonb NOT NULL,
  saved_at       timestamptz NOT NULL DEFAULT statement_timestamp()
);
