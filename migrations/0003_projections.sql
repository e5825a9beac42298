-- effect-event-store: checkpoints, parked events and runner leases of projections.
-- Run with search_path set to the store's schema (see 0001_event_store.sql).

-- The last global position a subscriber has processed. A SQL read model saves
-- it in the transaction that applies the events, so both commit or neither.
CREATE TABLE checkpoints (
  name       text COLLATE "C" PRIMARY KEY,
  position   bigint NOT NULL CHECK (position >= 0),
  updated_at timestamptz NOT NULL DEFAULT statement_timestamp()
);

-- Events a projection could not apply and set aside (its failure policy said
-- "park"), for inspection and replay.
CREATE TABLE parked_events (
  projection text COLLATE "C" NOT NULL,
  position   bigint NOT NULL,
  event_id   uuid NOT NULL,
  stream_id  text COLLATE "C" NOT NULL,
  event_type text COLLATE "C" NOT NULL,
  error      text NOT NULL,
  parked_at  timestamptz NOT NULL DEFAULT statement_timestamp(),
  PRIMARY KEY (projection, position)
);

-- Leases for running one instance of a projection across processes without
-- session state (behind a transaction-mode pooler such as PgBouncer).
CREATE TABLE projection_leases (
  name       text COLLATE "C" PRIMARY KEY,
  owner      text NOT NULL,
  expires_at timestamptz NOT NULL
);

-- The generation of each projection's read model tables that readers see, and
-- a rebuild in progress, if any.
CREATE TABLE projection_generations (
  name      text COLLATE "C" PRIMARY KEY,
  active    integer NOT NULL CHECK (active >= 1),
  building  integer CHECK (building > active),
  switched_at timestamptz NOT NULL DEFAULT statement_timestamp()
);
