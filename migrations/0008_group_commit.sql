-- effect-event-store: many appends in one call and one commit (group commit).
-- Run with search_path set to the store's schema (see 0001_event_store.sql).
-- docs/group-commit.md explains the mechanism and its limits.
--
-- p_appends is a JSON array of appends, each
--   {"s": stream, "c": category, "x": expected, "v": version, "e": [events]}
-- with expected 'any', 'no_stream', 'stream_exists' or 'exact' (then v), and
-- events as append_to_stream (0007) takes them. Returns one row per append,
-- append_index its place in p_appends (from 0): when it stored its events,
-- head is the stream's new version and positions their positions in order
-- (comma-separated); when it stored nothing, rejection says why as
-- append_to_stream does ('conflict', 'tombstoned' or 'stored_ids'), with the
-- live version its check saw in head, or 'busy': another transaction holds the
-- stream's row, and the batch did not wait for it (the caller makes that
-- append alone). Each append is checked on its own, as if it had been made
-- alone right after the ones before it: one append's rejection never stops
-- another's.
--
-- Appends are taken in stream id order (code point order), and in their order
-- in p_appends within a stream: every batch takes the stream rows it locks in
-- the same order, so two batches never wait for each other in a cycle.
--
-- A racing transaction may hold, uncommitted, one of an append's event ids
-- (the same append retried by another process, say). The insert waits for it
-- (ON CONFLICT DO NOTHING) instead of failing the whole batch with a unique
-- violation, and when the other one committed, this append takes back the rows
-- it inserted and reports 'stored_ids'. No savepoint, no EXCEPTION block: no
-- subtransaction per append.
CREATE FUNCTION append_batch(p_appends jsonb)
RETURNS TABLE (append_index integer, head bigint, positions text, rejection text)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  a          record;
  ids        uuid[];
  n          bigint;
  found_row  boolean;
  seen       bigint;
  live       bigint;
  deleted    boolean;
  tombstoned boolean;
  last_at    timestamptz;
  claimed    bigint;
  stamp      timestamptz;
  created    boolean;
  drawn      bigint[];
BEGIN
  FOR a IN
    SELECT (x.ordinality - 1)::integer AS i, x.value->>'s' AS stream, x.value->>'c' AS category,
           x.value->>'x' AS expected, (x.value->>'v')::bigint AS version, x.value->'e' AS batch
    FROM jsonb_array_elements(p_appends) WITH ORDINALITY AS x
    ORDER BY x.value->>'s' COLLATE "C", x.ordinality
  LOOP
    append_index := a.i;
    positions := NULL;
    rejection := NULL;
    ids := ARRAY(SELECT (e->>'id')::uuid FROM jsonb_array_elements(a.batch) AS e);
    n := cardinality(ids);

    <<claim>>
    LOOP
      -- Lock the stream's row and check. A row another transaction holds (a
      -- long transaction of the application's, say) is not waited for: the
      -- whole batch, and every append queued behind it, would wait with it.
      SELECT s.version, s.deleted_at IS NOT NULL, s.tombstoned_at IS NOT NULL, s.updated_at
        INTO seen, deleted, tombstoned, last_at
      FROM streams s WHERE s.stream_id = a.stream
      FOR UPDATE SKIP LOCKED;
      found_row := FOUND;
      IF NOT found_row AND EXISTS (SELECT 1 FROM streams s WHERE s.stream_id = a.stream) THEN
        rejection := 'busy';
        live := 0;
        EXIT claim;
      END IF;
      IF found_row AND tombstoned THEN
        rejection := 'tombstoned';
        live := 0;
        EXIT claim;
      END IF;
      live := CASE WHEN NOT found_row OR deleted THEN 0 ELSE seen END;
      IF EXISTS (SELECT 1 FROM events WHERE event_id = ANY (ids))
         OR EXISTS (SELECT 1 FROM events_archive WHERE event_id = ANY (ids)) THEN
        rejection := 'stored_ids';
        EXIT claim;
      END IF;
      IF NOT (CASE a.expected
        WHEN 'any' THEN true
        WHEN 'no_stream' THEN live = 0
        WHEN 'stream_exists' THEN live > 0
        ELSE live = a.version
      END) THEN
        rejection := 'conflict';
        EXIT claim;
      END IF;

      IF found_row THEN
        -- Versions continue after a soft delete.
        claimed := seen + n;
        stamp := GREATEST(last_at, statement_timestamp());
        created := false;
      ELSE
        INSERT INTO streams AS s (stream_id, category, version)
        VALUES (a.stream, a.category, n)
        ON CONFLICT (stream_id) DO NOTHING
        RETURNING s.version, s.updated_at INTO claimed, stamp;
        -- Created meanwhile by a racing append, now committed: lock it, look again.
        CONTINUE claim WHEN NOT FOUND;
        created := true;
      END IF;

      -- Positions come from the column default, drawn inside this INSERT (which
      -- holds RowExclusiveLock on events from before it draws them until the
      -- end of the transaction), in the order of the append's events.
      WITH stored AS (
        INSERT INTO events (event_id, stream_id, stream_version, category, event_type, schema_version, data, metadata, recorded_at)
        SELECT (e.value->>'id')::uuid, a.stream, claimed - n + e.ordinality, a.category,
               e.value->>'type', (e.value->>'schemaVersion')::int, e.value->'data', e.value->'metadata', stamp
        FROM jsonb_array_elements(a.batch) WITH ORDINALITY AS e
        ORDER BY e.ordinality
        ON CONFLICT DO NOTHING
        RETURNING events.position AS p, events.stream_version AS v
      )
      SELECT array_agg(stored.p ORDER BY stored.v) INTO drawn FROM stored;

      IF coalesce(cardinality(drawn), 0) = n THEN
        IF NOT created THEN
          UPDATE streams s SET
            version = claimed,
            updated_at = stamp,
            created_at = CASE WHEN seen = 0 OR deleted THEN statement_timestamp() ELSE s.created_at END,
            deleted_at = NULL
          WHERE s.stream_id = a.stream;
        END IF;
        head := claimed;
        positions := array_to_string(drawn, ',');
        EXIT claim;
      END IF;

      -- Some row was not inserted: a racing transaction stored one of these ids
      -- first and has committed. Take back what this append wrote (its
      -- positions become holes, as a rolled-back append's do).
      IF cardinality(drawn) > 0 THEN
        PERFORM set_config('event_store.allow_rewrite', 'on', true);
        DELETE FROM events WHERE position = ANY (drawn);
        PERFORM set_config('event_store.allow_rewrite', 'off', true);
      END IF;
      IF created THEN
        DELETE FROM streams WHERE stream_id = a.stream;
      END IF;
      rejection := CASE
        WHEN EXISTS (SELECT 1 FROM events WHERE event_id = ANY (ids))
          OR EXISTS (SELECT 1 FROM events_archive WHERE event_id = ANY (ids)) THEN 'stored_ids'
        ELSE 'conflict'
      END;
      EXIT claim;
    END LOOP;

    IF rejection IS NOT NULL THEN
      head := live;
    END IF;
    RETURN NEXT;
  END LOOP;
END
$$;

-- The lone append of group commit (one that found no batch in flight):
-- append_to_stream, unless another transaction holds the stream's row. Then it
-- answers 'busy' at once instead of waiting, so that the appends queueing
-- behind it do not wait for someone else's transaction; the caller makes it
-- again with append_to_stream, which waits, on a connection of its own.
CREATE FUNCTION append_unless_busy(
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
BEGIN
  PERFORM 1 FROM streams s WHERE s.stream_id = p_stream FOR UPDATE SKIP LOCKED;
  IF NOT FOUND AND EXISTS (SELECT 1 FROM streams s WHERE s.stream_id = p_stream) THEN
    RETURN QUERY SELECT NULL::bigint, 0::bigint, 'busy'::text;
    RETURN;
  END IF;
  RETURN QUERY SELECT * FROM append_to_stream(p_stream, p_category, p_expected, p_version, p_ids, p_batch);
END
$$;
