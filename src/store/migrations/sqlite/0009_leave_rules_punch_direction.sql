-- What the leave rules read (坐席考勤管理制度 三3, 三4), kept with each leave:
-- when it was asked for, and the document handed in. NULL is "the source
-- does not say" (no flag); an empty document is "the source says none".
ALTER TABLE leaves ADD COLUMN requested_at TEXT;
ALTER TABLE leaves ADD COLUMN document TEXT;

-- The punch state a terminal reported (`check_in`, `check_out`, `break_out`,
-- `break_in`, `ot_in`, `ot_out`; ZKTeco status 0-5, Hikvision
-- attendanceStatus), read under [leaving_post] trust_direction. NULL when
-- the terminal did not say.
ALTER TABLE punches ADD COLUMN direction TEXT;
