-- Terminals attendd pulls from (ZKTeco 4370, Hikvision ISAPI, Dahua CGI):
-- where each source has read up to in each terminal's log. A pull has no
-- one to acknowledge, so this row is the acknowledgement: it is written in
-- the same transaction as the punches it covers.
CREATE TABLE pull_cursors (
    source     TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    cursor     TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, device_id)
);
