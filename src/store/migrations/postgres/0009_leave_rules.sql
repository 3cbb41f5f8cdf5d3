-- What the leave rules read (坐席考勤管理制度 三3, 三4), kept with each leave:
-- when it was asked for, and the document handed in. NULL is "the source
-- does not say" (no flag); an empty document is "the source says none".
ALTER TABLE leaves ADD COLUMN requested_at TIMESTAMPTZ;
ALTER TABLE leaves ADD COLUMN document TEXT;
