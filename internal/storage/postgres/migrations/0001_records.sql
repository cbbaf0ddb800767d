-- Records: opaque bytes plus the plaintext index columns of storage.Record.
-- The text columns use the "C" collation so that comparisons and ORDER BY
-- follow byte order, as storage.ListOptions promises, whatever the
-- database's default collation.
CREATE TABLE IF NOT EXISTS records (
    kind    text   COLLATE "C" NOT NULL,
    account text   COLLATE "C" NOT NULL,
    region  text   COLLATE "C" NOT NULL,
    id      text   COLLATE "C" NOT NULL,
    parent  text   COLLATE "C" NOT NULL DEFAULT '',
    due     bigint NOT NULL DEFAULT 0,
    created bigint NOT NULL DEFAULT 0,
    rev     bigint NOT NULL,
    data    bytea,
    sealed  bytea,
    PRIMARY KEY (kind, account, region, id)
);

CREATE INDEX IF NOT EXISTS records_parent ON records (kind, account, region, parent, id);

CREATE INDEX IF NOT EXISTS records_due ON records (kind, due) WHERE due <> 0;
