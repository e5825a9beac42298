-- effect-event-store: what state folded from a stream needs to know about its
-- history, and an append function that reports the version its check saw.
-- Run with search_path set to the store's schema (see 0001_event_store.sql).
-- docs/snapshots.md and docs/lifecycle.md explain the rules.

-- Bumped by every rewrite of the stream's stored events in place (an erasure):
-- a snapshot saved before it summarises events that are no longer what they were.
ALTER TABLE streams ADD COLUMN epoch bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0);

-- Every soft delete, at the last version it deleted: the append that stored
-- version + 1 found no stream, so a retry of it with "no_stream" is a retry.
CREATE TABLE stream_deletions (
  stream_id  text COLLATE "C" NOT NULL,
  version    bigint NOT NULL CHECK (version >= 1),
  deleted_at timestamptz NOT NULL DEFAULT statement_timestamp(),
  PRIMARY KEY (stream_id, version)
);

-- What a snapshot summarises: the events from first_version to stream_version
-- as readStream returned them at the stream's epoch. Snapshots saved before
-- this migration do not say (first_version 0): they are never used again, and
-- the next save replaces them.
ALTER TABLE snapshots
  ADD COLUMN first_version bigint NOT NULL DEFAULT 0 CHECK (first_version >= 0),
  ADD COLUMN epoch bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0);

-- What readStream shows of a stream now, in one call: the stream's row, the
-- lowest version its metadata lets a reader see (read_from), maxAge's cutoff
-- (this statement's start minus maxAge, in microseconds since the epoch; NULL
-- without maxAge), and the version of the first event a reader sees (NULL
-- when none, or when the stream has no events or is soft-deleted). No row for
-- a stream that has never had a row. A function, so that the server plans its
-- statements once per connection: the same query sent as one statement cost
-- more to plan (about 1.3 ms) than to run (under 0.1 ms).
CREATE FUNCTION view_stream(p_stream text)
RETURNS TABLE (
  head           bigint,
  is_deleted     boolean,
  is_tombstoned  boolean,
  history_epoch  bigint,
  archived_up_to bigint,
  read_from      bigint,
  cutoff_us      bigint,
  first_visible  bigint
)
LANGUAGE plpgsql
STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
  s      streams%ROWTYPE;
  cutoff timestamptz;
  hot    bigint;
  cold   bigint;
BEGIN
  SELECT * INTO s FROM streams WHERE stream_id = p_stream;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  head := s.version;
  is_deleted := s.deleted_at IS NOT NULL;
  is_tombstoned := s.tombstoned_at IS NOT NULL;
  history_epoch := s.epoch;
  archived_up_to := s.archived_version;
  read_from := GREATEST(1, coalesce(s.truncate_before, 1), s.version - coalesce(s.max_count, s.version) + 1);
  cutoff := statement_timestamp() - s.max_age_ms * interval '1 millisecond';
  cutoff_us := (extract(epoch FROM cutoff) * 1000000)::bigint;
  IF s.version > 0 AND s.deleted_at IS NULL AND s.tombstoned_at IS NULL THEN
    SELECT e.stream_version INTO hot FROM events e
    WHERE e.stream_id = p_stream AND e.stream_version >= read_from AND e.stream_version <= s.version
      AND (cutoff IS NULL OR e.recorded_at >= cutoff)
    ORDER BY e.stream_version LIMIT 1;
    IF s.archived_version > 0 THEN
      SELECT e.stream_version INTO cold FROM events_archive e
      WHERE e.stream_id = p_stream AND e.stream_version >= read_from AND e.stream_version <= s.version
        AND (cutoff IS NULL OR e.recorded_at >= cutoff)
      ORDER BY e.stream_version LIMIT 1;
    END IF;
    first_visible := least(hot, cold);
  END IF;
  RETURN NEXT;
END
$$;

-- The append, as append_events (0005), with three changes:
-- * When it stores nothing it says why, in one row with no position:
--   rejection 'conflict' with the version its check saw (taken under the
--   stream's row lock, after waiting for an append in flight; when the stream
--   got to a version the append accepts while it waited, it claims again
--   instead), 'tombstoned', or 'stored_ids' (an event id is stored already,
--   perhaps by the very append it waited for) with the version then. So a ConcurrencyError never reports a version that
--   satisfies what the append expected, however appends race.
-- * recorded_at never decreases along a stream: it is the later of the
--   statement's start and the stream's last append (streams.updated_at). An
--   append that waited for another one's row lock started earlier but comes
--   later; maxAge then hides a prefix of the versions, always.
-- * A rejected append keeps the stream's row locked until its transaction ends
--   (as ON CONFLICT DO UPDATE already did for "no_stream").
-- append_events stays for processes that still run the code from before this
-- migration; a later migration drops it.
CREATE FUNCTION append_to_stream(
  p_stream   text,
  p_category text,
  p_expected text,
  p_version  bigint,
  p_ids      uuid[],
  p_batch    jsonb
) RETURNS TABLE (event_position bigint, event_version bigint, rejection text)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  n          bigint := cardinality(p_ids);
  claimed    bigint;
  stamp      timestamptz;
  seen       bigint;
  deleted    boolean;
  tombstoned boolean;
BEGIN
  IF EXISTS (SELECT 1 FROM events WHERE event_id = ANY (p_ids))
     OR EXISTS (SELECT 1 FROM events_archive WHERE event_id = ANY (p_ids)) THEN
    SELECT s.version, s.deleted_at IS NOT NULL, s.tombstoned_at IS NOT NULL INTO seen, deleted, tombstoned
    FROM streams s WHERE s.stream_id = p_stream;
    RETURN QUERY SELECT NULL::bigint,
      CASE WHEN seen IS NULL OR deleted OR tombstoned THEN 0::bigint ELSE seen END,
      CASE WHEN tombstoned THEN 'tombstoned' ELSE 'stored_ids' END;
    RETURN;
  END IF;

  LOOP
    -- Claim the versions on the stream's row: it serialises appends to one
    -- stream, and a racing append waits for it and re-checks.
    IF p_expected = 'any' THEN
      INSERT INTO streams AS s (stream_id, category, version)
      VALUES (p_stream, p_category, n)
      ON CONFLICT (stream_id) DO UPDATE SET
        version = s.version + EXCLUDED.version,
        updated_at = GREATEST(s.updated_at, statement_timestamp()),
        created_at = CASE WHEN s.version = 0 OR s.deleted_at IS NOT NULL THEN statement_timestamp() ELSE s.created_at END,
        deleted_at = NULL
      WHERE s.tombstoned_at IS NULL
      RETURNING s.version, s.updated_at INTO claimed, stamp;
    ELSIF p_expected = 'no_stream' THEN
      INSERT INTO streams AS s (stream_id, category, version)
      VALUES (p_stream, p_category, n)
      ON CONFLICT (stream_id) DO UPDATE SET
        version = s.version + EXCLUDED.version,
        updated_at = GREATEST(s.updated_at, statement_timestamp()),
        created_at = statement_timestamp(),
        deleted_at = NULL
      WHERE (s.version = 0 OR s.deleted_at IS NOT NULL) AND s.tombstoned_at IS NULL
      RETURNING s.version, s.updated_at INTO claimed, stamp;
    ELSIF p_expected = 'stream_exists' THEN
      UPDATE streams s SET version = s.version + n, updated_at = GREATEST(s.updated_at, statement_timestamp())
      WHERE s.stream_id = p_stream AND s.version > 0 AND s.deleted_at IS NULL AND s.tombstoned_at IS NULL
      RETURNING s.version, s.updated_at INTO claimed, stamp;
    ELSE
      UPDATE streams s SET version = s.version + n, updated_at = GREATEST(s.updated_at, statement_timestamp())
      WHERE s.stream_id = p_stream AND s.version = p_version AND s.deleted_at IS NULL AND s.tombstoned_at IS NULL
      RETURNING s.version, s.updated_at INTO claimed, stamp;
    END IF;

    EXIT WHEN claimed IS NOT NULL;

    -- Nothing claimed. Lock the row (after the append in flight, if any) and
    -- look at the version the check is about; the lock holds it there.
    SELECT s.version, s.deleted_at IS NOT NULL, s.tombstoned_at IS NOT NULL INTO seen, deleted, tombstoned
    FROM streams s WHERE s.stream_id = p_stream FOR UPDATE;
    IF tombstoned THEN
      RETURN QUERY SELECT NULL::bigint, 0::bigint, 'tombstoned'::text;
      RETURN;
    END IF;
    seen := CASE WHEN seen IS NULL OR deleted THEN 0 ELSE seen END;
    -- The append we waited for may have stored these very ids: then this is a retry.
    IF EXISTS (SELECT 1 FROM events WHERE event_id = ANY (p_ids))
       OR EXISTS (SELECT 1 FROM events_archive WHERE event_id = ANY (p_ids)) THEN
      RETURN QUERY SELECT NULL::bigint, seen, 'stored_ids'::text;
      RETURN;
    END IF;
    IF NOT (CASE p_expected
      WHEN 'any' THEN true
      WHEN 'no_stream' THEN seen = 0
      WHEN 'stream_exists' THEN seen > 0
      ELSE seen = p_version
    END) THEN
      RETURN QUERY SELECT NULL::bigint, seen, 'conflict'::text;
      RETURN;
    END IF;
    -- The stream got to a version this append accepts while it waited: claim again.
  END LOOP;

  -- Positions come from the column default, drawn inside this INSERT (which
  -- holds RowExclusiveLock on events from before it draws them until the end
  -- of the transaction), in the order of the batch.
  RETURN QUERY
  INSERT INTO events (event_id, stream_id, stream_version, category, event_type, schema_version, data, metadata, recorded_at)
  SELECT (e.value->>'id')::uuid, p_stream, claimed - n + e.ordinality, p_category,
         e.value->>'type', (e.value->>'schemaVersion')::int, e.value->'data', e.value->'metadata', stamp
  FROM jsonb_array_elements(p_batch) WITH ORDINALITY AS e
  ORDER BY e.ordinality
  RETURNING position, stream_version, NULL::text;
END
$$;
