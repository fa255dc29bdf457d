-- Reserved for the branch the lead assigned migration 0006 to: the search
-- branch needs 0011 and migrations run without gaps. Delete this file when
-- that branch's 0006 is merged.
SELECT 1;
