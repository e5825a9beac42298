-- effect-event-store: the event each stopped projection failed on.
-- Run with search_path set to the store's schema (see 0001_event_store.sql).

-- Written by a runner whose failure policy stopped it on an event, so that any
-- process sees why it stopped; removed when the event is skipped or parked,
-- in the transaction that moves the checkpoint past it.
CREATE TABLE projection_failures (
  projection text COLLATE "C" PRIMARY KEY,
  checkpoint text COLLATE "C" NOT NULL,
  after      bigint NOT NULL CHECK (after >= 0),
  position   bigint NOT NULL CHECK (position > after),
  event_id   uuid NOT NULL,
  stream_id  text COLLATE "C" NOT NULL,
  event_type text COLLATE "C" NOT NULL,
  error      text NOT NULL,
  failed_at  timestamptz NOT NULL DEFAULT statement_timestamp()
);
