-- The audit trail (storage.Trail): one row per CloudTrail event. An event
-- of a change is inserted in the change's transaction (complete false) and
-- replaced by the complete event once the response is known; other events
-- are inserted complete. resources holds storage.EncodeResources' text.
CREATE TABLE IF NOT EXISTS audit_events (
    id            text    COLLATE "C" NOT NULL PRIMARY KEY,
    time          bigint  NOT NULL,
    account       text    COLLATE "C" NOT NULL,
    region        text    COLLATE "C" NOT NULL,
    source        text    COLLATE "C" NOT NULL,
    name          text    COLLATE "C" NOT NULL,
    read_only     bigint  NOT NULL,
    username      text    COLLATE "C" NOT NULL,
    access_key_id text    COLLATE "C" NOT NULL,
    resources     text    COLLATE "C" NOT NULL,
    node          text    COLLATE "C" NOT NULL,
    complete      boolean NOT NULL,
    json          bytea   NOT NULL
);

-- LookupEvents: one account and region, newest first.
CREATE INDEX IF NOT EXISTS audit_events_lookup ON audit_events (account, region, time, id);

-- Retention.
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (time);

-- Start-up finishes a node's incomplete events.
CREATE INDEX IF NOT EXISTS audit_events_incomplete ON audit_events (node, time) WHERE NOT complete;
