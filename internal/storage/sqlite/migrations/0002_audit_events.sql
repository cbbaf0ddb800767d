-- The audit trail (storage.Trail): one row per CloudTrail event. An event
-- of a change is inserted in the change's transaction (complete = 0) and
-- replaced by the complete event once the response is known; other events
-- are inserted complete. resources holds storage.EncodeResources' text.
CREATE TABLE audit_events (
    id            TEXT    NOT NULL PRIMARY KEY,
    time          INTEGER NOT NULL,
    account       TEXT    NOT NULL,
    region        TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    read_only     INTEGER NOT NULL,
    username      TEXT    NOT NULL,
    access_key_id TEXT    NOT NULL,
    resources     TEXT    NOT NULL,
    node          TEXT    NOT NULL,
    complete      INTEGER NOT NULL,
    json          BLOB    NOT NULL
) STRICT;

-- LookupEvents: one account and region, newest first.
CREATE INDEX audit_events_lookup ON audit_events (account, region, time, id);

-- Retention.
CREATE INDEX audit_events_time ON audit_events (time);

-- Start-up finishes a node's incomplete events.
CREATE INDEX audit_events_incomplete ON audit_events (node, time) WHERE complete = 0;
