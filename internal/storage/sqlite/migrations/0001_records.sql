-- Records: opaque bytes plus the plaintext index columns of storage.Record.
-- TEXT columns compare with the BINARY collation (byte order), which is the
-- order storage.ListOptions promises.
--
-- A rowid table rather than WITHOUT ROWID: records carry Data and Sealed of
-- up to several KiB, and a WITHOUT ROWID table keeps whole rows in the
-- interior pages of its B-tree, which SQLite advises against for rows larger
-- than about 1/20 of a page.
CREATE TABLE records (
    kind    TEXT    NOT NULL,
    account TEXT    NOT NULL,
    region  TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    parent  TEXT    NOT NULL DEFAULT '',
    due     INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL DEFAULT 0,
    rev     INTEGER NOT NULL,
    data    BLOB,
    sealed  BLOB,
    PRIMARY KEY (kind, account, region, id)
) STRICT;

CREATE INDEX records_parent ON records (kind, account, region, parent, id);

CREATE INDEX records_due ON records (kind, due) WHERE due <> 0;
