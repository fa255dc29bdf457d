-- Reserved for the branch the lead assigned migration 0008 to: the search
-- branch needs 0011 and migrations run without gaps. Delete this file when
-- that branch's 0008 is merged.
SELECT 1;
