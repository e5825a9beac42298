-- effect-event-store: streams and the global log.
--
-- Names are unqualified: the migrator runs this file with search_path set to the
-- store's schema. To apply it by hand:
--   CREATE SCHEMA IF NOT EXISTS event_store;
--   SET search_path TO event_store;
--   \i migrations/0001_event_store.sql
-- Needs PostgreSQL 14 or later.

-- Global positions come from this sequence and from nowhere else. CACHE 1 makes
-- numbers increase in the order they are handed out across all sessions: the
-- global-order reader relies on it (docs/global-order.md).
CREATE SEQUENCE events_position_seq AS bigint CACHE 1;

CREATE TABLE streams (
  stream_id  text COLLATE "C" PRIMARY KEY,
  category   text COLLATE "C" NOT NULL,
  version    bigint NOT NULL CHECK (version >= 0),
  created_at timestamptz NOT NULL DEFAULT statement_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT statement_timestamp()
);

CREATE INDEX streams_category_idx ON streams (category, stream_id);

CREATE TABLE events (
  position       bigint PRIMARY KEY DEFAULT nextval('events_position_seq'),
  event_id       uuid NOT NULL,
  stream_id      text COLLATE "C" NOT NULL,
  stream_version bigint NOT NULL CHECK (stream_version >= 1),
  category       text COLLATE "C" NOT NULL,
  event_type     text COLLATE "C" NOT NULL,
  schema_version integer NOT NULL CHECK (schema_version >= 1),
  data           jsonb NOT NULL,
  metadata       jsonb NOT NULL,
  recorded_at    timestamptz NOT NULL DEFAULT statement_timestamp(),
  CONSTRAINT events_event_id_key UNIQUE (event_id),
  CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

ALTER SEQUENCE events_position_seq OWNED BY events.position;

-- readAll filtered by event type or by category.
CREATE INDEX events_event_type_idx ON events (event_type, position);
CREATE INDEX events_category_idx ON events (category, position);

-- Append-only: a stored event never changes. Maintenance that must rewrite
-- history (erasure, scavenging) sets event_store.allow_rewrite = 'on' for its
-- own transaction only.
CREATE FUNCTION forbid_event_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('event_store.allow_rewrite', true), '') <> 'on' THEN
    RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE TRIGGER events_append_only
  BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION forbid_event_rewrite();

CREATE TRIGGER events_no_truncate
  BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_event_rewrite();
