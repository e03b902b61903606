-- Placeholder: number 7 belongs to another branch (merged separately). Its 0007 file
-- replaces this one at merge; until then this empty step keeps the sequence gapless,
-- which migrate() requires. Delete this file when that 0007 lands.
SELECT 1;
