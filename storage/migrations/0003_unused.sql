-- Number 3 was never released (the first wave went from 0001 to 0004).
-- This empty step keeps the sequence gapless, which migrate() requires.
SELECT 1;
