-- The mobile number or robot user id that alerts to an employee's
-- supervisor @-mention (employees.csv `supervisor_contact`); NULL when the
-- file has none.
ALTER TABLE employees ADD COLUMN supervisor_contact TEXT;
