-- HTTP push terminals (ZKTeco ADMS): the last stamp each terminal sent
-- with a committed upload, per table (ATTLOG, OPERLOG, ATTPHOTO). It is
-- handed back on the next handshake so the terminal resumes after it
-- instead of re-uploading its whole log.
CREATE TABLE push_stamps (
    device_id  TEXT NOT NULL,
    tbl        TEXT NOT NULL,
    stamp      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (device_id, tbl)
);
